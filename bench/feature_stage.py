"""Per-request cost of the feature stage: decode, the update, Redis, features.

Prints figures only; no assertions. Needs the local Redis (`make up`); uses database 7 and
empties it. Run with `make bench`.

The requests are the simulator's mix (2,000 users, 30% bots), keyed by user onto the
project's partitions as the edge sends them, each carrying the replay floor a spout with
``kafka.max_in_flight`` messages in flight would give it. The Redis store runs at batch
sizes 1, 100 and 500 (the aggregation bolt's batch is ``aggregation.batch_size``) and is
timed three ways: wall clock, this process's CPU and the Redis server's CPU, since on a
2-core machine the two processes share the cores. The plain loop is issue 12's (d)
baseline: one process decoding payloads and storing them, batch by batch, no Storm.
"""

from __future__ import annotations

import time
import zlib

import redis

from botscore.aggregation.definitions import compute_features, request_record, update_for
from botscore.aggregation.offline import MemoryFeatureStore
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.clock import now_ms
from botscore.settings import AggregationSettings, KafkaSettings, RedisSettings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.transport.redis_client import create_redis
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.codec import decode_web_log
from botscore.wire.records import RequestRecord, SourceRef

# A sibling module: run as a script, this directory is on sys.path.
from figures import keep_figures

BATCH_SIZES = (1, 100, 500)
PLAIN_LOOP_BATCH = 500


def report(step: str, seconds: float, requests: int) -> None:
    print(f"{step:<34}{seconds / requests * 1e6:8.2f} µs/request  ({requests / seconds:,.0f}/s)")


def redis_cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def sources(logs: list[WebLog]) -> list[tuple[SourceRef, int]]:
    """Each log's partition (by user, as the edge keys it), offset and replay floor."""
    kafka = KafkaSettings()
    partitions = kafka.topic_partitions
    in_flight = kafka.max_in_flight // partitions
    next_offset = [0] * partitions
    result = []
    for log in logs:
        partition = zlib.crc32(log.user_id.encode()) % partitions
        offset = next_offset[partition]
        next_offset[partition] += 1
        result.append((SourceRef("web-logs", partition, offset), max(0, offset - in_flight)))
    return result


def time_store(
    client: redis.Redis, records: list[RequestRecord], batch: int
) -> tuple[float, float]:
    """Store ``records`` by ``batch``; CPU µs per request of Redis and of this process."""
    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600)
    store.apply(records[:1], now_ms=0)  # script loaded, connection open
    client.flushdb()
    n = len(records)
    server, cpu, wall = redis_cpu_s(client), time.process_time(), time.perf_counter()
    for i in range(0, n, batch):
        store.apply(records[i : i + batch], now_ms=0)
    wall = time.perf_counter() - wall
    cpu, server = time.process_time() - cpu, redis_cpu_s(client) - server
    print(
        f"{f'Redis store, batches of {batch}':<34}{wall / n * 1e6:8.2f} µs/request"
        f"  ({n / wall:,.0f}/s; CPU µs/request: bench {cpu / n * 1e6:.1f},"
        f" Redis {server / n * 1e6:.1f})"
    )
    return server / n * 1e6, cpu / n * 1e6


def main() -> None:
    logs = list(TrafficGenerator(build_population(2000, 0.3, 1), 100, 600, 1, 1_790_000_000_000))
    payloads = [log.SerializeToString() for log in logs]
    refs = sources(logs)
    n = len(logs)
    print(f"{n} simulated requests from 2000 users")

    started = time.perf_counter()
    now, skew = now_ms(), AggregationSettings().max_event_skew_ms
    records = [
        request_record(decode_web_log(p, log.user_id.encode(), now, skew, max_age_ms=None), *ref)
        for log, p, ref in zip(logs, payloads, refs, strict=True)
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
    for batch in BATCH_SIZES:
        redis_us, client_us = time_store(client, records, batch)

    client.flushdb()
    store = RedisFeatureStore(client, ttl_s=600)
    keyed = [(p, log.user_id.encode()) for p, log in zip(payloads, logs, strict=True)]
    started = time.perf_counter()
    for i in range(0, n, PLAIN_LOOP_BATCH):
        now = now_ms()
        batch = [
            request_record(decode_web_log(payload, key, now, skew, max_age_ms=None), *ref)
            for (payload, key), ref in zip(
                keyed[i : i + PLAIN_LOOP_BATCH], refs[i : i + PLAIN_LOOP_BATCH], strict=True
            )
        ]
        store.apply(batch, now)
    report(f"plain loop: decode + store by {PLAIN_LOOP_BATCH}", time.perf_counter() - started, n)

    users = memory.users()
    server, started = redis_cpu_s(client), time.perf_counter()
    candidates = store.read(users)
    states = [c.state for c in candidates if c is not None]
    read_s = time.perf_counter() - started
    read_us = (redis_cpu_s(client) - server) / len(users) * 1e6
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
    # At the largest batch, the aggregation bolt's (aggregation.batch_size up to 500).
    keep_figures(
        feature_store_redis_cpu_us_per_request=redis_us,
        feature_store_client_cpu_us_per_request=client_us,
        feature_store_redis_cpu_us_per_published_user=read_us,
    )


if __name__ == "__main__":
    main()
