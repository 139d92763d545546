"""The feature state on one Redis and on a Redis Cluster of three primaries: how the
Redis CPU per request splits over the primaries.

Prints figures only; no assertions. Starts its own cluster (``stack/redis/cluster.sh``,
ports 7321-7323, data under ``$BOTSCORE_STATE/bench-cluster``) and stops it after; the
single Redis is the stack's (`make up`), database 7, emptied. The same requests as
``feature_stage.py`` (the simulator's mix, 2,000 users) are stored in batches of 500,
48 shards (16 per primary). On this machine the primaries share its cores with the bench,
so the wall-clock rate says little; the CPU each primary spent is the figure: how much
more the cluster spends in all than one Redis (more, smaller round trips), and the busiest
primary's share (a third when even). ``sizing.py`` plans primaries with both.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from botscore.aggregation.definitions import request_record
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.settings import RedisSettings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.transport.redis_client import RedisClient, create_redis, create_redis_cluster
from botscore.wire.records import RequestRecord

# Sibling modules: run as a script, this directory is on sys.path.
from feature_stage import redis_cpu_s, sources
from figures import keep_figures

ROOT = Path(__file__).resolve().parents[1]
FIRST_PORT = 7321
PRIMARIES = 3
SHARDS = 48
BATCH = 500


def cluster_script(command: str, state: Path) -> None:
    env = {**os.environ, "BOTSCORE_STATE": str(state), "REDIS_CLUSTER_PORT": str(FIRST_PORT)}
    subprocess.run([str(ROOT / "stack/redis/cluster.sh"), command], env=env, check=True)


def store_all(client: RedisClient, records: list[RequestRecord]) -> float:
    """Store ``records`` by ``BATCH`` in a fresh state; the wall seconds it took."""
    store = RedisFeatureStore(client, ttl_s=600, shards=SHARDS)
    store.apply(records[:1], now_ms=0)  # scripts loaded, connections open
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        store.apply(records[i : i + BATCH], now_ms=0)
    return time.perf_counter() - started


def main() -> None:
    logs = list(TrafficGenerator(build_population(2000, 0.3, 1), 100, 600, 1, 1_790_000_000_000))
    records = [request_record(log, *ref) for log, ref in zip(logs, sources(logs), strict=True)]
    n = len(records)
    print(f"{n} simulated requests from 2000 users, batches of {BATCH}, {SHARDS} shards")

    single = create_redis(RedisSettings(db=7))
    single.flushdb()
    before = redis_cpu_s(single)
    wall = store_all(single, records)
    one_us = (redis_cpu_s(single) - before) / n * 1e6
    print(f"one Redis: {n / wall:,.0f} requests/s, Redis CPU {one_us:.1f} µs/request")
    single.flushdb()

    state = Path(os.environ.get("BOTSCORE_STATE", ROOT / ".stack")) / "bench-cluster"
    cluster_script("start", state)
    try:
        nodes = [create_redis(RedisSettings(port=FIRST_PORT + i)) for i in range(PRIMARIES)]
        cluster = create_redis_cluster(
            RedisSettings(), ",".join(f"127.0.0.1:{FIRST_PORT + i}" for i in range(PRIMARIES))
        )
        cluster.flushall(target_nodes=cluster.PRIMARIES)
        for node in nodes:
            node.config_resetstat()
        before_nodes = [redis_cpu_s(node) for node in nodes]
        wall = store_all(cluster, records)
        spent = [
            (redis_cpu_s(node) - b) / n * 1e6 for node, b in zip(nodes, before_nodes, strict=True)
        ]
        total = sum(spent)
        shares = ", ".join(f"{us:.1f} µs ({us / total:.0%})" for us in spent)
        print(
            f"cluster of {PRIMARIES}: {n / wall:,.0f} requests/s, Redis CPU {total:.1f} "
            f"µs/request in all, per primary {shares}"
        )
        # The time each primary spent in commands (its process CPU also counts the event
        # loop, connections and the cluster bus).
        commands = [
            sum(stat["usec"] for stat in node.info("commandstats").values()) for node in nodes
        ]
        in_commands = ", ".join(f"{us / sum(commands):.0%}" for us in commands)
        keys = [node.dbsize() for node in nodes]
        print(f"time in commands per primary: {in_commands}; keys per primary: {keys}")
        cluster.flushall(target_nodes=cluster.PRIMARIES)
        cluster.close()
    finally:
        cluster_script("stop", state)
    keep_figures(
        state_cluster_redis_cpu_us_per_request=total,
        state_cluster_cpu_vs_one_redis=total / one_us,
        state_cluster_busiest_primary_share=max(spent) / total,
    )


if __name__ == "__main__":
    main()
