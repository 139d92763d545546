"""The Redis feature store against the naive oracle, on random request sequences.

The same property as ``tests/unit/aggregation/test_naive_oracle.py``, with the Lua script's
bucket trimming, set windows, caps and tie order in place of the memory store's: each
random request sequence goes through ``RedisFeatureStore`` in its (random) arrival order and
the features read back must equal what ``naive_features`` computes from the whole list.
Delivery is at least once: requests arrive on several partitions, some again later, each
with its partition's tightest replay floor, and each must still count once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from botscore.aggregation.definitions import DISTINCT_SETS, compute_features, request_record
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import RequestRecord, SourceRef
from tests.unit.aggregation.naive_features import (
    USER,
    assert_same_features,
    naive_features,
    request_sequences,
)

from .harness import empty_redis_db

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 9  # the stack's Redis, a database of these tests' own
# As in the unit property: caps a few dozen requests overflow, so eviction is exercised.
SMALL_CAPS = {"ip": 3, "ua": 2, "path": 4}
SMALL_RECENT = 5


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    # Module scope: Hypothesis runs many examples per test; each empties the database itself.
    with empty_redis_db(REDIS_DB) as client:
        yield client


SMALL_SETS = tuple(dataclasses.replace(s, cap=SMALL_CAPS[s.name]) for s in DISTINCT_SETS)


PARTITIONS = 3


@st.composite
def deliveries(draw: st.DrawFn, logs: list[WebLog]) -> list[RequestRecord]:
    """Every request once, on a random partition, then some again, in a random order.

    Offsets count from 0 on every partition, so partitions share offset numbers. Each
    delivery carries its partition's tightest replay floor: the lowest offset that partition
    still delivers from then on.
    """
    partitions = draw(
        st.lists(st.integers(0, PARTITIONS - 1), min_size=len(logs), max_size=len(logs))
    )
    next_offset = [0] * PARTITIONS
    sources = []
    for partition in partitions:
        sources.append(SourceRef("oracle", partition, next_offset[partition]))
        next_offset[partition] += 1
    again = draw(st.lists(st.integers(0, len(logs) - 1), max_size=len(logs)))
    order = list(range(len(logs))) + again
    floors: list[int] = []
    lowest_ahead = [max(next_offset)] * PARTITIONS
    for index in reversed(order):
        source = sources[index]
        lowest_ahead[source.partition] = min(lowest_ahead[source.partition], source.offset)
        floors.append(lowest_ahead[source.partition])
    floors.reverse()
    return [
        request_record(logs[index], sources[index], floor)
        for index, floor in zip(order, floors, strict=True)
    ]


def redis_features(
    client: redis.Redis,
    logs: list[WebLog],
    delivered: list[RequestRecord],
    store_options: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600, **(store_options or {}))
    fresh = store.apply(delivered, now_ms=0).fresh
    assert sum(fresh) == len(logs), (
        "a request was counted twice, or a new one taken for a redelivery"
    )
    (candidate,) = store.read([USER])
    assert candidate is not None
    return compute_features(candidate.state)


@settings(max_examples=30, deadline=None)
@given(logs=request_sequences(), data=st.data())
def test_redis_store_equals_the_naive_oracle(
    client: redis.Redis, logs: list[WebLog], data: st.DataObject
) -> None:
    delivered = data.draw(deliveries(logs))
    assert_same_features(redis_features(client, logs, delivered), naive_features(logs))


@settings(max_examples=30, deadline=None)
@given(logs=request_sequences(max_size=40), data=st.data())
def test_redis_store_equals_the_naive_oracle_past_small_caps(
    client: redis.Redis, logs: list[WebLog], data: st.DataObject
) -> None:
    delivered = data.draw(deliveries(logs))
    got = redis_features(client, logs, delivered, {"sets": SMALL_SETS, "recent": SMALL_RECENT})
    assert_same_features(got, naive_features(logs, caps=SMALL_CAPS, recent=SMALL_RECENT))


def _request(index: int) -> WebLog:
    return WebLog(time_unix_ms=1_790_000_000_000 + index, user_id=USER, request_id=f"r{index}")


def test_a_replay_floor_drops_only_its_own_partitions_marks(client: redis.Redis) -> None:
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600)
    on_one = request_record(_request(0), SourceRef("oracle", 1, 3), replay_floor=3)
    on_zero = request_record(_request(1), SourceRef("oracle", 0, 10), replay_floor=10)
    assert store.apply([on_one, on_zero], now_ms=0).fresh == [True, True]
    assert store.apply([on_one], now_ms=0).fresh == [False], (
        "partition 0's floor dropped a mark of 1"
    )


def test_marks_beyond_the_cap_are_dropped_lowest_offset_first(client: redis.Redis) -> None:
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600, marks=5)
    records = [request_record(_request(i), SourceRef("oracle", 0, i)) for i in range(30)]
    assert all(store.apply(records, now_ms=0).fresh)
    assert store.apply([records[25], records[29]], now_ms=0).fresh == [False, False]
    marks = client.zrange(f"{store.user_base(USER)}:seen:0", 0, -1)
    assert [int(m.split(b":")[0]) for m in marks] == list(range(25, 30))
