"""The aggregation topology under `sparse run`, against the real broker and real Redis.

Recorded WebLogs from the seeded simulator go in; the features the topology publishes
must equal what the offline feature code computes from the same logs.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from botscore.aggregation.offline import final_features
from botscore.settings import KafkaSettings
from botscore.simulator.population import build_population
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.dead_letters import decode_dead_letter

from .aggregation_stream import (
    INTERVAL_MS,
    AggTopics,
    FeatureCollector,
    agg_topics_of_a_run,
    feed,
    project_memory,
)
from .faults import redis_down, stack_redis
from .harness import (
    ROOT,
    committed_offsets,
    empty_redis_db,
    read_topic,
    sparse_run,
    stack_env,
    wait_committed_to_end,
)
from .stream import GroupMember, produce

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 2  # the stack's Redis, a database of these tests' own
START_MS = 1_790_000_000_000


@pytest.fixture
def agg_redis() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


@pytest.fixture
def agg_topics(kafka_settings: KafkaSettings) -> Iterator[AggTopics]:
    with agg_topics_of_a_run(kafka_settings, REDIS_DB) as topics:
        yield topics


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
        wait_committed_to_end(agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process)
        letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)

    report_figure(
        f"aggregation replay: {len(logs)} WebLogs from {len(expected)} users -> "
        f"features equal to offline in "
        f"{elapsed:.1f} s from `sparse run` ({len(logs) / elapsed:.0f} requests/s incl. start-up); "
        f"{features.total} publications",
    )
    dead = [
        (d.reason, d.original_value) for d in map(decode_dead_letter, (r.value for r in letters))
    ]
    assert sorted(dead) == sorted((reason, value) for _, value, reason in bad)
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
        wait_committed_to_end(agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process)
        logs_text = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation, Redis kill -9: killed after {applied_before} users had state; "
        f"Redis down 5 s; all "
        f"{len(expected)} users' features equal offline {took + 5:.0f} s after the kill "
        f"({len(logs)} WebLogs, 0 lost)",
    )
    assert "Redis did not take" in logs_text, "the fault never reached the aggregation bolt"
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]


def test_redis_memory_stays_bounded_over_ten_minutes(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Ten wall minutes at a steady rate, 60x sped up: ten simulated hours, so every window
    (4 h at most) turns over more than twice; the state TTL is scaled by the same factor."""
    speedup, minutes = 60, 10
    ttl_s = (4 * 3600 + 900) // speedup
    lead_ms = SimulationSpec(duration_s=minutes * 60 * speedup, speedup=speedup).clock_lead_ms
    env = {
        **agg_topics.env(),
        "BOTSCORE_AGGREGATION_STATE_TTL_S": str(ttl_s),
        # simulated time outruns the wall clock by up to this much
        "BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": str(lead_ms + 60_000),
    }
    log_path = tmp_path / "sparse-run.log"
    samples: list[tuple[float, int, int]] = []  # (wall s, bytes held by our keys, keys)
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
                samples.append((time.monotonic() - started, *project_memory(agg_redis)))
                time.sleep(10)  # the sampling period
        finally:
            if simulator.poll() is None:
                simulator.kill()
            output = simulator.communicate(timeout=30)[0].decode(errors="replace")
        assert simulator.returncode == 0, output[-3000:]
        # Every request the simulator sent was applied before the last sample.
        committed = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 300, process
        )
        samples.append((time.monotonic() - started, *project_memory(agg_redis)))

    def at(minute: float) -> int:
        return max(m for t, m, _ in samples if t <= minute * 60)

    half = at(minutes / 2)
    peak_late = max(m for t, m, _ in samples if t > minutes / 2 * 60)
    figures = ", ".join(f"{m} min {at(m) / 2**20:.1f} MiB" for m in range(2, minutes + 1, 2))
    report_figure(
        f"Redis memory of the aggregation's keys, {minutes} min at 600 requests/s "
        f"({speedup}x: {minutes * speedup // 60} simulated hours, 3000 users, "
        f"{sum(committed.values())} WebLogs applied): {figures}; keys at end {samples[-1][2]}"
    )
    assert sum(committed.values()) > minutes * 60 * 10 * speedup * 0.9, "traffic not processed"
    assert half > 0, "no aggregation state at half time"
    # Requests keep coming at the same rate; the state does not keep growing with them.
    assert peak_late <= half * 1.25, f"memory grew from {half} to {peak_late} bytes"


@pytest.mark.faults
def test_a_member_joining_and_leaving_while_redis_is_down_loses_nothing(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Redis down for 20 s mid-stream; meanwhile another member joins the aggregation's
    group, reads without committing, and leaves: two rebalances while every write fails."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=23)
    expected = final_features(logs)
    feed(agg_topics, logs)
    log_path = tmp_path / "sparse-run.log"
    member = GroupMember(agg_topics.kafka, agg_topics.group, agg_topics.web_logs)
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
        committed = committed_offsets(agg_topics.kafka, agg_topics.group, agg_topics.web_logs)
        assert 0 < sum(committed.values()) < len(logs), committed
        with redis_down(stack_redis()):
            down_at = time.monotonic()
            member.start_joining()
            taken = member.wait_assigned(60)
            member.leave()
            left_after = time.monotonic() - down_at
            time.sleep(max(0.0, 20 - left_after))  # the rest of the 20 s outage
        took = features.wait_until_equal(expected, timeout_s=420, process=process)
        ends = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
        )
        logs_text = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation, Redis down 20 s with {sum(committed.values())} of {len(logs)} committed; "
        f"a member joined, took partitions {taken} ({member.read} WebLogs read, none committed) "
        f"and left {left_after:.1f} s into the outage; all {len(expected)} users' features "
        f"equal offline {took:.0f} s after Redis returned"
    )
    assert sum(ends.values()) == len(logs)
    assert logs_text.count("partitions revoked") >= 2, "the spout never gave partitions up"
    assert "Redis did not take" in logs_text, "the fault never reached the aggregation bolt"
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
