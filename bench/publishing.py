"""Users published per second by the aggregation topology's publishers, nothing else running.

Stores one request for each of ``--users`` new users in Redis database 7 (through
``RedisFeatureStore``, as the aggregation bolt stores them) and parks their pending sets
under other names; starts `sparse run -n aggregation` with ``--publishers`` publisher
spouts (``aggregation.publishers``) on an empty web-logs topic; once it reads, renames the
pending sets back (every user due at once) and times from the first ``UserFeatures``
message on a fresh features topic to the last. So this is the publishers' ceiling:
reading the state, computing features, the multilang hop, the feature producers and
Kafka's confirmations recorded in Redis. ``--profile DIR`` records where the CPU goes
meanwhile (``bench/profiling.py``). Prints figures only; needs `make up`.
`PYTHONPATH=src .venv/bin/python bench/publishing.py --users 100000 --publishers 2`
"""

from __future__ import annotations

import argparse
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from botscore.aggregation.definitions import request_record
from botscore.aggregation.redis_state import feature_store
from botscore.clock import now_ms
from botscore.settings import RedisSettings, Settings, load_project_settings
from botscore.transport.kafka_clients import ensure_topics
from botscore.transport.redis_client import create_redis
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import SourceRef

# Sibling modules: run as a script, this directory is on sys.path.
from figures import keep_figures
from profiling import profiled, topology_processes
from scoring_pipeline import (
    LOGS,
    STATE,
    delete_topics,
    end_offsets,
    running_topology,
    user_env,
    wait_assigned,
)

REDIS_DB = 7
STORE_BATCH = 500


def store_users(settings: Settings, users: int) -> list[str]:
    """One request from each of ``users`` new users in the feature state, due now; their
    pending sets' names."""
    store = feature_store(settings)
    partitions = settings.kafka.topic_partitions
    now = now_ms()
    records = []
    for i in range(users):
        user_id = f"bench-user-{i}"
        log = WebLog(
            request_id=f"r{i}",
            user_id=user_id,
            ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            time_unix_ms=now - 1000,
            method="GET",
            path="/",
            status=200,
            user_agent="Mozilla/5.0",
        )
        partition = zlib.crc32(user_id.encode()) % partitions
        records.append(request_record(log, SourceRef("bench", partition, i), 0))
    for i in range(0, users, STORE_BATCH):
        store.apply(records[i : i + STORE_BATCH], now_ms())
    return store.pending_keys()


def rename_all(client: Any, names: Mapping[str, str]) -> None:
    for old, new in names.items():
        if client.exists(old):
            client.rename(old, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users due at the start")
    parser.add_argument("--publishers", type=int, default=1, help="aggregation.publishers")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="start and run, each")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="record CPU per process and samples into DIR"
    )
    options = parser.parse_args()
    project = load_project_settings()
    run = uuid.uuid4().hex[:8]
    web_logs = f"bench-pub-web-logs-{run}"
    kafka = replace(
        project.kafka,
        features_topic=f"bench-pub-features-{run}",
        dead_letter_topic=f"bench-pub-dead-letters-{run}",
    )
    topics = [web_logs, kafka.features_topic, kafka.dead_letter_topic]
    ensure_topics(kafka, topics)
    settings = replace(project, kafka=kafka, redis=RedisSettings(db=REDIS_DB))
    redis = create_redis(settings.redis)
    redis.flushdb()
    log_path = LOGS / "bench-publishing.log"
    env = user_env(
        BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC=web_logs,
        BOTSCORE_AGGREGATION_CONSUMER_GROUP=f"bench-pub-{run}",
        BOTSCORE_AGGREGATION_PUBLISHERS=str(options.publishers),
        BOTSCORE_KAFKA_FEATURES_TOPIC=kafka.features_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic,
        BOTSCORE_REDIS_DB=str(REDIS_DB),
    )
    try:
        pending = store_users(settings, options.users)
        parked = {key: f"{key}:parked" for key in pending}
        rename_all(redis, parked)  # nothing is due until the topology runs
        print(
            f"{options.users:,} users stored; sparse run -n aggregation with "
            f"{options.publishers} publishers (log: {log_path})"
        )
        with running_topology("aggregation", env, log_path) as process:
            if not wait_assigned(process, log_path, project.kafka.topic_partitions, 600):
                return
            time.sleep(5)  # the publishers start beside the web-logs spout
            processes, python = topology_processes(process.pid, STATE)
            phase = options.profile / "publishing" if options.profile else None
            with profiled(phase, processes, python, jvm="jvm") as recorded:
                rename_all(redis, {new: old for old, new in parked.items()})
                published, first, last = 0, 0.0, 0.0
                deadline = time.monotonic() + options.timeout_s
                while published < options.users:
                    if process.poll() is not None or time.monotonic() > deadline:
                        print(f"topology exited or timed out at {published:,} users published")
                        return
                    time.sleep(0.1)
                    published = sum(end_offsets(kafka, kafka.features_topic).values())
                    if published and not first:
                        first = time.perf_counter()
                    last = time.perf_counter()
            time.sleep(5)  # anything published twice arrives meanwhile
            total = sum(end_offsets(kafka, kafka.features_topic).values())
        if recorded:
            recorded.save(options.users, "user")
        elapsed = last - first
        print(
            f"{options.publishers} publishers: {options.users:,} users published in "
            f"{elapsed:.1f} s from the first ({options.users / elapsed:,.0f} users/s); "
            f"{total - options.users} published twice"
        )
        keep_figures(
            publishing_users_per_s=options.users / elapsed, publishing_publishers=options.publishers
        )
    finally:
        delete_topics(kafka, topics)
        redis.flushdb()


if __name__ == "__main__":
    main()
