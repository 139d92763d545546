"""Per-request cost of the feature stage: decode, the update, Redis, features.

Prints figures only; no assertions. Needs the local Redis (`make up`); uses database 7 and
empties it. Run with `make bench`.
"""

from __future__ import annotations

import time

from botscore.aggregation.definitions import compute_features, request_record, update_for
from botscore.aggregation.offline import MemoryFeatureStore
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.clock import now_ms
from botscore.settings import AggregationSettings, RedisSettings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.transport.redis_client import create_redis
from botscore.wire.codec import decode_web_log
from botscore.wire.records import SourceRef

BATCH = 256


def report(step: str, seconds: float, requests: int) -> None:
    print(f"{step:<34}{seconds / requests * 1e6:8.2f} µs/request  ({requests / seconds:,.0f}/s)")


def main() -> None:
    logs = list(TrafficGenerator(build_population(2000, 0.3, 1), 100, 600, 1, 1_790_000_000_000))
    payloads = [log.SerializeToString() for log in logs]
    n = len(logs)
    print(f"{n} simulated requests from 2000 users")

    started = time.perf_counter()
    now, skew = now_ms(), AggregationSettings().max_event_skew_ms
    records = [
        request_record(decode_web_log(p, log.user_id.encode(), now, skew), SourceRef("w", 0, i))
        for i, (log, p) in enumerate(zip(logs, payloads, strict=True))
    ]
    report("decode + request record", time.perf_counter() - started, n)

    started = time.perf_counter()
    updates = [update_for(r) for r in records]
    report("update_for", time.perf_counter() - started, n)

    memory = MemoryFeatureStore()
    started = time.perf_counter()
    for record, update in zip(records, updates, strict=True):
        memory.apply(record.user_id, update)
    report("in-memory store (training)", time.perf_counter() - started, n)

    client = create_redis(RedisSettings(db=7))
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600)
    started = time.perf_counter()
    for i in range(0, n, BATCH):
        store.apply(records[i : i + BATCH], now_ms=0)
    report(f"Redis store, batches of {BATCH}", time.perf_counter() - started, n)

    users = memory.users()
    started = time.perf_counter()
    candidates = store.read(users)
    states = [c.state for c in candidates if c is not None]
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    for state in states:
        compute_features(state)
    print(
        f"{'read state from Redis':<34}{read_s / len(users) * 1e6:8.2f} µs/user\n"
        f"{'compute_features':<34}{(time.perf_counter() - started) / len(states) * 1e6:8.2f}"
        " µs/user"
    )
    print(f"Redis used_memory {client.info('memory')['used_memory'] / 2**20:.1f} MiB")
    client.flushdb()


if __name__ == "__main__":
    main()
