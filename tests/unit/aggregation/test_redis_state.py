"""What the Redis store hands its script, checked without Redis: keys, arguments, replies.

The script itself runs against real Redis in ``tests/integration/test_feature_store.py``
(against the per-request store it replaced) and ``test_naive_oracle_redis.py``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from unittest import mock

import pytest
import redis
from redis.exceptions import NoScriptError

from botscore.aggregation.definitions import request_record
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.errors import StateLost
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import RequestRecord, SourceRef

T0 = 1_790_000_000_000


def record(
    user: str = "u1", partition: int = 0, offset: int = 7, floor: int = 5, **changes: object
) -> RequestRecord:
    log = WebLog(
        time_unix_ms=T0,
        user_id=user,
        request_id=f"r{offset}",
        ip="198.51.100.7",
        user_agent="curl/8",
        path="/login",
        method="POST",
        status=403,
        schema_version=1,
    )
    made = request_record(log, SourceRef("web-logs", partition, offset), floor)
    return dataclasses.replace(made, **changes)


def fake_store(*replies: list[object]) -> tuple[RedisFeatureStore, mock.MagicMock]:
    """A store whose pipelines answer ``replies``, one list per ``execute``."""
    client = mock.MagicMock()
    client.pipeline.return_value.execute.side_effect = list(replies)
    store = RedisFeatureStore(client, ttl_s=600)
    held_generation(store, "0123456789abcdef0123456789abcdef")  # epoch 01234567
    return store, client


def held_generation(store: RedisFeatureStore, generation: str) -> list[bytes]:
    """Make ``generation`` the one the store last read; each shard's generation behind it."""
    shards = [f"{generation}-shard{i}".encode() for i in range(store.layout.count)]
    store._generations = (generation, shards)
    store._read_at = time.monotonic()
    return shards


def script_calls(client: mock.MagicMock) -> list[tuple[object, ...]]:
    return [call.args for call in client.pipeline.return_value.execute_command.call_args_list]


def test_each_user_gets_one_call_with_its_requests_in_order_and_their_partitions_marks():
    store, client = fake_store([b"10", b"1", 1, 1])
    shards = held_generation(store, "g1")
    batch = [
        record("u1", partition=0, offset=7, floor=5),
        record("u2", partition=1, offset=9, floor=2),
        record("u1", partition=3, offset=2, floor=1),
    ]
    assert store.apply(batch, now_ms=T0, generation="g1").fresh == [True, True, False]
    first, second = script_calls(client)
    layout = store.layout
    base, shard = store.user_base("u1"), layout.shard_of("u1")
    assert base == f"bs:agg:{{{layout.tags[shard]}}}:g1:u:u1"  # the batch's generation's epoch
    assert first[0] == "EVALSHA"
    assert first[2:12] == (
        9,
        f"{base}:c",
        f"{base}:m",
        f"{base}:t",
        f"{base}:ip",
        f"{base}:ua",
        f"{base}:path",
        f"{base}:seen:0",
        f"{base}:seen:3",
        layout.generation_key(shard),
    )
    # ttl, then per request: marks key, offset, floor, time, flags, request id, ip, ua,
    # path; then the user's shard's generation when the requests were read
    request = ["198.51.100.7", "curl/8", "/login"]
    flags = 1 | 2 | 16 | 32  # req, err (403), login (POST /login), botua (curl)
    assert list(first[12:]) == [
        600_000,
        *[1, 7, 5, T0, flags, "r7", *request],
        *[2, 2, 1, T0, flags, "r2", *request],
        shards[shard],
    ]
    u2_shard = layout.shard_of("u2")
    assert u2_shard != shard  # the two users live in two shards: two pending sets
    assert second[2:4] == (8, f"{store.user_base('u2')}:c") and second[-1] == shards[u2_shard]
    assert client.pipeline.return_value.zadd.call_args_list == [
        mock.call(f"bs:agg:{{{layout.tags[shard]}}}:g1:pending", {"u1": T0}, nx=True),
        mock.call(store.pending_key("u2"), {"u2": T0}, nx=True),
    ]
    assert client.pipeline.return_value.pexpire.call_args_list == [
        mock.call(store.pending_key("u1"), 600_000),
        mock.call(store.pending_key("u2"), 600_000),
    ]
    client.pipeline.return_value.execute.assert_called_once_with(raise_on_error=False)


