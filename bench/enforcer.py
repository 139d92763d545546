"""Scores per second through `botscore enforce`'s loop into Redis, and Redis's CPU per score.

Pre-loads scores of 20,000 users (most allow, some challenge, a few block, as scores come
in a live run) on a topic of its own, runs the enforcer's loop (`run_enforcer`) on it in
this process, and times from its first commit to its last, by wall clock and by the Redis
server's CPU (`INFO cpu`). Needs the local broker and Redis (`make up`); uses Redis database
7, emptied, and deletes its topics. Prints figures only; run with `make bench`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

from kafka.admin import KafkaAdminClient

from botscore.clock import now_ms
from botscore.enforcement.consumer import run_enforcer
from botscore.settings import MetricsSettings, load_project_settings
from botscore.transport.kafka_clients import connection_config, create_producer, ensure_topics
from botscore.transport.redis_client import create_redis
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef

# Sibling modules: run as a script, this directory is on sys.path.
from feature_stage import redis_cpu_s
from figures import keep_figures
from scoring_pipeline import committed_all, end_offsets

SCORES = 100_000
USERS = 20_000
REDIS_DB = 7


def _scores() -> list[tuple[bytes, bytes]]:
    # Each user's scores in the order of their feature times, all in the last two minutes:
    # timely, and each later than the one before, so every one is merged.
    now = now_ms() - SCORES
    decisions = ["allow"] * 16 + ["challenge"] * 3 + ["block"]
    scored = []
    for i in range(SCORES):
        user = f"user-{i % USERS}"
        decision = decisions[i % len(decisions)]
        score = {"allow": 0.1, "challenge": 0.8, "block": 0.97}[decision]
        record = ScoreRecord(
            user, score, decision, "baseline", "7", now + i, now + i, SourceRef("f", 0, i)
        )
        scored.append((user.encode(), encode_threat_score(record)))
    return scored


def main() -> None:
    run = uuid.uuid4().hex[:8]
    base = load_project_settings()
    kafka = replace(
        base.kafka,
        scores_topic=f"bench-enforcer-{run}",
        dead_letter_topic=f"bench-enforcer-dl-{run}",
    )
    settings = replace(
        base,
        kafka=kafka,
        redis=replace(base.redis, db=REDIS_DB),
        enforcement=replace(base.enforcement, consumer_group=f"bench-enforcer-{run}"),
        metrics=MetricsSettings(enabled=False),
    )
    group = settings.enforcement.consumer_group
    ensure_topics(kafka, [kafka.scores_topic, kafka.dead_letter_topic])
    client = create_redis(settings.redis)
    client.flushdb()
    admin = KafkaAdminClient(**connection_config(kafka))
    try:
        producer = create_producer(kafka, client_id="bench-enforcer", linger_ms=50)
        for key, value in _scores():
            producer.send(kafka.scores_topic, key=key, value=value)
        producer.flush()
        producer.close()
        end = end_offsets(kafka, kafka.scores_topic)
        print(f"{SCORES:,} scores of {USERS:,} users on {len(end)} partitions")
        stop = threading.Event()
        thread = threading.Thread(target=run_enforcer, args=(settings, stop))
        thread.start()
        try:
            while not admin.list_group_offsets(group).get(group):
                time.sleep(0.05)  # joined and committed its first batch
            first = _committed(admin, group)
            server, wall = redis_cpu_s(client), time.perf_counter()
            while not committed_all(admin, group, end):
                time.sleep(0.1)
            wall = time.perf_counter() - wall
            server = redis_cpu_s(client) - server
        finally:
            stop.set()
            thread.join(30)
        applied = SCORES - first
        print(
            f"enforcer: {applied:,} scores applied in {wall:.1f} s: {applied / wall:,.0f} scores/s;"
            f" Redis CPU {server / applied * 1e6:.1f} µs/score"
        )
        keep_figures(
            enforcer_scores_per_s=applied / wall,
            enforcer_redis_cpu_us_per_score=server / applied * 1e6,
        )
    finally:
        admin.delete_topics([kafka.scores_topic, kafka.dead_letter_topic])
        admin.close()
        client.flushdb()


def _committed(admin: KafkaAdminClient, group: str) -> int:
    offsets = admin.list_group_offsets(group).get(group, {})
    return sum(meta.offset for meta in offsets.values())


if __name__ == "__main__":
    main()
