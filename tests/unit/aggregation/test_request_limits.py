"""A request record carries bounded strings: long paths and user agents are cut, alike offline
and in Redis, since both stores take the record ``request_record`` makes."""

from __future__ import annotations

from botscore.aggregation.definitions import request_record
from botscore.aggregation.offline import final_features
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import RequestRecord, SourceRef

T0 = 1_790_000_000_000
SOURCE = SourceRef("web-logs", 2, 40)


def log(**fields: object) -> WebLog:
    defaults: dict[str, object] = dict(
        time_unix_ms=T0, user_id="u1", ip="192.0.2.1", request_id="r1", schema_version=1
    )
    return WebLog(**{**defaults, **fields})


def test_the_record_carries_the_request_its_source_and_floor():
    made = request_record(
        log(method="POST", path="/login", status=401, user_agent="ua"), SOURCE, replay_floor=37
    )
    assert made == RequestRecord(
        user_id="u1",
        time_ms=T0,
        request_id="r1",
        ip="192.0.2.1",
        user_agent="ua",
        path="/login",
        flags=["req", "err", "login"],
        source=SOURCE,
        replay_floor=37,
    )


def test_a_user_agent_is_cut_to_whole_characters_within_512_bytes():
    exact = "M" + "é" * 255 + "x"  # 512 bytes
    assert request_record(log(user_agent=exact), SOURCE).user_agent == exact
    assert request_record(log(user_agent=exact + "y" * 700_000), SOURCE).user_agent == exact
    # the 512th byte is the first half of an "é": the whole character goes
    split = "M" + "é" * 256
    assert request_record(log(user_agent=split), SOURCE).user_agent == "M" + "é" * 255


def test_a_path_is_cut_to_200_characters():
    path = "/" + "é" * 500
    assert request_record(log(path=path), SOURCE).path == path[:200]


def test_user_agents_equal_up_to_the_cut_count_once():
    base = "Mozilla/5.0 " + "x" * 500
    logs = [
        log(user_agent=base + "A"),
        log(time_unix_ms=T0 + 1, request_id="r2", user_agent=base + "B"),
    ]
    assert final_features(logs)["u1"].features["distinct_user_agents_4h"] == 1
