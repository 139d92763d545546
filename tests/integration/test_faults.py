"""Nothing is lost when a bolt process, the broker or the topology dies mid-stream.

The tests that kill one of three brokers come last: they share the brokers' start-up."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import sklearn
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import MessageSizeTooLargeError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from botscore.aggregation.offline import final_features
from botscore.clock import now_ms
from botscore.model.features import CATALOG, DOMAINS
from botscore.model.registry import MANIFEST_NAME, ModelManifest, Thresholds
from botscore.model.releases import Release, ReleaseStore, Slot
from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import connection_config, retry_unreachable
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.wire.codec import decode_threat_score, encode_user_features
from botscore.wire.dead_letters import Truncation, decode_dead_letter, truncations
from tests.statsd import StatsdListener

from .aggregation_stream import (
    FeatureCollector,
    agg_topics_of_a_run,
    explainer,
    feed,
    feed_paced,
    recorded_logs,
)
from .harness import (
    ROOT,
    committed_offsets,
    delete_topics,
    empty_redis_db,
    enforcing,
    fresh_topics,
    limit_message_bytes,
    read_topic,
    run_topics,
    scoring_group,
    wait_committed_to_end,
    wait_for,
)
from .stream import (
    GroupMember,
    PacedFeed,
    ScoreCollector,
    SupervisedTopology,
    produce,
    valid_users,
)
from .wire_proofs import assert_failure_metrics_sent

pytestmark = [pytest.mark.integration, pytest.mark.faults]

STREAM = 20_000
# Messages a spout holds unfinished: kafka.max_in_flight (5000; topology.max.spout.pending
# counts tuples, each a batch of up to scoring.batch_size) plus one poll of its consumer.
IN_FLIGHT_BOUND = 5000 + 500
# The input arrives at this rate once the topology scores (it scores more than twice as
# fast here): a fault then always finds part of the stream committed and part not.
FEED_RATE = 2500
WARM_UP = 1000
# What a spout finished but had not committed when it stopped: one commit interval
# (kafka.commit_interval_ms, 1 s) of input, doubled for the commit's own round trip and
# the topology catching up after a pause.
UNCOMMITTED_BOUND = IN_FLIGHT_BOUND + 2 * FEED_RATE
# The stack's Redis, a database of these tests' own: the challengers their classifiers
# check for, and the edge's decisions. The other tests' classifiers check database 0.
REDIS_DB = 10


@pytest.fixture
def topics(kafka_settings, storm_on_path):
    settings = fresh_topics(kafka_settings)
    yield settings
    delete_topics(settings, run_topics(settings))


@contextmanager
def _challenger(model_dir: Path) -> Iterator[dict[str, str]]:
    """``model_dir`` published as the challenger in ``REDIS_DB``; yields the setting that
    makes a topology's classifiers shadow-score with it from their first tuple on."""
    with empty_redis_db(REDIS_DB) as client:
        ReleaseStore(client).publish(Release.from_directory(model_dir), now_ms(), Slot.SHADOW)
        yield {"BOTSCORE_REDIS_DB": str(REDIS_DB)}


def _run_ok(command: list[str], **env: str) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def _committed(settings: KafkaSettings) -> int:
    """How many input messages the scoring group has committed, read from the broker."""
    return sum(
        committed_offsets(settings, scoring_group(settings), settings.features_topic).values()
    )


def _wait_committed(settings: KafkaSettings, at_least: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while (committed := _committed(settings)) < at_least:
        assert time.monotonic() < deadline, (
            f"the scoring group committed {committed} of the {at_least} waited for "
            f"in {timeout_s:.0f} s"
        )
        time.sleep(0.1)


def _committed_at_fault(
    settings: KafkaSettings, produced: Callable[[], int], timeout_s: float = 60
) -> int:
    """How many input messages the scoring group had committed when the fault came.

    Read from the broker, not from what a collector has seen so far: a fault test means
    something only if the fault hits with part, but not all, of the input committed. A
    topology that scores a paced feed as fast as it arrives has everything committed between
    two of the feed's chunks, so the moment is awaited (up to ``timeout_s``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        committed = _committed(settings)
        total = produced()
        if 0 < committed < total or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert 0 < committed < total, f"the fault came with {committed} of {total} committed"
    return committed


@contextmanager
def _paced(
    settings: KafkaSettings, payloads: list[tuple[bytes, bytes]], scores: ScoreCollector
) -> Iterator[PacedFeed]:
    """The stream's first messages at once; the rest at FEED_RATE once those are scored."""
    with PacedFeed(settings, payloads, FEED_RATE) as feed:
        feed.send_now(WARM_UP)
        scores.wait_for(lambda: scores.distinct() >= WARM_UP, 300, "the topology scoring")
        feed.start()
        yield feed


def _recovery(collector: ScoreCollector, restarted_at: float) -> float:
    """Seconds from the broker's start command to the first score after it (0 when every
    score had already arrived: scores written just before the broker went down)."""
    first = collector.first_arrival_after(restarted_at)
    return 0.0 if first is None else first - restarted_at


def _report(report_figure, fault, sent, collector, recovery_s, committed_at_fault):
    out = sum(collector.counts.values())
    lost = len(set(sent) - set(collector.counts))
    duplicated = out - collector.distinct()
    report_figure(
        f"{fault} with {committed_at_fault} committed: in {len(sent)}, scores out {out}, "
        f"lost {lost}, duplicated {duplicated}, recovery {recovery_s:.1f} s"
    )
    return lost, duplicated


def test_kill_minus_9_of_the_classifier_loses_nothing(topics, tmp_path, report_figure):
    payloads = valid_users(STREAM, seed=31)
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 4)
        at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
        [pid] = topology.component_pids("bolts.classifier.ClassifierBolt")
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = scores.first_arrival_after(killed_at + 1) - killed_at
        restarts = topology.unplanned_exits
        [successor] = topology.component_pids("bolts.classifier.ClassifierBolt")
    lost, _ = _report(report_figure, "kill -9 classifier", sent, scores, recovery, at_fault)
    assert lost == 0
    # Local mode has no supervisor: the worker dies with its bolt and is started again.
    assert restarts == 1, f"the worker exited {restarts} times; the kill should end it once"
    assert successor != pid


