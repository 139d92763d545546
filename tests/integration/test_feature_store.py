"""The Redis feature store against real Redis: same features as memory, exactly once."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from botscore.aggregation.definitions import compute_features, request_record
from botscore.aggregation.offline import final_features
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import SourceRef

from .harness import empty_redis_db

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 4
T0 = 1_790_000_000_000


def one_user_logs(count: int) -> list[WebLog]:
    return [
        WebLog(time_unix_ms=T0 + i * 700, user_id="u1", request_id=f"r{i}", schema_version=1)
        for i in range(count)
    ]


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


def test_shuffled_and_redelivered_requests_give_the_memory_features(client):
    logs = list(TrafficGenerator(build_population(150, 0.4, 9), 30, 1500, 9, T0))
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs)]
    rng = random.Random(9)
    delivered = records[:]
    rng.shuffle(delivered)
    delivered += rng.sample(records, len(records) // 5)  # redeliveries
    store = RedisFeatureStore(client, ttl_s=600)
    fresh = []
    for i in range(0, len(delivered), 200):
        fresh += store.apply(delivered[i : i + 200], now_ms=0)
    assert sum(fresh) == len(records), "a redelivery was counted twice"

    expected = final_features(logs)
    users = sorted(expected)
    for user, candidate in zip(users, store.read(users), strict=True):
        assert candidate is not None
        assert candidate.state.last_ms == expected[user].window_end_ms
        assert compute_features(candidate.state) == expected[user].features, user
    assert {u.decode() for u in client.zrange(store.pending_key, 0, -1)} == set(users)
    keys = list(client.scan_iter("bs:agg:{*"))
    assert keys and all(0 < client.pttl(k) <= 600_000 for k in keys)


def test_dedup_marks_below_the_replay_floor_are_forgotten(client):
    store = RedisFeatureStore(client, ttl_s=600)
    one_user = one_user_logs(30)
    records = [
        request_record(e, SourceRef("w", 0, i), replay_floor=i) for i, e in enumerate(one_user)
    ]
    store.apply(records, now_ms=0)
    seen = f"bs:agg:{{{one_user[0].user_id}}}:seen:0"
    # every record carried a higher floor; only marks at or above the last floor remain
    assert [m.decode() for m in client.zrange(seen, 0, -1)] == ["29"]


def test_publication_bookkeeping(client):
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(2)
    user = logs[0].user_id
    store.apply([request_record(logs[0], SourceRef("w", 0, 0))], now_ms=1000)
    assert store.due(1000, 10) == [user]
    (candidate,) = store.read([user])
    # a request arrives while the publication is in flight: due again one interval later
    store.apply([request_record(logs[1], SourceRef("w", 0, 1))], now_ms=1500)
    store.published(user, candidate.version, now_ms=2000, interval_ms=2000)
    assert store.due(3999, 10) == []
    assert store.due(4000, 10) == [user]
    (candidate,) = store.read([user])
    assert candidate.published_ms == 2000
    store.published(user, candidate.version, now_ms=4100, interval_ms=2000)
    assert client.zcard(store.pending_key) == 0
    assert store.read(["nobody"]) == [None]
