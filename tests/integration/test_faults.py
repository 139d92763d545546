"""Nothing is lost when a bolt process, the broker or the topology dies mid-stream."""

from __future__ import annotations

import math
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from botscore.errors import InvalidMessage
from botscore.model.features import CATALOG
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.wire.codec import decode_user_features, encode_user_features
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import SourceRef

from .harness import ROOT, consume_all, delete_topics, fresh_topics
from .stream import ScoreCollector, SupervisedTopology, component_pids, produce, valid_users

pytestmark = [pytest.mark.integration, pytest.mark.faults]

STREAM = 20_000
# topology.max.spout.pending in config.json plus one poll of the spout's consumer.
IN_FLIGHT_BOUND = 5000 + 500


@pytest.fixture
def topics(kafka_settings, storm_on_path):
    settings = fresh_topics(kafka_settings)
    yield settings
    delete_topics(
        settings, [settings.features_topic, settings.scores_topic, settings.dead_letter_topic]
    )


def _run_ok(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def _report(report_figure, fault, sent, collector, recovery_s, scored_at_fault):
    out = sum(collector.counts.values())
    lost = len(set(sent) - set(collector.counts))
    duplicated = out - collector.distinct()
    report_figure(
        f"{fault} after {scored_at_fault} scored: in {len(sent)}, scores out {out}, "
        f"lost {lost}, duplicated {duplicated}, recovery {recovery_s:.1f} s"
    )
    assert scored_at_fault < len(sent), "the fault came after the stream had ended"
    return lost, duplicated


def test_kill_minus_9_of_the_classifier_loses_nothing(topics, tmp_path, report_figure):
    sent = produce(topics, valid_users(STREAM, seed=31))
    with ScoreCollector(topics) as scores, SupervisedTopology(topics, tmp_path) as topology:
        scores.wait_for(lambda: scores.distinct() >= STREAM // 4, 300, "a quarter scored")
        [pid] = component_pids("bolts.classifier.ClassifierBolt")
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        at_fault = scores.distinct()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = scores.first_arrival_after(killed_at + 1) - killed_at
        restarts = topology.unplanned_exits
    lost, _ = _report(report_figure, "kill -9 classifier", sent, scores, recovery, at_fault)
    assert lost == 0
    assert restarts <= 1, "the worker died more than once"


@pytest.mark.parametrize(
    ("outage_s", "delivery_timeout_ms"),
    [
        pytest.param(5, 30_000, id="short"),
        # Long enough for the producers to expire batches they had already tried to
        # send: kafka-python's idempotent producer never recovered from that.
        pytest.param(25, 10_000, id="longer-than-delivery-timeout"),
    ],
)
def test_broker_restart_mid_stream_loses_nothing_and_recovers_by_itself(
    topics, tmp_path, report_figure, outage_s, delivery_timeout_ms
):
    sent = produce(topics, valid_users(STREAM, seed=32))
    kafka = [str(ROOT / "stack/kafka/kafka.sh")]
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(
            topics,
            tmp_path,
            BOTSCORE_KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS=str(delivery_timeout_ms),
        ) as topology,
    ):
        scores.wait_for(lambda: scores.distinct() >= STREAM // 4, 300, "a quarter scored")
        _run_ok([*kafka, "stop"])
        at_fault = scores.distinct()
        time.sleep(outage_s)
        _run_ok([*kafka, "start"])
        back_at = time.monotonic()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = scores.first_arrival_after(back_at) - back_at
        exits = topology.unplanned_exits
    fault = f"broker down {outage_s} s (delivery timeout {delivery_timeout_ms // 1000} s)"
    lost, _ = _report(report_figure, fault, sent, scores, recovery, at_fault)
    assert lost == 0
    assert exits == 0, "the topology died instead of riding out the broker restart"


def test_topology_restart_resumes_from_committed_offsets(topics, tmp_path, report_figure):
    sent = produce(topics, valid_users(STREAM, seed=33))
    with ScoreCollector(topics) as scores, SupervisedTopology(topics, tmp_path) as topology:
        scores.wait_for(lambda: scores.distinct() >= STREAM // 3, 300, "a third scored")
        stopped_at = time.monotonic()
        at_fault = scores.distinct()
        topology.restart()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = scores.first_arrival_after(stopped_at + 1) - stopped_at
    lost, duplicated = _report(report_figure, "topology restart", sent, scores, recovery, at_fault)
    assert lost == 0
    assert duplicated <= IN_FLIGHT_BOUND


def _malformed(rng: random.Random, i: int) -> tuple[bytes, bytes, str]:
    """A payload that must be dead-lettered, and the kind of damage done to it."""
    good = {name: rng.random() for name in CATALOG}
    kind = (
        "random",
        "truncated",
        "wrong_type",
        "nan",
        "inf",
        "no_user",
        "no_version",
        "unknown_version",
        "missing_feature",
    )[i % 9]
    if kind == "random":
        value = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 80)))
    elif kind == "truncated":
        value = encode_user_features(f"t{i}", 1, good)[: rng.randint(1, 40)]
    elif kind == "wrong_type":
        # user_id sent as a varint: protobuf skips a mistyped field, so the id is missing.
        value = UserFeatures(features=good, schema_version=1).SerializeToString() + b"\x08\x05"
    elif kind in ("nan", "inf"):
        value = encode_user_features(f"n{i}", 1, {**good, "error_ratio_1h": getattr(math, kind)})
    elif kind == "no_user":
        value = encode_user_features("", 1, good)
    elif kind == "no_version":
        value = UserFeatures(user_id=f"v{i}", features=good).SerializeToString()
    elif kind == "unknown_version":
        value = encode_user_features(f"u{i}", 1, good, schema_version=99)
    else:
        value = encode_user_features(f"m{i}", 1, {k: v for k, v in good.items() if k != CATALOG[3]})
    return f"bad-{i}".encode(), value, kind