def test_a_spout_stalled_past_its_session_reads_on_where_it_was(topics, tmp_path, report_figure):
    """Issue 15: a machine that stalled for seconds let the only spout's session time out;
    the group evicted it and gave it its partitions back, and it read again from its last
    commits (106 users scored twice). The spout's process is stopped mid-stream for its
    session timeout and 5 s more (well within Storm's 30 s subprocess heartbeat)."""
    payloads = valid_users(STREAM, seed=37)
    stall_s = topics.session_timeout_ms / 1000 + 5
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 4)
        at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
        [pid] = topology.component_pids("spouts.kafka_features.KafkaFeaturesSpout")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(stall_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = _recovery(scores, resumed_at)
        logs = topology.logs()
        exits, deaths = topology.unplanned_exits, topology.death_report()
    lost, duplicated = _report(
        report_figure, f"spout stopped {stall_s:.0f} s", sent, scores, recovery, at_fault
    )
    assert exits == 0, f"the stalled spout was restarted:\n{deaths}"
    assert "partitions lost" in logs, "the group did not evict the stopped spout"
    assert "back after an eviction, reading on from" in logs
    assert lost == 0
    assert duplicated == 0


@pytest.mark.parametrize(
    ("outage_s", "delivery_timeout_ms"),
    [
        pytest.param(5, 30_000, id="short"),
        # Long enough for the producers to expire batches: they must send on after it
        # (test_producer_ids.py stalls the broker so that an expired batch was sent).
        pytest.param(25, 10_000, id="longer-than-delivery-timeout"),
    ],
)
def test_broker_restart_mid_stream_loses_nothing_and_recovers_by_itself(
    topics, tmp_path, report_figure, outage_s, delivery_timeout_ms
):
    """The whole scoring side rides out the restart: the topology and the edge's
    `botscore enforce`."""
    payloads = valid_users(STREAM, seed=32)
    kafka = [str(ROOT / "stack/kafka/kafka.sh")]
    with (
        StatsdListener() as metrics,
        enforcing(
            topics,
            f"{topics.scores_topic}-edge",
            tmp_path / "enforce.log",
            BOTSCORE_REDIS_DB=str(REDIS_DB),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
        ) as enforcer,
        ScoreCollector(topics) as scores,
        SupervisedTopology(
            topics,
            tmp_path,
            BOTSCORE_KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS=str(delivery_timeout_ms),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
        ) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 4)
        # Scores must be on their way to Kafka when it goes: with the classifier paused,
        # the spout's tuples (of the next thousand messages) queue up in front of it while
        # the broker stops, and reach the producer only once it is down. (Paused for a few
        # seconds: far less than Storm's 30 s subprocess heartbeat timeout.) The feed then
        # waits out the outage.
        [classifier] = topology.component_pids("bolts.classifier.ClassifierBolt")
        os.kill(classifier, signal.SIGSTOP)
        try:
            feed.wait_sent(len(feed.sent) + 1000)
            feed.hold()
            at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
            _run_ok([*kafka, "stop"])
        finally:
            os.kill(classifier, signal.SIGCONT)
        time.sleep(outage_s)  # the outage itself, not a synchronisation
        restarted_at = time.monotonic()
        _run_ok([*kafka, "start"])
        feed.release()
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = _recovery(scores, restarted_at)
        exits = topology.unplanned_exits
        deaths = topology.death_report()
        expired = topology.logs().count("not delivered, replaying")
        received = metrics.tags_by_metric()
        enforcer_exit = enforcer.poll()
    fault = (
        f"broker down {outage_s} s (delivery timeout {delivery_timeout_ms // 1000} s, "
        f"{expired} sends expired and replayed)"
    )
    lost, _ = _report(report_figure, fault, sent, scores, recovery, at_fault)
    assert lost == 0
    assert exits == 0, f"the topology died instead of riding out the broker restart:\n{deaths}"
    assert enforcer_exit is None, "the enforcer died instead of riding out the broker restart"
    if outage_s * 1000 > delivery_timeout_ms:
        assert expired > 0, "no send expired: the outage never reached the producers"
        assert_failure_metrics_sent(
            "test_broker_restart_mid_stream_loses_nothing_and_recovers_by_itself", received
        )


def test_topology_restart_resumes_from_committed_offsets(topics, tmp_path, report_figure):
    payloads = valid_users(STREAM, seed=33)
    at_stop: dict[int, int] = {}
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 3)
        at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
        stopped_at = time.monotonic()
        topology.restart(
            lambda: at_stop.update(
                committed_offsets(topics, scoring_group(topics), topics.features_topic)
            )
        )
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        recovery = scores.first_arrival_after(stopped_at + 1) - stopped_at
        exits, deaths = topology.unplanned_exits, topology.death_report()
    lost, duplicated = _report(report_figure, "topology restart", sent, scores, recovery, at_fault)
    assert lost == 0
    # A crash would be restarted from the commit too, and hide inside the bounds below.
    assert exits == 0, f"the topology died around its restart:\n{deaths}"
    # The new topology re-reads from the commit, and nothing before it.
    repeated_committed = sorted(
        (p, o) for (p, o), n in scores.counts.items() if n > 1 and o < at_stop[p]
    )
    assert not repeated_committed, (
        f"scored again although committed before the restart ({at_stop}): {repeated_committed[:10]}"
    )
    assert duplicated <= UNCOMMITTED_BOUND


