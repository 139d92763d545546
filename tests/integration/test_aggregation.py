"""The aggregation topology under `sparse run`, against the real broker and real Redis.

Recorded WebLogs from the seeded simulator go in; the features the topology publishes
must equal what the offline feature code computes from the same logs.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from kafka.consumer.fetcher import ConsumerRecord

from botscore.aggregation.offline import FeatureSnapshot, final_features
from botscore.settings import KafkaSettings
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.codec import decode_user_features
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import SourceRef

from .faults import redis_down, stack_redis
from .harness import (
    ROOT,
    consume_all,
    delete_topics,
    empty_redis_db,
    fresh_topics,
    new_run_id,
    run_topics,
    sparse_run,
    stack_env,
)
from .stream import TopicFollower, produce

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 2  # the stack's Redis, a database of these tests' own
INTERVAL_MS = 1000
START_MS = 1_790_000_000_000


@dataclass(frozen=True)
class AggTopics:
    kafka: KafkaSettings
    web_logs: str
    group: str

    def env(self) -> dict[str, str]:
        return {
            "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": self.web_logs,
            "BOTSCORE_AGGREGATION_CONSUMER_GROUP": self.group,
            "BOTSCORE_AGGREGATION_PUBLISH_INTERVAL_MS": str(INTERVAL_MS),
            "BOTSCORE_REDIS_DB": str(REDIS_DB),
        }


@pytest.fixture
def agg_redis() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


@pytest.fixture
def agg_topics(kafka_settings: KafkaSettings) -> Iterator[AggTopics]:
    run = new_run_id()
    web_logs = f"it-web-logs-{run}"
    # the scores topic and group are not used by the aggregation topology
    settings = fresh_topics(kafka_settings, prefix="it-agg", run=run, also=(web_logs,))
    topics = AggTopics(settings, web_logs, f"it-aggregation-{run}")
    all_topics = [web_logs, *run_topics(settings)]
    yield topics
    delete_topics(settings, all_topics)


def recorded_logs(users: int, rate: float, duration_s: float, seed: int) -> list[WebLog]:
    population = build_population(users, 0.3, seed)
    return list(TrafficGenerator(population, rate, duration_s, seed, START_MS))


def malformed_payloads() -> list[tuple[bytes, bytes, str]]:
    """(key, value, expected reason) for each way a WebLog can be unusable."""
    good = WebLog(
        time_unix_ms=START_MS, user_id="u-bad", request_id="r1", schema_version=1, ip="192.0.2.1"
    )

    def variant(**changes: object) -> bytes:
        message = WebLog()
        message.CopyFrom(good)
        for name, value in changes.items():
            if value is None:
                message.ClearField(name)
            else:
                setattr(message, name, value)
        return message.SerializeToString()

    return [
        (b"u-bad", b"\xff\xfe not protobuf", "undecodable"),
        (b"u-bad", b"", "empty_payload"),
        (b"u-bad", variant(user_id=""), "missing_user_id"),
        (b"u-bad", variant(schema_version=None), "missing_schema_version"),
        (b"u-bad", variant(schema_version=99), "unsupported_schema_version"),
        (b"u-bad", variant(time_unix_ms=0), "missing_time"),
        (b"u-bad", variant(request_id=""), "missing_request_id"),
    ]


class FeatureCollector(TopicFollower):
    """Each user's latest publication on the features topic, and when each was sent."""

    def __init__(self, settings: KafkaSettings) -> None:
        super().__init__(settings, settings.features_topic)
        self.latest: dict[str, FeatureSnapshot] = {}
        self.sent_ms: dict[str, list[int]] = defaultdict(list)
        self.total = 0

    def take(self, record: ConsumerRecord, now: float) -> None:
        source = SourceRef(self.topic, record.partition, record.offset)
        decoded = decode_user_features(record.value, source)
        self.latest[decoded.user_id] = FeatureSnapshot(
            decoded.user_id, decoded.window_end_ms, decoded.features
        )
        self.sent_ms[decoded.user_id].append(record.timestamp)
        self.total += 1

    def mismatches(self, expected: dict[str, FeatureSnapshot]) -> list[str]:
        with self._lock:
            return [user for user, snap in expected.items() if self.latest.get(user) != snap]

    def wait_until_equal(
        self, expected: dict[str, FeatureSnapshot], timeout_s: float, process: subprocess.Popen
    ) -> float:
        started = time.monotonic()
        while True:
            if self.error is not None:
                raise AssertionError(f"feature collector died: {self.error!r}")
            missing = self.mismatches(expected)
            if not missing:
                return time.monotonic() - started
            if process.poll() is not None:
                raise AssertionError(f"sparse run exited with {process.returncode}")
            if time.monotonic() - started > timeout_s:
                user = missing[0]
                raise AssertionError(
                    f"{len(missing)} of {len(expected)} users differ from the offline "
                    f"features after {timeout_s:.0f} s; e.g. {user}:\n"
                    f"  topology {self.latest.get(user)}\n  offline  {expected[user]}"
                )
            time.sleep(0.5)


def feed(topics: AggTopics, logs: list[WebLog]) -> None:
    produce(
        topics.kafka,
        ((log.user_id.encode(), log.SerializeToString()) for log in logs),
        topic=topics.web_logs,
    )