def test_a_batch_read_under_a_generation_redis_no_longer_holds_is_refused_before_sending():
    store, client = fake_store()
    held_generation(store, "g1")
    with (
        mock.patch(
            "botscore.aggregation.redis_state.read_generations", return_value=[b"other"] * 16
        ) as read,
        pytest.raises(StateLost, match=r"generation is [0-9a-f]{32}, not the requests' g0"),
    ):
        store.apply([record("u1")], now_ms=T0, generation="g0")
    read.assert_called_once_with(client, store.layout.generation_keys())
    client.pipeline.assert_not_called()


def test_requests_that_name_no_generation_follow_a_loss_within_a_second():
    store, client = fake_store([b"1", 1, 1], [b"1", 1, 1])
    with mock.patch(
        "botscore.aggregation.redis_state.read_generations", return_value=[b"new"] * 16
    ) as read:
        store.apply([record("u1")], now_ms=T0)
        read.assert_not_called()  # the epoch read under a second ago
        store._read_at -= 1.5
        store.apply([record("u1")], now_ms=T0)
        read.assert_called_once()
    first, second = script_calls(client)
    assert ":01234567:u:u1:" in first[3] and f":{store.epoch}:u:u1:" in second[3]
    assert store.epoch != "01234567" and first[-1] == second[-1] == b""  # checked none


def test_the_script_holds_the_caps_the_readme_states():
    """Literals, as in ``test_feature_oracles``: a changed cap or window fails here."""
    store, _ = fake_store()
    hour = 3_600_000
    assert f"local SETS = {{{{{4 * hour}, 500}}, {{{4 * hour}, 100}}, {{{hour}, 2000}}}}" in (
        store._apply
    )
    assert "local RECENT, MARKS = 32, 10000\n" in store._apply  # times kept, marks/partition


def test_a_missing_script_is_loaded_and_only_the_refused_calls_sent_again():
    refused = NoScriptError("NOSCRIPT No matching script")
    store, client = fake_store([b"1", refused, 1, 1], [b"0", 0])
    assert store.apply([record("u1"), record("u2")], now_ms=T0).fresh == [True, False]
    client.script_load.assert_called_once_with(store._apply)
    *_, again = script_calls(client)
    assert again[2:4] == (8, f"{store.user_base('u2')}:c")
    assert len(script_calls(client)) == 3
    # the pending marks follow the resent calls: the publisher may have dropped them meanwhile
    assert client.pipeline.return_value.zadd.call_count == 2 * 2  # two users' shards, twice


@pytest.mark.parametrize(
    "replies",
    [
        [[redis.ResponseError("ERR user_script:1: oops"), 1]],
        [[NoScriptError("NOSCRIPT"), 1], [NoScriptError("NOSCRIPT"), 1]],
        [[b"1", redis.ResponseError("OOM command not allowed")]],
    ],
    ids=["script error", "script missing twice", "pending refused"],
)
def test_an_error_in_any_reply_is_raised(replies):
    store, _ = fake_store(*replies)
    with pytest.raises(redis.ResponseError):
        store.apply([record()], now_ms=T0)


def test_a_user_whose_keys_are_of_another_type_is_deleted_and_sent_again_once():
    wrong = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    store, client = fake_store([b"1", wrong, 1, 1], [b"1", 1])
    applied = store.apply([record("u1"), record("u2", partition=4)], now_ms=T0)
    assert applied.fresh == [True, True]
    assert applied.reset == {"u2": str(wrong)}
    [deleted] = client.delete.call_args_list
    base = store.user_base("u2")
    assert deleted.args == (*store._keys("u2"), f"{base}:seen:4")
    *_, again = script_calls(client)
    assert again[2:4] == (8, f"{base}:c")


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        redis.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    ],
)
def test_an_error_that_is_not_about_the_users_keys_deletes_nothing(error):
    store, client = fake_store([error, 1])
    with pytest.raises(type(error)):
        store.apply([record()], now_ms=T0)
    client.delete.assert_not_called()