# What each kind of damage must be dead-lettered as, worked out from the protobuf wire
# format and the README's list of reasons, not by asking the decoder under test.
EXPECTED_REASON = {
    "garbage": "undecodable",  # starts with tag 0x07: field 0 and wire type 7 do not exist
    "truncated": "undecodable",  # cut inside the user id's length-delimited bytes
    "wrong_type": "missing_user_id",  # a varint where the string is: protobuf skips it
    "nan": "non_finite_feature",
    "inf": "non_finite_feature",
    "no_user": "missing_user_id",
    "no_version": "missing_schema_version",
    "unknown_version": "unsupported_schema_version",
    "missing_feature": "missing_feature",
}


def _malformed(rng: random.Random, i: int) -> tuple[bytes, bytes, str]:
    """A payload that must be dead-lettered, keyed by its user id as producers key it (so
    that its damage, not its key, is what the spout refuses), and the kind of damage."""
    good = {name: rng.random() for name in CATALOG}
    kind = list(EXPECTED_REASON)[i % len(EXPECTED_REASON)]
    key = f"bad-{i}"  # for a payload without a user id
    if kind == "garbage":
        value = b"\x07" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80)))
    elif kind == "truncated":
        user_id = f"truncated-{i}"  # tag, length, then the id's bytes: cut among those
        value = encode_user_features(user_id, 1, good)[: rng.randint(3, 1 + len(user_id))]
    elif kind == "wrong_type":
        # user_id sent as a varint: protobuf skips a mistyped field, so the id is missing.
        value = UserFeatures(features=good, schema_version=1).SerializeToString() + b"\x08\x05"
    elif kind in ("nan", "inf"):
        key = f"n{i}"
        value = encode_user_features(key, 1, {**good, "error_ratio_1h": getattr(math, kind)})
    elif kind == "no_user":
        value = encode_user_features("", 1, good)
    elif kind == "no_version":
        key = f"v{i}"
        value = UserFeatures(user_id=key, features=good).SerializeToString()
    elif kind == "unknown_version":
        key = f"u{i}"
        value = encode_user_features(key, 1, good, schema_version=99)
    else:
        key = f"m{i}"
        value = encode_user_features(key, 1, {k: v for k, v in good.items() if k != CATALOG[3]})
    return key.encode(), value, kind


def _largest_accepted(settings: KafkaSettings, key: bytes, partition: int) -> tuple[bytes, int]:
    """Garbage of the largest size a default producer still accepts, sent to ``partition``.

    The producer's limit (``max_request_size``, 1 MiB) counts the record batch around the
    value; the broker's (``message.max.bytes``) is a little larger. Returns the value and
    its offset.
    """
    producer = KafkaProducer(**connection_config(settings))
    try:
        size = producer.config["max_request_size"]
        while True:
            value = b"\x07" + b"\xff" * (size - 1)
            try:
                future = producer.send(
                    settings.features_topic, key=key, value=value, partition=partition
                )
            except MessageSizeTooLargeError:
                size -= 8
                continue
            return value, future.get(timeout=30).offset
    finally:
        producer.close()


