"""The aggregation topology's side of a test: its topics and group, what it publishes, and
how much of Redis its keys hold."""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from kafka.consumer.fetcher import ConsumerRecord

from botscore.aggregation.offline import FeatureSnapshot
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.clock import now_ms
from botscore.settings import AggregationSettings, KafkaSettings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.transport.redis_client import RedisClient
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.codec import decode_user_features
from botscore.wire.records import SourceRef
from tests.statsd import StatsdListener

from .harness import (
    committed_offsets,
    delete_topics,
    end_offsets,
    fresh_topics,
    new_run_id,
    read_topic,
    run_topics,
    sparse_run,
)
from .stream import TopicFollower, produce

INTERVAL_MS = 1000  # publication interval the tests run the topology with
DAY_MS = 86_400_000
GRID_MS = 6 * 3_600_000
# 6 to 12 hours behind the aggregation's clock: behind it, as its skew check requires, and
# within its age limit (aggregation.max_event_age_ms, a day) for the whole session; whole
# 6 hours, so every run fills the same buckets (10 minutes the largest).
START_MS = (now_ms() // GRID_MS - 1) * GRID_MS


@dataclass(frozen=True)
class AggTopics:
    kafka: KafkaSettings
    web_logs: str
    group: str
    redis_db: int

    def env(self) -> dict[str, str]:
        return {
            "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": self.web_logs,
            "BOTSCORE_AGGREGATION_CONSUMER_GROUP": self.group,
            "BOTSCORE_AGGREGATION_PUBLISH_INTERVAL_MS": str(INTERVAL_MS),
            "BOTSCORE_REDIS_DB": str(self.redis_db),
        }


@contextmanager
def agg_topics_of_a_run(kafka_settings: KafkaSettings, redis_db: int) -> Iterator[AggTopics]:
    """A web-logs topic, features/scores/dead-letter topics and a group of the run's own."""
    run = new_run_id()
    web_logs = f"it-web-logs-{run}"
    # the scores topic and group are not used by the aggregation topology
    settings = fresh_topics(kafka_settings, prefix="it-agg", run=run, also=(web_logs,))
    try:
        yield AggTopics(settings, web_logs, f"it-aggregation-{run}", redis_db)
    finally:
        delete_topics(settings, [web_logs, *run_topics(settings)])


@contextmanager
def aggregation_topology(
    topics: AggTopics, log_path: Path, **env: str
) -> Iterator[tuple[StatsdListener, FeatureCollector, subprocess.Popen]]:
    """The aggregation topology under ``sparse run`` on ``topics`` (``env`` on top of their
    settings), logging to ``log_path``: the DogStatsD datagrams it sends, the features it
    publishes, and its process."""
    with (
        StatsdListener() as metrics,
        FeatureCollector(topics.kafka) as features,
        sparse_run(
            topics.kafka,
            log_path,
            topology="aggregation",
            **{**topics.env(), "BOTSCORE_METRICS_STATSD_PORT": str(metrics.port), **env},
        ) as process,
    ):
        yield metrics, features, process


def feed(topics: AggTopics, logs: Iterable[WebLog]) -> None:
    """Send WebLogs keyed by their user id, as an edge does."""
    produce(
        topics.kafka,
        ((log.user_id.encode(), log.SerializeToString()) for log in logs),
        topic=topics.web_logs,
    )


def feed_paced(topics: AggTopics, logs: list[WebLog], per_second: int = 5000) -> None:
    """``logs`` sent a tenth of a second's worth at a time."""
    step = per_second // 10
    for start in range(0, len(logs), step):
        feed(topics, logs[start : start + step])
        time.sleep(0.1)


def recorded_logs(users: int, rate: float, duration_s: float, seed: int) -> list[WebLog]:
    """The seeded simulator's WebLogs of ``users`` (30% bots), from ``START_MS``."""
    population = build_population(users, 0.3, seed)
    return list(TrafficGenerator(population, rate, duration_s, seed, START_MS))


class FeatureCollector(TopicFollower):
    """Each user's latest publication on the features topic, and when each was sent."""

    def __init__(self, settings: KafkaSettings) -> None:
        super().__init__(settings, settings.features_topic)
        self.latest: dict[str, FeatureSnapshot] = {}
        self.sent_ms: dict[str, list[int]] = defaultdict(list)
        self.total = 0
        # (user, window end, the later one it followed): features older than the user's
        # previous message on the topic, which only reordered publications produce.
        self.regressions: list[tuple[str, int, int]] = []

    def take(self, record: ConsumerRecord, now: float) -> None:
        source = SourceRef(self.topic, record.partition, record.offset)
        # as the scoring topology's spout takes them, with the feature stage's default skew
        decoded = decode_user_features(
            record.value, record.key, source, now_ms(), AggregationSettings().max_event_skew_ms
        )
        before = self.latest.get(decoded.user_id)
        if before is not None and decoded.window_end_ms < before.window_end_ms:
            self.regressions.append((decoded.user_id, decoded.window_end_ms, before.window_end_ms))
        self.latest[decoded.user_id] = FeatureSnapshot(
            decoded.user_id, decoded.window_end_ms, decoded.features
        )
        self.sent_ms[decoded.user_id].append(record.timestamp)
        self.total += 1

    def mismatches(self, expected: dict[str, FeatureSnapshot]) -> list[str]:
        with self._lock:
            return [user for user, snap in expected.items() if self.latest.get(user) != snap]

    def wait_until_equal(
        self,
        expected: dict[str, FeatureSnapshot],
        timeout_s: float,
        process: subprocess.Popen | None,
        explain: Callable[[str], str] = lambda user: "",
    ) -> float:
        """Seconds until every user's latest publication equals ``expected``; fails early if
        ``process`` (the topology, when nothing restarts it) exits. On a timeout the message
        adds what ``explain`` says of the first user that differs (``explainer``)."""
        started = time.monotonic()
        while True:
            if self.error is not None:
                raise AssertionError(f"feature collector died: {self.error!r}")
            missing = self.mismatches(expected)
            if not missing:
                return time.monotonic() - started
            if process is not None and process.poll() is not None:
                raise AssertionError(f"sparse run exited with {process.returncode}")
            if time.monotonic() - started > timeout_s:
                user = missing[0]
                went_back = [r for r in self.regressions if r[0] == user]
                raise AssertionError(
                    f"{len(missing)} of {len(expected)} users differ from the offline "
                    f"features after {timeout_s:.0f} s; e.g. {user}:\n"
                    f"  topology {self.latest.get(user)}\n  offline  {expected[user]}\n"
                    f"  went back in time (window end, after): {went_back}\n"
                    f"{explain(user)}"
                )
            time.sleep(0.5)


def mid_stream(
    topics: AggTopics,
    features: FeatureCollector,
    total: int,
    alive: Callable[[], object] = lambda: None,
    timeout_s: float = 180,
) -> dict[int, int]:
    """Wait until the topology has published 200 features and committed some of the
    ``total`` web logs (a commit comes up to ``kafka.commit_interval_ms`` after the work it
    covers), and return the commits, which must still be short of all: a fault injected now
    is mid-stream. ``alive`` fails the test when the topology has died."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive()
        if features.total >= 200:
            committed = committed_offsets(topics.kafka, topics.group, topics.web_logs)
            if sum(committed.values()) > 0:
                break
        assert time.monotonic() < deadline, "nothing published and committed before the fault"
        time.sleep(0.2)
    assert sum(committed.values()) < total, f"all committed before the fault: {committed}"
    return committed


def explainer(topics: AggTopics, client: redis.Redis) -> Callable[[str], str]:
    """What the pipeline holds of a user that was not published as expected: whether the
    spout finished every request (commits), the user's state and pending mark in Redis, and
    its publications as a fresh reader of the features topic sees them."""

    def explain(user_id: str) -> str:
        ends = end_offsets(topics.kafka, topics.web_logs)
        committed = committed_offsets(topics.kafka, topics.group, topics.web_logs)
        state = feature_state(client)
        stored = client.hgetall(f"{state.user_base(user_id)}:m")
        meta = {k.decode(): v.decode() for k, v in stored.items()}
        pending = client.zscore(state.pending_key(user_id), user_id)
        features = read_topic(topics.kafka, topics.kafka.features_topic)
        published = sum(1 for r in features if r.key == user_id.encode())
        return (
            f"  web logs committed {committed} of {ends}\n"
            f"  Redis meta {meta or 'none'}, pending {pending}\n"
            f"  {published} of the {len(features)} publications on the topic are the user's"
        )

    return explain


def project_memory(client: redis.Redis, user_id: str | None = None) -> tuple[int, int]:
    """Bytes held by the aggregation's keys (``MEMORY USAGE``, exact) and how many there are;
    only ``user_id``'s own keys when given.

    Only the test's database and the aggregation's prefix: nothing else on the server counts.
    """
    state = feature_state(client)
    pattern = f"{state.layout.prefix}:*" if user_id is None else f"{state.user_base(user_id)}:*"
    keys = list(client.scan_iter(pattern, count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return sum(size or 0 for size in pipe.execute()), len(keys)


def feature_state(client: RedisClient) -> RedisFeatureStore:
    """The feature state as the topology under test keeps it (its default settings), in
    the epoch of the generation Redis holds now."""
    state = RedisFeatureStore(client, ttl_s=3600)
    state.read_generation()
    return state


def pending_users(client: redis.Redis) -> int:
    """Users waiting for publication, in every shard of the state."""
    return sum(int(client.zcard(key)) for key in feature_state(client).pending_keys())


def wait_nothing_pending(client: redis.Redis, timeout_s: float, process: subprocess.Popen) -> None:
    """Block until no user waits for publication: once the group committed its input to the
    end, the features topic then holds every user's final features."""
    deadline = time.monotonic() + timeout_s
    while (waiting := pending_users(client)) > 0:
        if process.poll() is not None:
            raise AssertionError(f"sparse run exited with {process.returncode}")
        if time.monotonic() > deadline:
            state = feature_state(client)
            keys = state.pending_keys()
            some = [u for k in keys for u in client.zrange(k, 0, 1, withscores=True)]
            metas = {u: client.hgetall(f"{state.user_base(u.decode())}:m") for u, _ in some}
            raise AssertionError(
                f"{waiting} users still pending after {timeout_s:.0f} s; now {now_ms()} ms, "
                f"e.g. (user, due ms) {some}, their meta {metas}"
            )
        time.sleep(0.2)


def published_features(settings: KafkaSettings) -> FeatureCollector:
    """Everything on the features topic now, collected as ``FeatureCollector`` does."""
    collector = FeatureCollector(settings)
    for record in read_topic(settings, settings.features_topic):
        collector.take(record, 0.0)
    return collector
