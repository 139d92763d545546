"""WebLogs per second through the aggregation topology under `sparse run` (issue 12's (d)).

Pre-loads a fresh web-logs topic with the simulator's mix (2,000 users, 30% bots, keyed by
user as the edge sends them), starts `sparse run -n aggregation` on it with a group of its
own and Redis database 7 (emptied before and after), and times from the moment the spout
holds every partition to the moment the group has committed every offset. Commits come at
most every ``kafka.commit_interval_ms`` and are sampled every 0.2 s, so the figure is a
little low. Prints figures only. Needs the local stack (`make up`). The plain loop doing
the same Redis work is ``bench/feature_stage.py``'s. ``--profile DIR`` also records where
the CPU goes meanwhile (``bench/profiling.py``).
`PYTHONPATH=src .venv/bin/python bench/aggregation_topology.py --requests 200000`
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace
from pathlib import Path

from kafka.admin import KafkaAdminClient

from botscore.clock import now_ms
from botscore.settings import KafkaSettings, RedisSettings, load_project_settings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.transport.kafka_clients import connection_config, create_producer, ensure_topics
from botscore.transport.redis_client import create_redis

# Sibling modules: run as a script, this directory is on sys.path.
from figures import keep_figures
from profiling import profiled, topology_processes
from scoring_pipeline import (
    LOGS,
    STATE,
    committed_all,
    delete_topics,
    end_offsets,
    running_topology,
    user_env,
    wait_assigned,
)

REDIS_DB = 7
SIMULATED_S = 600


def preload(kafka: KafkaSettings, topic: str, requests: int) -> dict[int, int]:
    """``requests`` simulated WebLogs on ``topic``, keyed by user; its end offsets."""
    start = now_ms() - SIMULATED_S * 1000  # in the past: none is stamped in the future
    logs = TrafficGenerator(
        build_population(2000, 0.3, 1), requests / SIMULATED_S, SIMULATED_S, 1, start
    )
    producer = create_producer(kafka, client_id="bench-web-logs", linger_ms=50, batch_size=1 << 20)
    for log in logs:
        producer.send(topic, key=log.user_id.encode(), value=log.SerializeToString())
    producer.flush()
    producer.close()
    return end_offsets(kafka, topic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="pre-loaded WebLogs")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="start and run, each")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="record CPU per process and samples into DIR"
    )
    options = parser.parse_args()
    kafka = load_project_settings().kafka
    run = uuid.uuid4().hex[:8]
    topic, group = f"bench-web-logs-{run}", f"bench-aggregation-{run}"
    out = replace(
        kafka,
        features_topic=f"bench-agg-features-{run}",
        dead_letter_topic=f"bench-agg-dead-letters-{run}",
    )
    topics = [topic, out.features_topic, out.dead_letter_topic]
    ensure_topics(out, topics)
    redis = create_redis(RedisSettings(db=REDIS_DB))
    redis.flushdb()
    log_path = LOGS / "bench-aggregation-topology.log"
    env = user_env(
        BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC=topic,
        BOTSCORE_AGGREGATION_CONSUMER_GROUP=group,
        BOTSCORE_KAFKA_FEATURES_TOPIC=out.features_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=out.dead_letter_topic,
        BOTSCORE_REDIS_DB=str(REDIS_DB),
    )
    admin = KafkaAdminClient(**connection_config(kafka))
    try:
        end = preload(out, topic, options.requests)
        total = sum(end.values())
        print(
            f"pre-loaded {total:,} WebLogs on {topic}; sparse run -n aggregation (log: {log_path})"
        )
        with running_topology("aggregation", env, log_path) as process:
            if not wait_assigned(process, log_path, len(end), options.timeout_s):
                return
            processes, python = topology_processes(process.pid, STATE)
            phase = options.profile / "aggregation" if options.profile else None
            with profiled(phase, processes, python, jvm="jvm") as recorded:
                started = time.perf_counter()
                deadline = time.monotonic() + options.timeout_s
                while not committed_all(admin, group, end):
                    if process.poll() is not None or time.monotonic() > deadline:
                        print("topology exited or timed out before committing every WebLog")
                        return
                    time.sleep(0.2)
                elapsed = time.perf_counter() - started
        if recorded:
            recorded.save(total, "WebLog")
        print(f"aggregation topology: {total:,} WebLogs committed in {elapsed:.1f} s")
        keep_figures(aggregation_web_logs_per_s=total / elapsed)
    finally:
        admin.close()
        delete_topics(out, topics)
        redis.flushdb()


if __name__ == "__main__":
    main()