def test_malformed_messages_are_dead_lettered_with_their_reason(topics, tmp_path, report_figure):
    rng = random.Random(2026)
    # The largest bad message a producer can send, then 10,000 valid ones behind it on the
    # same partition: its dead letter must fit, and the partition must move on at once.
    huge, huge_offset = _largest_accepted(topics, b"huge", partition=0)
    behind = valid_users(10_000, seed=36)
    placed_behind = produce(topics, behind, partition=0)
    valid = valid_users(10_000, seed=34)
    payloads, kinds = [], []
    for i in range(10_000):
        key, value, kind = _malformed(rng, i)
        payloads += [valid[i], (key, value)]
        kinds += [None, kind]
    placed = produce(topics, payloads)
    bad = {
        source: (value, kind)
        for source, (_, value), kind in zip(placed, payloads, kinds, strict=True)
        if kind is not None
    }
    bad[(0, huge_offset)] = (huge, "garbage")
    valid_sources = set(placed) - set(bad) | set(placed_behind)

    with ScoreCollector(topics) as scores, SupervisedTopology(topics, tmp_path) as topology:
        scores.wait_for(lambda: scores.distinct() >= 20_000, 600, "20,000 scores")
        # Committed to the end means every score and letter is already on Kafka.
        wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 300)
        exits = topology.unplanned_exits
        deaths = topology.death_report()
        logs = topology.logs()
    scored = [decode_threat_score(r.value).source for r in read_topic(topics, topics.scores_topic)]
    decoded = [decode_dead_letter(r.value) for r in read_topic(topics, topics.dead_letter_topic)]
    reasons = {(d.source.partition, d.source.offset): d.reason for d in decoded}
    [huge_letter] = [
        d for d in decoded if d.source.offset == huge_offset and d.source.partition == 0
    ]
    report_figure(
        f"malformed: in 30001 (10001 bad, one of {len(huge)} bytes), scores {len(scored)}, "
        f"dead letters {len(decoded)}, reasons {sorted(set(reasons.values()))}"
    )
    assert sorted((s.partition, s.offset) for s in scored) == sorted(valid_sources)
    assert len(decoded) == 10_001
    assert reasons == {source: EXPECTED_REASON[kind] for source, (_, kind) in bad.items()}
    assert all(d.component == "features_spout" for d in decoded)
    whole = [d for d in decoded if d is not huge_letter]
    assert all(d.original_value == bad[(d.source.partition, d.source.offset)][0] for d in whole)
    # cut to fit, and the letter says what the whole was
    assert truncations(huge_letter) == (
        Truncation("value", len(huge), hashlib.sha256(huge).hexdigest()),
    )
    assert huge.startswith(huge_letter.original_value)
    # one warning for it, not one per retry
    where = f"{topics.features_topic}/0/{huge_offset}"
    assert len(re.findall(f"skipping invalid message at {re.escape(where)}\\b", logs)) == 1
    assert logs.count("dead letter for") <= 1, "dead-letter warnings repeated"
    assert exits == 0, f"the topology died:\n{deaths}"


def _raising_model(
    directory: Path, name: str, steps: list[Callable[..., np.ndarray]], low: float, high: float
) -> Path:
    """A model that applies ``steps`` to the features, then logistic regression, which
    refuses infinite or NaN input: it raises for any user a step takes there. Fitted on
    features between ``low`` and ``high``, it passes every check a model directory gets,
    as a data scientist's untested edge case would."""
    rng = np.random.default_rng(7)
    x = rng.uniform(low, high, size=(200, len(CATALOG)))
    model = make_pipeline(*map(FunctionTransformer, steps), LogisticRegression())
    model.fit(x, (x[:, 0] > (low + high) / 2).astype(np.int64))
    pickled = pickle.dumps(model, protocol=5)
    directory.mkdir()
    (directory / "model.pkl").write_bytes(pickled)
    manifest = ModelManifest(
        name=name,
        version="it-1",
        artifact="model.pkl",
        sha256=hashlib.sha256(pickled).hexdigest(),
        sklearn_version=sklearn.__version__,
        feature_names=tuple(CATALOG),
        thresholds=Thresholds(challenge=0.5, block=0.9),
    )
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict()))
    return directory


def _users(
    count: int, prefix: str, features: Callable[[int], dict[str, float]]
) -> list[tuple[bytes, bytes]]:
    return [
        (
            f"{prefix}-{i}".encode(),
            encode_user_features(f"{prefix}-{i}", 1_790_000_000_000 + i, features(i)),
        )
        for i in range(count)
    ]


def _sum_points(metrics: StatsdListener, name: str) -> float:
    return sum(p.value for p in metrics.points(name))


def _zero(i: int) -> dict[str, float]:
    """Features the raising champion cannot score: its first at 0."""
    return {n: 0.0 if n == CATALOG[0] else 1.0 for n in CATALOG}


def _positive(i: int) -> dict[str, float]:
    """No feature at 0 and some at 1 or more, each within its domain (a ratio at most 1)."""
    return {name: min(1.0 + (i % 7) / 7, DOMAINS[name].high) for name in CATALOG}