def test_an_empty_batch_sends_nothing():
    store, client = fake_store()
    assert store.apply([], now_ms=T0).fresh == []
    client.pipeline.assert_not_called()


@pytest.mark.parametrize(
    "changes",
    [
        {"time_ms": 2**53},
        {"time_ms": 2**63 - 1},
        {"time_ms": -1},
        {"source": SourceRef("web-logs", 0, 2**53)},
        {"source": SourceRef("web-logs", -1, 7)},
        {"replay_floor": 2**53},
        {"replay_floor": -1},
    ],
    ids=str,
)
def test_integers_lua_cannot_hold_exactly_are_refused_before_anything_is_sent(changes):
    store, client = fake_store()
    with pytest.raises(ValueError, match=r"outside 0\.\.9007199254740991"):
        store.apply([record(), record(**changes)], now_ms=0)
    client.pipeline.assert_not_called()


def test_the_largest_exact_integers_are_sent():
    store, client = fake_store([b"1", 1])
    largest = 2**53 - 1
    edge = record(time_ms=largest, source=SourceRef("w", largest, largest), replay_floor=largest)
    assert store.apply([edge], now_ms=0).fresh == [True]
    [call] = script_calls(client)
    assert call[-9:-5] == (largest, largest, largest, 1 | 2 | 16 | 32)


def test_a_ttl_lua_cannot_hold_exactly_is_refused():
    with pytest.raises(ValueError, match="ttl"):
        RedisFeatureStore(mock.MagicMock(), ttl_s=2**53 // 1000 + 1)


def test_confirmed_publications_hand_the_script_their_time_and_the_interval_in_one_pipeline():
    store, client = fake_store([1, 2])
    store.published(
        [("u1", 1_700_000_000_000_123, 3), ("u2", 1_700_000_000_000_456, 1)],
        now_ms=T0,
        interval_ms=2000,
    )
    sha = store._published.sha
    assert script_calls(client) == [
        ("EVALSHA", sha, 2, f"{store.user_base(u)}:m", store.pending_key(u), u, born, v, T0, 2000)
        for u, born, v in (("u1", 1_700_000_000_000_123, 3), ("u2", 1_700_000_000_000_456, 1))
    ]
    assert client.pipeline.return_value.execute.call_count == 1


def test_publications_redis_lacked_the_script_for_are_sent_again_once_it_is_loaded():
    store, client = fake_store([NoScriptError("NOSCRIPT"), NoScriptError("NOSCRIPT")], [1, 1])
    store.published([("u1", 5, 1), ("u2", 6, 1)], now_ms=T0, interval_ms=2000)
    client.script_load.assert_called_once()
    assert len(script_calls(client)) == 4


def test_requests_read_under_another_generation_raise_state_lost():
    refusal = redis.ResponseError("STALESTATE read under another generation of the feature state")
    store, client = fake_store([b"1", refusal, 1, 1])
    held_generation(store, "g0")
    u2_generation = store.layout.generation_key(store.layout.shard_of("u2"))
    with pytest.raises(StateLost, match=f"{re.escape(u2_generation)} is no longer"):
        store.apply([record("u1"), record("u2")], now_ms=T0, generation="g0")
    client.delete.assert_not_called()  # nothing of the user's is deleted


def test_a_generation_replaced_is_recorded_as_an_epoch_to_sweep_and_a_first_read_is_not():
    client = mock.MagicMock()
    store = RedisFeatureStore(client, ttl_s=600)
    with mock.patch("botscore.aggregation.redis_state.read_generations", return_value=[b"g"] * 16):
        first = store.read_generation()
        store.read_generation()  # the same generation again
    client.sadd.assert_not_called()
    with mock.patch(
        "botscore.aggregation.redis_state.read_generations", return_value=[b"lost"] * 16
    ):
        assert store.read_generation() != first
    client.sadd.assert_called_once_with("bs:agg:superseded-epochs", first[:8])
    client.pexpire.assert_called_once_with("bs:agg:superseded-epochs", 600_000)
