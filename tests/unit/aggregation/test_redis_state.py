"""What the Redis store hands its script, checked without Redis: keys and integer ranges.

The script itself runs against real Redis in ``tests/integration/test_naive_oracle_redis.py``.
"""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import pytest

from botscore.aggregation.definitions import request_record
from botscore.aggregation.redis_state import DEDUP_MARKS, RedisFeatureStore
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import RequestRecord, SourceRef

T0 = 1_790_000_000_000


def record(partition: int = 0, offset: int = 7, floor: int = 5, **changes: object) -> RequestRecord:
    log = WebLog(time_unix_ms=T0, user_id="u1", request_id="r1", schema_version=1)
    made = request_record(log, SourceRef("web-logs", partition, offset), floor)
    return dataclasses.replace(made, **changes)


def fake_store() -> tuple[RedisFeatureStore, mock.MagicMock]:
    client = mock.MagicMock()
    client.pipeline.return_value.execute.return_value = [1, 1, 1]
    return RedisFeatureStore(client, ttl_s=600), client


def test_a_request_is_checked_and_marked_in_its_own_partition_only():
    store, _ = fake_store()
    store._apply = mock.Mock()
    store.apply([record(partition=0, offset=7, floor=5), record(partition=3, offset=2, floor=1)], 0)
    (first, second) = [call.kwargs for call in store._apply.call_args_list]
    base = "bs:agg:{u1}"
    assert first["keys"] == [
        f"{base}:c",
        f"{base}:m",
        f"{base}:t",
        f"{base}:seen:0",
        f"{base}:ip",
        f"{base}:ua",
        f"{base}:path",
    ]
    assert second["keys"][3] == f"{base}:seen:3"
    assert first["args"][1:] == [7, 5, 600_000, DEDUP_MARKS]
    assert second["args"][1:] == [2, 1, 600_000, DEDUP_MARKS]
    assert json.loads(first["args"][0])["t"] == T0


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
    store, client = fake_store()
    largest = 2**53 - 1
    edge = record(time_ms=largest, source=SourceRef("w", largest, largest), replay_floor=largest)
    assert store.apply([edge], now_ms=0) == [True]
    client.pipeline.assert_called_once()


def test_a_ttl_lua_cannot_hold_exactly_is_refused():
    with pytest.raises(ValueError, match="ttl"):
        RedisFeatureStore(mock.MagicMock(), ttl_s=2**53 // 1000 + 1)


def test_the_script_is_handed_the_caps_the_readme_states():
    """Literals, as in ``test_feature_oracles``: a changed cap or window fails here."""
    store, _ = fake_store()
    store._apply = mock.Mock()
    store.apply([record()], 0)
    [call] = store._apply.call_args_list
    spec = json.loads(call.kwargs["args"][0])
    hour = 3_600_000
    assert [(s["w"], s["c"]) for s in spec["s"]] == [(4 * hour, 500), (4 * hour, 100), (hour, 2000)]
    assert spec["rc"] == 32  # recent request times
    assert call.kwargs["args"][4] == 10_000  # dedup marks per partition


def test_a_confirmed_publication_hands_the_script_its_time_and_the_interval():
    store, _ = fake_store()
    store._published = mock.Mock()
    store.published("u1", 3, now_ms=T0, interval_ms=2000)
    store._published.assert_called_once_with(
        keys=["bs:agg:{u1}:m", "bs:agg:pending"], args=["u1", 3, T0, 2000]
    )