def test_a_model_that_raises_has_its_users_dead_lettered_after_their_attempts(
    topics, tmp_path, report_figure
):
    """A model call that raises fails its tuple; the spout replays it and, at the tuple's
    ``kafka.max_attempts``-th failure after other users were scored, cuts the batch in
    halves, and halves again the half that fails, until each message that fails alone is
    dead-lettered as ``retries_exhausted`` with its bytes. The other users of a batch are
    scored, once each. A challenger that raises for every one of them costs only its own
    (shadow) scores; so do the challenger's scores the shadow topic refuses for good (lost,
    counted)."""
    attempts = 3
    raising = _users(60, "zero", _zero)
    scorable = _users(500, "positive", _positive)
    # One partition, so one batch: every tenth user raises, the others are scorable.
    mixed = _users(200, "mixed", lambda i: _zero(i) if i % 10 == 3 else _positive(i))
    mixed_raising = [pair for i, pair in enumerate(mixed) if i % 10 == 3]
    # log 0 is -inf: the champion raises for the users with a feature at 0
    champion = _raising_model(tmp_path / "model", "raising", [np.log], 0.5, 2.0)
    # log(1 - x), as if every feature were a ratio: NaN or -inf from 1 up, so for every
    # user the champion scores
    challenger = _raising_model(
        tmp_path / "challenger", "ratios-only", [np.negative, np.log1p], 0.0, 0.9
    )
    # features below 1, which both models score
    ratios = _users(300, "ratios", lambda i: {name: 0.1 + i / 400 for name in CATALOG})
    with (
        StatsdListener() as metrics,
        _challenger(challenger) as releases,
        ScoreCollector(topics) as scores,
        SupervisedTopology(
            topics,
            tmp_path,
            BOTSCORE_SCORING_MODEL_DIR=str(champion),
            BOTSCORE_KAFKA_MAX_ATTEMPTS=str(attempts),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
            **releases,
        ) as topology,
    ):
        deferred_now = partial(
            _sum_points, metrics, "botscore.features_spout.last_attempts_deferred"
        )
        bad_sources = set(produce(topics, raising))
        # Alone, they fail every attempt with nothing scored in between, as in an outage:
        # they wait at their last attempt instead of being dead-lettered...
        wait_for("the raising users' last attempts held", lambda: deferred_now() > 0, 300)
        assert read_topic(topics, topics.dead_letter_topic) == []
        # ...until other users are scored: then their next failure is their own.
        good_sources = set(produce(topics, scorable))
        scores.wait_for(lambda: scores.distinct() >= len(scorable), 300, "the scorable users")
        wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 300)
        # A batch of both: it waits at its last attempt too, unless part of it was acked...
        held = deferred_now()
        placed = produce(topics, mixed, partition=0)
        mixed_bad = {placed[i] for i, pair in enumerate(mixed) if pair in mixed_raising}
        bad_sources |= mixed_bad
        good_sources |= set(placed) - mixed_bad
        wait_for(
            "the mixed batch held, or halved",
            lambda: deferred_now() > held or scores.distinct() >= len(good_sources),
            300,
        )
        # ...and the users after it give the evidence. The challenger scores these, and the
        # shadow topic refuses every message.
        limit_message_bytes(topics, topics.shadow_scores_topic, 1)
        good_sources |= set(produce(topics, ratios))
        scores.wait_for(lambda: scores.distinct() >= len(good_sources), 300, "the ratios")
        wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 300)
        exits = topology.unplanned_exits
        logs = topology.logs()
        received = metrics.tags_by_metric()
        failed = _sum_points(metrics, "botscore.classifier.failed")
        replays = metrics.points("botscore.features_spout.replayed")
        replayed = sum(p.value for p in replays if p.tag("cause") == "failed")
        deferred = deferred_now()
        bisected = _sum_points(metrics, "botscore.features_spout.bisected")
        presumed_lost = sum(p.value for p in replays if p.tag("cause") != "failed")
        shadow_failed = sum(p.value for p in metrics.points("botscore.classifier.shadow_failed"))
        shadow_scored = sum(p.value for p in metrics.points("botscore.classifier.shadow_scored"))
        shadow_lost = sum(p.value for p in metrics.points("botscore.shadow_producer.send_failed"))
    letters = [decode_dead_letter(r.value) for r in read_topic(topics, topics.dead_letter_topic)]
    report_figure(
        f"a model raising on {len(bad_sources)} users ({len(mixed_bad)} of them among "
        f"{len(mixed)} in one batch): {len(letters)} dead-lettered after {attempts} attempts "
        f"and {bisected:.0f} batches halved ({failed:.0f} failed model calls, "
        f"{replayed:.0f} replays, {deferred:.0f} last attempts held until others were "
        f"scored), {scores.distinct()} others scored; the challenger failed "
        f"{shadow_failed:.0f}, scored {shadow_scored:.0f} in {shadow_lost:.0f} tuples its "
        "topic refused"
    )
    assert set(scores.counts) == good_sources, "a user the model cannot score was scored"
    # A shadow tuple Kafka refused was not failed: no replay, no second champion score.
    assert set(scores.counts.values()) == {1}, "a user was scored twice"
    by_source = {(d.source.partition, d.source.offset): d for d in letters}
    assert set(by_source) == bad_sources and len(letters) == len(bad_sources)
    assert {d.reason for d in letters} == {"retries_exhausted"}
    assert {d.original_value for d in letters} == {v for _, v in raising + mixed_raising}
    for letter in letters:
        tries = re.fullmatch(r"failed downstream (\d+) times.*", letter.detail)
        assert tries and int(tries[1]) >= attempts, letter.detail
    assert failed >= attempts and deferred >= 1 and bisected >= 1
    # Every failure was replayed but those that ended a tuple: a batch halved (its two
    # halves emitted in its place: one more replay) or a user dead-lettered.
    assert replayed == failed + bisected - len(letters)
    assert presumed_lost == 0, "one worker loses no acks, yet tuples were presumed lost"
    assert "cannot score tuple" in logs
    # Each scored user once, and never by the challenger, which logged why.
    assert shadow_failed == len(scorable) + len(mixed) - len(mixed_raising)
    assert shadow_scored == len(ratios) and shadow_lost >= 1
    assert read_topic(topics, topics.shadow_scores_topic) == []
    assert "challenger ratios-only/it-1 cannot score tuple" in logs
    lost = [line for line in logs.splitlines() if "its shadow scores are lost" in line]
    assert lost and all("MessageSizeTooLargeError" in line for line in lost), lost[:3]
    assert exits == 0, topology.death_report()
    assert_failure_metrics_sent(
        "test_a_model_that_raises_has_its_users_dead_lettered_after_their_attempts", received
    )