def test_replayed_logs_give_exactly_the_offline_features(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    logs = recorded_logs(users=400, rate=25, duration_s=1200, seed=21)
    expected = final_features(logs)
    bad = malformed_payloads()
    # Malformed messages in the middle of the stream must not stall their partition.
    half = len(logs) // 2
    feed(agg_topics, logs[:half])
    produce(agg_topics.kafka, [(k, v) for k, v, _ in bad], topic=agg_topics.web_logs)
    feed(agg_topics, logs[half:])

    log_path = tmp_path / "sparse-run.log"
    started = time.monotonic()
    with (
        FeatureCollector(agg_topics.kafka) as features,
        sparse_run(
            agg_topics.kafka, log_path, topology="aggregation", **agg_topics.env()
        ) as process,
    ):
        features.wait_until_equal(expected, timeout_s=420, process=process)
        elapsed = time.monotonic() - started
        letters = consume_all(agg_topics.kafka, agg_topics.kafka.dead_letter_topic, len(bad), 60)

    report_figure(
        f"aggregation replay: {len(logs)} WebLogs from {len(expected)} users -> "
        f"features equal to offline in "
        f"{elapsed:.1f} s from `sparse run` ({len(logs) / elapsed:.0f} requests/s incl. start-up); "
        f"{features.total} publications",
    )
    dead = {
        (d.reason, d.original_value) for d in map(decode_dead_letter, (r.value for r in letters))
    }
    assert dead == {(reason, value) for _, value, reason in bad}
    # At most one publication per user per interval (Kafka timestamps are send times).
    for user, times in features.sent_ms.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= INTERVAL_MS for g in gaps), f"{user} published {gaps} ms apart"
    # Nothing left pending, and every user key has an expiry.
    assert agg_redis.zcard("bs:agg:pending") == 0
    ttls = [agg_redis.ttl(k) for k in agg_redis.scan_iter("bs:agg:{*")]
    assert ttls and all(t > 0 for t in ttls)


def test_redis_killed_mid_stream_loses_nothing(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    logs = recorded_logs(users=600, rate=40, duration_s=1500, seed=22)
    expected = final_features(logs)
    feed(agg_topics, logs)
    log_path = tmp_path / "sparse-run.log"
    with (
        FeatureCollector(agg_topics.kafka) as features,
        sparse_run(
            agg_topics.kafka, log_path, topology="aggregation", **agg_topics.env()
        ) as process,
    ):
        deadline = time.monotonic() + 180
        while features.total < 200:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no features published before the fault"
            time.sleep(0.2)
        applied_before = sum(1 for _ in agg_redis.scan_iter("bs:agg:{*}:m"))
        with redis_down(stack_redis()):
            time.sleep(5)
        took = features.wait_until_equal(expected, timeout_s=420, process=process)
        logs_text = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation, Redis kill -9: killed after {applied_before} users had state; "
        f"Redis down 5 s; all "
        f"{len(expected)} users' features equal offline {took + 5:.0f} s after the kill "
        f"({len(logs)} WebLogs, 0 lost)",
    )
    assert "Redis did not take" in logs_text, "the fault never reached the aggregation bolt"
    letters = consume_all(agg_topics.kafka, agg_topics.kafka.dead_letter_topic, 1, 5)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]


def test_redis_memory_stays_bounded_over_ten_minutes(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Ten wall minutes at a steady rate, 60x sped up: ten simulated hours, so every window
    (4 h at most) turns over more than twice; the state TTL is scaled by the same factor."""
    speedup, minutes = 60, 10
    ttl_s = (4 * 3600 + 900) // speedup
    env = {**agg_topics.env(), "BOTSCORE_AGGREGATION_STATE_TTL_S": str(ttl_s)}
    log_path = tmp_path / "sparse-run.log"
    samples: list[tuple[float, int, int]] = []  # (wall s, used_memory, keys)
    with sparse_run(agg_topics.kafka, log_path, topology="aggregation", **env) as process:
        simulator = subprocess.Popen(
            [
                "botscore",
                "simulate",
                "--rate",
                "10",
                "--speedup",
                str(speedup),
                "--duration",
                str(minutes * 60 * speedup),
                "--users",
                "3000",
                "--seed",
                "31",
                "--labels",
                str(tmp_path / "labels.csv"),
                "--topic",
                agg_topics.web_logs,
                "--no-progress",
            ],
            cwd=ROOT,
            env=stack_env(
                **env, BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=agg_topics.kafka.bootstrap_servers
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        try:
            while simulator.poll() is None:
                assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
                info = agg_redis.info("memory")
                samples.append(
                    (time.monotonic() - started, info["used_memory"], agg_redis.dbsize())
                )
                time.sleep(10)
        finally:
            if simulator.poll() is None:
                simulator.kill()
            output = simulator.communicate(timeout=30)[0].decode(errors="replace")
        assert simulator.returncode == 0, output[-3000:]

    def at(minute: float) -> int:
        return max(m for t, m, _ in samples if t <= minute * 60)

    half = at(minutes / 2)
    peak_late = max(m for t, m, _ in samples if t > minutes / 2 * 60)
    figures = ", ".join(f"{m} min {at(m) / 2**20:.1f} MiB" for m in range(2, minutes + 1, 2))
    report_figure(
        f"Redis memory, {minutes} min at 600 requests/s ({speedup}x: {minutes * speedup // 60} "
        f"simulated hours, 3000 users): {figures}; keys at end {samples[-1][2]}"
    )
    # Requests keep coming at the same rate; the state does not keep growing with them.
    assert peak_late <= half * 1.25, f"memory grew from {half} to {peak_late} bytes"
