"""Users published per second by the aggregation topology's publishers, nothing else running.

Stores one simulated request for each of ``--users`` users in Redis database 7 (through
``RedisFeatureStore``, as the aggregation bolt stores them), starts `sparse run -n
aggregation` with ``--publishers`` publisher spouts (``aggregation.publishers``) on an
empty web-logs topic, and times from the first ``UserFeatures`` message on a fresh
features topic to the last. Every user is due at once, so this is the publishers' ceiling:
reading the state, computing features, the multilang hop, the feature producers and
Kafka's confirmations recorded in Redis. Prints figures only; needs `make up`.
`PYTHONPATH=src .venv/bin/python bench/publishing.py --users 100000 --publishers 2`
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import replace
from pathlib import Path

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
from scoring_pipeline import LOGS, ROOT, delete_topics, end_offsets, stop_group

REDIS_DB = 7
STORE_BATCH = 500


def store_users(settings: Settings, users: int) -> None:
    """One request from each of ``users`` new users in the feature state, all due now."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users due at the start")
    parser.add_argument("--publishers", type=int, default=1, help="aggregation.publishers")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="start and run, each")
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
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(ROOT / "bin"), str(Path(sys.executable).parent), env["PATH"]]
    )
    env.setdefault("LEIN_ROOT", "1")
    env.update(
        BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC=web_logs,
        BOTSCORE_AGGREGATION_CONSUMER_GROUP=f"bench-pub-{run}",
        BOTSCORE_AGGREGATION_PUBLISHERS=str(options.publishers),
        BOTSCORE_KAFKA_FEATURES_TOPIC=kafka.features_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic,
        BOTSCORE_REDIS_DB=str(REDIS_DB),
    )
    try:
        store_users(settings, options.users)
        print(
            f"{options.users:,} users due in Redis db {REDIS_DB}; sparse run -n aggregation "
            f"with {options.publishers} publishers (log: {log_path})"
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                ["sparse", "run", "-e", "local", "-n", "aggregation", "-t", "3600"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
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
                    deadline = time.monotonic() + options.timeout_s
                last = time.perf_counter()
            time.sleep(5)  # anything published twice arrives meanwhile
            total = sum(end_offsets(kafka, kafka.features_topic).values())
        finally:
            stop_group(process)
        elapsed = last - first
        print(
            f"{options.publishers} publishers: {options.users:,} users published in "
            f"{elapsed:.1f} s from the first ({options.users / elapsed:,.0f} users/s); "
            f"{total - options.users} published twice"
        )
        keep_figures(**{f"publishing_users_per_s_{options.publishers}": options.users / elapsed})
    finally:
        delete_topics(kafka, topics)
        redis.flushdb()


if __name__ == "__main__":
    main()