def test_a_second_spout_joining_then_leaving_the_group_loses_nothing(
    topics, tmp_path, report_figure
):
    """A second `sparse run` of the same topology joins the consumer group (partitions are
    revoked from the first and split), then stops (the first takes them all back), while
    users keep arriving at 400/s (until shortly after the first took every partition back:
    a slower machine takes longer to start the second)."""
    payloads = valid_users(STREAM * 3, seed=35)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path / "first") as first,
        PacedFeed(topics, payloads, per_second=400, chunk=400) as feed,
    ):
        feed.start()
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
            at_leave = _committed_at_fault(topics, lambda: len(feed.sent))
            left_at = time.monotonic()
        scores.wait_for(
            lambda: len(re.findall(r"partitions assigned: \[0, 1, 2, 3\]", first.logs())) >= 2,
            300,
            "the first spout to take every partition back",
        )
        time.sleep(5)  # users go on arriving at the first spout alone
        sent = feed.finish()
        assert len(sent) < len(payloads), "the stream ended before the second spout left"
        scores.wait_for(lambda: scores.distinct() >= len(sent), 600, "every message scored")
        recovery = scores.first_arrival_after(left_at + 1) - left_at
        exits = {"first": first.unplanned_exits, "second": second.unplanned_exits}
        deaths = first.death_report() + second.death_report()
    lost, duplicated = _report(
        report_figure,
        f"second spout joined at {at_join} scored, left",
        sent,
        scores,
        recovery,
        at_leave,
    )
    assert lost == 0
    # A spout that died on a revocation would be restarted from the commit, and hide.
    assert exits == {"first": 0, "second": 0}, f"a spout died in the rebalances:\n{deaths}"
    # Each rebalance replays at most what was uncommitted, per spout.
    assert duplicated <= 2 * 2 * IN_FLIGHT_BOUND


def test_a_rebalance_across_a_broker_restart_loses_nothing(topics, tmp_path, report_figure):
    """Another member joins the scoring group, the broker restarts while the group
    rebalances, the member reads without committing and leaves: every input is scored."""
    payloads = valid_users(STREAM, seed=37)
    kafka = [str(ROOT / "stack/kafka/kafka.sh")]
    member = GroupMember(topics, scoring_group(topics), topics.features_topic)
    with (
        ScoreCollector(topics) as scores,
        SupervisedTopology(topics, tmp_path) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 4)
        feed.hold()  # the feed waits out the outage
        at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
        member.start_joining()
        _run_ok([*kafka, "stop"])
        time.sleep(5)  # the outage itself
        restarted_at = time.monotonic()
        _run_ok([*kafka, "start"])
        feed.release()  # the member reads some of it and never commits
        taken = member.wait_assigned(120)
        member.leave()
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 300)
        recovery = _recovery(scores, restarted_at)
        exits = topology.unplanned_exits
        deaths = topology.death_report()
        revocations = topology.logs().count("partitions revoked")
    lost, duplicated = _report(
        report_figure,
        f"member joined, broker down 5 s, member took {taken} ({member.read} read) and left",
        sent,
        scores,
        recovery,
        at_fault,
    )
    assert lost == 0
    assert revocations >= 2, "the topology's spout never gave partitions up"
    assert member.read > 0, "the member read nothing: its partitions' records were not re-read"
    assert exits == 0, f"the topology died during the rebalance:\n{deaths}"
    assert duplicated <= 2 * IN_FLIGHT_BOUND


REPLICATED_SH = str(ROOT / "stack/kafka/replicated.sh")
# Three JVMs starting on two busy cores, or one catching up while a topology runs, may take
# longer than the script's 60 s default.
SLOW_START = {"KAFKA_START_TIMEOUT": "240"}