def test_malformed_messages_are_dead_lettered_with_their_reason(topics, tmp_path, report_figure):
    rng = random.Random(2026)
    valid = valid_users(10_000, seed=34)
    payloads, expected_reason, bad_value = [], {}, {}
    for i in range(10_000):
        key, value, _ = _malformed(rng, i)
        payloads += [valid[i], (key, value)]
    placed = produce(topics, payloads)
    for (partition, offset), (key, value) in zip(placed, payloads, strict=True):
        if key.startswith(b"bad-"):
            bad_value[(partition, offset)] = value
            try:
                decode_user_features(value, SourceRef("", 0, 0), CATALOG)
            except InvalidMessage as exc:
                expected_reason[(partition, offset)] = exc.reason
            else:
                raise AssertionError(f"payload meant to be malformed decoded fine: {value!r}")
    valid_sources = set(placed) - set(expected_reason)

    with ScoreCollector(topics) as scores, SupervisedTopology(topics, tmp_path) as topology:
        scores.wait_for(lambda: scores.distinct() >= 10_000, 600, "10,000 scores")
        letters = consume_all(topics, topics.dead_letter_topic, 10_000, 300)
        time.sleep(3)  # room for any extra score to show up
        exits = topology.unplanned_exits
    decoded = [decode_dead_letter(r.value) for r in letters]
    reasons = {(d.source.partition, d.source.offset): d.reason for d in decoded}
    report_figure(
        f"malformed: in 20000 (10000 bad), scores {sum(scores.counts.values())}, "
        f"dead letters {len(decoded)}, reasons {sorted(set(reasons.values()))}"
    )
    assert set(scores.counts) == valid_sources
    assert sum(scores.counts.values()) == 10_000
    assert len(decoded) == 10_000
    assert reasons == expected_reason
    assert {
        "undecodable",
        "non_finite_feature",
        "missing_user_id",
        "missing_schema_version",
        "unsupported_schema_version",
        "missing_feature",
    } <= set(reasons.values())
    assert all(d.component == "features_spout" for d in decoded)
    assert all(
        d.original_value == bad_value[(d.source.partition, d.source.offset)] for d in decoded
    )
    assert exits == 0


def test_a_second_spout_joining_then_leaving_the_group_loses_nothing(
    topics, tmp_path, report_figure
):
    """A second `sparse run` of the same topology joins the consumer group (partitions are
    revoked from the first and split), then stops (the first takes them all back), while
    users keep arriving at 400/s."""
    payloads = valid_users(STREAM * 4, seed=35)
    sent: list = []
    feeding = threading.Thread(
        target=lambda: [
            (sent.extend(produce(topics, payloads[i : i + 400])), time.sleep(1))
            for i in range(0, len(payloads), 400)
        ]
    )
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path / "first") as first,
    ):
        feeding.start()
        scores.wait_for(lambda: scores.distinct() >= 2000, 300, "the first spout scoring")
        with SupervisedTopology(topics, tmp_path / "second") as second:
            # The second spout owning partitions means the first one gave them up.
            scores.wait_for(
                lambda: re.search(r"partitions assigned: \[\d", second.logs()) is not None,
                300,
                "the second spout to get partitions",
            )
            at_join = scores.distinct()
            scores.wait_for(
                lambda: scores.distinct() >= at_join + 4000, 300, "progress with two spouts"
            )
            left_at = time.monotonic()
            at_leave = scores.distinct()
        scores.wait_for(
            lambda: len(re.findall(r"partitions assigned: \[0, 1, 2, 3\]", first.logs())) >= 2,
            300,
            "the first spout to take every partition back",
        )
        feeding.join()
        scores.wait_for(lambda: scores.distinct() >= len(sent), 600, "every message scored")
        recovery = scores.first_arrival_after(left_at + 1) - left_at
    lost, duplicated = _report(
        report_figure,
        f"second spout joined at {at_join} scored, left at",
        sent,
        scores,
        recovery,
        at_leave,
    )
    assert lost == 0
    # Each rebalance replays at most what was uncommitted, per spout.
    assert duplicated <= 2 * 2 * IN_FLIGHT_BOUND
