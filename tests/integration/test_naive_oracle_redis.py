"""The Redis feature store against the naive oracle, on random request sequences.

The same property as ``tests/unit/aggregation/test_naive_oracle.py``, with the Lua script's
bucket trimming, set windows, caps and tie order in place of the memory store's: each
random request sequence goes through ``RedisFeatureStore`` in its (random) arrival order and
the features read back must equal what ``naive_features`` computes from the whole list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
import redis
from hypothesis import given, settings

from botscore.aggregation import definitions, redis_state
from botscore.aggregation.definitions import compute_features, request_record
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import SourceRef
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


@contextmanager
def small_caps() -> Iterator[None]:
    """The Redis store with ``SMALL_CAPS`` and ``SMALL_RECENT`` in place of its own."""
    sets = tuple(dataclasses.replace(s, cap=SMALL_CAPS[s.name]) for s in definitions.DISTINCT_SETS)
    with (
        mock.patch.object(definitions, "DISTINCT_SETS", sets),
        mock.patch.object(redis_state, "RECENT_REQUESTS", SMALL_RECENT),
    ):
        yield


def redis_features(client: redis.Redis, logs: list[WebLog]) -> dict[str, float]:
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600)
    records = [request_record(e, SourceRef("oracle", 0, i)) for i, e in enumerate(logs)]
    assert all(store.apply(records, now_ms=0)), "a request was taken for a redelivery"
    (candidate,) = store.read([USER])
    assert candidate is not None
    return compute_features(candidate.state)


@settings(max_examples=30, deadline=None)
@given(logs=request_sequences())
def test_redis_store_equals_the_naive_oracle(client: redis.Redis, logs: list[WebLog]) -> None:
    assert_same_features(redis_features(client, logs), naive_features(logs))


@settings(max_examples=30, deadline=None)
@given(logs=request_sequences(max_size=40))
def test_redis_store_equals_the_naive_oracle_past_small_caps(
    client: redis.Redis, logs: list[WebLog]
) -> None:
    with small_caps():
        got = redis_features(client, logs)
    assert_same_features(got, naive_features(logs, caps=SMALL_CAPS, recent=SMALL_RECENT))