@pytest.fixture(scope="module")
def replicated_brokers(storm_on_path) -> Iterator[KafkaSettings]:
    """The three brokers of ``stack/kafka/replicated.sh``, started once for this module's
    tests that kill one (they come last in it, so the brokers stop when they are done):
    topics with three replicas, of which two must have a write before it is confirmed."""
    _run_ok([REPLICATED_SH, "start"], **SLOW_START)
    try:
        bootstrap = subprocess.run(
            [REPLICATED_SH, "bootstrap"], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield KafkaSettings(
            bootstrap_servers=bootstrap, replication_factor=3, min_insync_replicas=2
        )
    finally:
        _run_ok([REPLICATED_SH, "stop"])


@pytest.fixture
def replicated_topics(replicated_brokers):
    """A run's topics on the three brokers."""
    settings = fresh_topics(replicated_brokers)
    yield settings
    delete_topics(settings, run_topics(settings))


def _describe(settings: KafkaSettings, also: tuple[str, ...] = ()) -> list[dict]:
    admin = KafkaAdminClient(**connection_config(settings))
    try:
        describe = partial(admin.describe_topics, [*run_topics(settings), *also])
        return retry_unreachable(describe, deadline=time.monotonic() + 60)
    finally:
        admin.close()


def _group_coordinator(settings: KafkaSettings, group: str) -> int:
    """The broker coordinating ``group``: the leader of its ``__consumer_offsets`` partition,
    ``abs(group.hashCode()) % partitions`` with Java's ``String.hashCode``."""
    java_hash, units = 0, group.encode("utf-16-be")  # Java strings are UTF-16 code units
    for i in range(0, len(units), 2):
        java_hash = (31 * java_hash + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    java_hash = java_hash - (1 << 32) if java_hash >= 1 << 31 else java_hash
    admin = KafkaAdminClient(**connection_config(settings))
    try:
        describe = partial(admin.describe_topics, ["__consumer_offsets"])
        [offsets] = retry_unreachable(describe, deadline=time.monotonic() + 60)
    finally:
        admin.close()
    partition = abs(java_hash) % len(offsets["partitions"])
    [leader] = [p["leader_id"] for p in offsets["partitions"] if p["partition_index"] == partition]
    return leader


def _leaders(settings: KafkaSettings, also: tuple[str, ...] = ()) -> dict[tuple[str, int], int]:
    """The broker leading each partition of the run's topics and ``also``."""
    return {
        (t["name"], p["partition_index"]): p["leader_id"]
        for t in _describe(settings, also)
        for p in t["partitions"]
    }


def _wait_all_in_sync(
    settings: KafkaSettings,
    replicas: int,
    since: float,
    timeout_s: float = 120,
    also: tuple[str, ...] = (),
) -> float:
    """Seconds from ``since`` until every partition of the run's topics and ``also`` has
    ``replicas`` in sync again."""
    started = time.monotonic()
    while True:
        short = [
            (t["name"], p["partition_index"], p["isr_nodes"])
            for t in _describe(settings, also)
            for p in t["partitions"]
            if len(p["isr_nodes"]) < replicas
        ]
        if not short:
            return time.monotonic() - since
        assert time.monotonic() - started < timeout_s, f"still out of sync: {short}"
        time.sleep(0.5)


def _wait_led_elsewhere(
    settings: KafkaSettings,
    node: int,
    partitions: list[tuple[str, int]],
    timeout_s: float = 60,
    also: tuple[str, ...] = (),
) -> float:
    """Seconds until none of ``partitions`` (of the run's topics and ``also``) is led by
    ``node`` any more."""
    started = time.monotonic()
    while True:
        leaders = _leaders(settings, also)
        still = [k for k in partitions if leaders[k] == node]
        if not still:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"{still} still led by dead broker {node}"
        time.sleep(0.2)


def test_a_broker_of_three_killed_mid_stream_loses_nothing(
    replicated_topics, tmp_path, report_figure
):
    """kill -9 of the broker coordinating the scoring group, with three replicas: the feed,
    the topology's spout, bolts and commits, and the edge's `botscore enforce`, carry on
    through the new leaders and coordinator, and the broker started again catches up."""
    topics = replicated_topics
    payloads = valid_users(STREAM, seed=34)
    edge_group = f"{topics.scores_topic}-edge"
    with (
        enforcing(
            topics,
            edge_group,
            tmp_path / "enforce.log",
            BOTSCORE_REDIS_DB=str(REDIS_DB),
            BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=topics.bootstrap_servers,
        ) as enforcer,
        ScoreCollector(topics) as scores,
        SupervisedTopology(
            topics, tmp_path, BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=topics.bootstrap_servers
        ) as topology,
        _paced(topics, payloads, scores) as feed,
    ):
        _wait_committed(topics, STREAM // 4)
        leaders = _leaders(topics)
        node = _group_coordinator(topics, scoring_group(topics))
        led = sorted(k for k, n in leaders.items() if n == node)
        at_fault = _committed_at_fault(topics, lambda: len(feed.sent))
        killed_at = time.monotonic()
        _run_ok([REPLICATED_SH, "kill", str(node)])
        moved_s = _wait_led_elsewhere(topics, node, led)
        # The stream goes on with two brokers for a while before the third comes back.
        feed.wait_sent(len(feed.sent) + 2 * FEED_RATE, timeout_s=120)
        restarted_at = time.monotonic()
        _run_ok([REPLICATED_SH, "start", str(node)], **SLOW_START)
        sent = feed.join()
        scores.wait_for(lambda: scores.distinct() >= STREAM, 600, "every message scored")
        caught_up_s = _wait_all_in_sync(topics, 3, since=restarted_at)
        # Both consumer groups' commits reach the end: nothing is left to read again.
        wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 300)
        wait_committed_to_end(topics, edge_group, topics.scores_topic, 300, enforcer)
        pause = scores.longest_pause_after(killed_at)
        exits, deaths = topology.unplanned_exits, topology.death_report()
        enforcer_exit = enforcer.poll()
    fault = (
        f"broker {node} of 3 killed, the scoring group's coordinator, leading {len(led)} "
        "partitions of the run's topics "
        f"({', '.join(f'{t}/{p}' for t, p in led)}), led by others {moved_s:.1f} s later, "
        f"all in sync {caught_up_s:.1f} s after its restart (recovery: the longest pause "
        "between scores after the kill)"
    )
    lost, duplicated = _report(report_figure, fault, sent, scores, pause, at_fault)
    assert lost == 0
    assert exits == 0, f"the topology died instead of riding out the broker's death:\n{deaths}"
    assert enforcer_exit is None, "the enforcer died instead of riding out the broker's death"
    assert duplicated <= UNCOMMITTED_BOUND


@pytest.mark.aggregation
def test_a_broker_of_three_killed_under_the_aggregation_loses_nothing(
    replicated_brokers, tmp_path, report_figure
):
    """kill -9 of the broker coordinating the aggregation group, with three replicas, while
    WebLogs arrive: the spouts' reads and commits (under the state's generation) and the
    publications go on through the new leaders and coordinator; every request is counted
    once (the features equal offline) and the broker started again catches up."""
    logs = recorded_logs(users=500, rate=40, duration_s=750, seed=27)
    expected = final_features(logs)
    half = len(logs) // 2
    with (
        agg_topics_of_a_run(replicated_brokers, REDIS_DB) as topics,
        empty_redis_db(REDIS_DB) as client,
        FeatureCollector(topics.kafka) as features,
    ):
        feed(topics, logs[:half])
        with SupervisedTopology(
            topics.kafka,
            tmp_path,
            "aggregation",
            **topics.env(),
            BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=topics.kafka.bootstrap_servers,
        ) as topology:
            deadline = time.monotonic() + 180
            while features.total < 200:
                assert time.monotonic() < deadline, "no features published before the fault"
                time.sleep(0.2)
            sender_errors: list[BaseException] = []

            def send_the_rest() -> None:
                try:
                    feed_paced(topics, logs[half:])
                except BaseException as exc:  # the test fails on it below
                    sender_errors.append(exc)

            sender = threading.Thread(target=send_the_rest)
            sender.start()
            node = _group_coordinator(topics.kafka, topics.group)
            leaders = _leaders(topics.kafka, (topics.web_logs,))
            led = sorted(k for k, n in leaders.items() if n == node)
            committed = committed_offsets(topics.kafka, topics.group, topics.web_logs)
            while not sum(committed.values()):
                assert time.monotonic() < deadline + 60, "nothing committed before the fault"
                time.sleep(0.1)
                committed = committed_offsets(topics.kafka, topics.group, topics.web_logs)
            _run_ok([REPLICATED_SH, "kill", str(node)])
            killed_at = time.monotonic()
            moved_s = _wait_led_elsewhere(topics.kafka, node, led, also=(topics.web_logs,))
            sender.join(300)
            assert not sender.is_alive(), "the second half of the WebLogs was not sent in 300 s"
            assert not sender_errors, f"sending the second half failed: {sender_errors[0]!r}"
            # The broker comes back while the topology catches up on two.
            restarted_at = time.monotonic()
            restart_errors: list[BaseException] = []

            def start_again() -> None:
                try:
                    _run_ok([REPLICATED_SH, "start", str(node)], **SLOW_START)
                except BaseException as exc:  # the test fails on it below
                    restart_errors.append(exc)

            restart = threading.Thread(target=start_again)
            restart.start()
            features.wait_until_equal(expected, 420, None, explainer(topics, client))
            equal_s = time.monotonic() - killed_at
            restart.join(300)
            assert not restart.is_alive(), f"broker {node} did not start again in 300 s"
            assert not restart_errors, f"broker {node} did not start again: {restart_errors[0]}"
            caught_up_s = _wait_all_in_sync(
                topics.kafka, 3, since=restarted_at, also=(topics.web_logs,)
            )
            ends = wait_committed_to_end(topics.kafka, topics.group, topics.web_logs, 120)
            exits, deaths = topology.unplanned_exits, topology.death_report()
        letters = read_topic(topics.kafka, topics.kafka.dead_letter_topic)

    report_figure(
        f"aggregation, broker {node} of 3 killed, the aggregation group's coordinator, with "
        f"{sum(committed.values())} of {len(logs)} WebLogs committed and the rest arriving; "
        f"its {len(led)} partitions led by others {moved_s:.1f} s later; all "
        f"{len(expected)} users' features equal offline {equal_s:.0f} s after the kill; "
        f"all in sync {caught_up_s:.1f} s after its restart"
    )
    assert 0 < sum(committed.values()) < len(logs), committed
    assert sum(ends.values()) == len(logs)
    assert exits == 0, f"the topology died instead of riding out the broker's death:\n{deaths}"
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
