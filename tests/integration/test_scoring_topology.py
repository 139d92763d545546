"""The scoring topology end to end: real broker, `sparse run` on Storm 2.8 local mode.

The same run's scores then go through `botscore enforce` into Redis and are read back as
an edge reads them (``EdgeDecisions``): one topology start serves every check.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import redis

from botscore.clock import now_ms
from botscore.enforcement.decisions import decision_key
from botscore.enforcement.edge import EdgeDecisions
from botscore.model.features import CATALOG, feature_matrix
from botscore.model.registry import LoadedModel, load_model
from botscore.model.sample_users import sample_users
from botscore.model.training import training_rows
from botscore.settings import KafkaSettings, Settings
from botscore.simulator.spec import SimulationSpec
from botscore.transport.kafka_clients import create_producer
from botscore.vocabulary import Decision
from botscore.wire.codec import decode_threat_score, encode_user_features
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import ScoreRecord, SourceRef
from tests.statsd import StatsdListener

from .harness import (
    DELETED_BEFORE_READ,
    PAST_THE_END,
    ROOT,
    consume_all,
    delete_topics,
    empty_redis_db,
    enforcing,
    fresh_topics,
    only_line,
    plant_position_faults,
    read_topic,
    refused_dead_letter,
    run_topics,
    scoring_group,
    sparse_run,
    stack_env,
    wait_committed_to_end,
)
from .wire_proofs import RATE_CEILING_METRICS, assert_failure_metrics_sent, missing_from

pytestmark = pytest.mark.integration

USERS = 5000
GARBAGE = b"\x08\x96\x01 this is not a UserFeatures message \xff\xff"
UNUSABLE_PARTITION = 2  # neither 0 nor 1, where plant_position_faults puts its faults
STALE_USERS = 3
MINUTE_MS = 60_000
# Features as the aggregation publishes them for a small simulated crowd: the model's own
# scores pick block- and challenge-level vectors among them (sample users are never
# challenged).
CANDIDATES = SimulationSpec(users=200, bot_share=0.3, rate=20.0, duration_s=300.0, seed=11)
EDGE_REDIS_DB = 6  # the stack's Redis, a database of this module's own
# Longer than the stale features' age, so only the age rule can keep their blocks out,
# and the recent decisions outlive any topology start.
EDGE_TTL_S = 3 * 3600


@dataclass(frozen=True)
class EdgeCases:
    """Input whose decisions the edge must get right, beside the bulk of the run."""

    stale_users: tuple[str, ...]  # block-level features whose window ended two hours ago
    revised_user: str
    # (partition, offset) of its block-level features, then of its challenge-level ones a
    # minute newer
    revised: tuple[tuple[int, int], tuple[int, int]]
    # an allowed user's features but for 168,000 requests in the last minute
    flood_user: str


@dataclass
class PipelineRun:
    settings: KafkaSettings
    # (partition, offset) -> {"user_id", "feature_time_ms", "features"}
    sent: dict[tuple[int, int], dict]
    garbage_at: tuple[int, int]
    refused_at: tuple[int, int]  # a message whose dead letter Kafka refuses for good
    edge: EdgeCases
    scores: list  # ConsumerRecords from the scores topic
    log: str
    users_per_s: float
    wall_window_ms: tuple[int, int]
    metrics: dict[str, set[str]]  # what the topology sent: name -> tags


def by_decision(model: LoadedModel) -> dict[Decision, list[dict[str, float]]]:
    """The candidate feature vectors, grouped by what the model and its thresholds decide."""
    matrix, _, _ = training_rows(CANDIDATES)
    rows = [dict(zip(CATALOG, map(float, row), strict=True)) for row in matrix]
    scores = model.predict_scores(feature_matrix(rows, model.manifest.feature_names))
    grouped: dict[Decision, list[dict[str, float]]] = {d: [] for d in Decision}
    for row, score in zip(rows, scores, strict=True):
        grouped[model.manifest.thresholds.decide(float(score), row["requests_1h"])].append(row)
    return grouped


@pytest.fixture(scope="module")
def pipeline_run(
    kafka_settings, storm_on_path, tmp_path_factory, report_figure
) -> Iterator[PipelineRun]:
    settings = fresh_topics(kafka_settings)
    plant_position_faults(settings, settings.features_topic, scoring_group(settings))
    unusable = {
        USERS // 4: (b"refused", refused_dead_letter(settings)),
        USERS // 2: (b"garbage", GARBAGE),
    }
    candidates = by_decision(load_model(ROOT / "models" / "baseline"))
    blocks, challenges = candidates[Decision.BLOCK], candidates[Decision.CHALLENGE]
    assert len(blocks) > STALE_USERS and challenges, f"too few candidates in {CANDIDATES}"
    producer = create_producer(settings, client_id="it-producer")
    futures = []

    def send(user_id: str, feature_time_ms: int, features: dict[str, float]) -> None:
        payload = encode_user_features(user_id, feature_time_ms, features)
        future = producer.send(settings.features_topic, key=user_id.encode(), value=payload)
        info = {"user_id": user_id, "feature_time_ms": feature_time_ms, "features": features}
        futures.append((future, info))

    placed = {}
    for i, user in enumerate(sample_users(USERS, seed=2026)):
        if i in unusable:
            key, value = unusable[i]
            # One partition, the refused letter's message first: the letter after it must
            # still arrive (the outbox's producer goes on after a refusal).
            meta = producer.send(
                settings.features_topic, key=key, value=value, partition=UNUSABLE_PARTITION
            ).get(30)
            placed[key] = (meta.partition, meta.offset)
        send(user.user_id, 1_790_000_000_000 + i, user.features)
    now = now_ms()
    stale_users = tuple(f"it-stale-{i}" for i in range(STALE_USERS))
    for user_id, features in zip(stale_users, blocks[:STALE_USERS], strict=True):
        send(user_id, now - 120 * MINUTE_MS, features)
    flood_user = "it-flood"
    send(flood_user, now, {**candidates[Decision.ALLOW][0], "requests_1m": 168_000.0})
    # One key, one producer, in this order: the same partition, the block first.
    revised_user = "it-revised"
    send(revised_user, now - MINUTE_MS, blocks[STALE_USERS])
    send(revised_user, now, challenges[0])
    producer.flush()
    sources = [((f.get().partition, f.get().offset), info) for f, info in futures]
    producer.close()
    sent = dict(sources)
    edge = EdgeCases(stale_users, revised_user, (sources[-2][0], sources[-1][0]), flood_user)

    log_path = tmp_path_factory.mktemp("sparse") / "sparse-run.log"
    start_ms = now_ms()
    with (
        StatsdListener() as metrics,
        sparse_run(settings, log_path, BOTSCORE_METRICS_STATSD_PORT=str(metrics.port)) as process,
    ):
        started = time.monotonic()
        scores = consume_all(settings, settings.scores_topic, len(sent), 600, process, log_path)
        wall_s = time.monotonic() - started
        # Committed to the end: every score the topology will write is on Kafka now, so
        # reading to the end shows any duplicate beyond those sent.
        wait_committed_to_end(
            settings, scoring_group(settings), settings.features_topic, 120, process
        )
        scores = read_topic(settings, settings.scores_topic)
        received = metrics.tags_by_metric()
    window = (start_ms, now_ms())
    scored_ms = [decode_threat_score(r.value).scored_time_ms for r in scores]
    span_s = (max(scored_ms) - min(scored_ms)) / 1000 if scores else 0.0
    users_per_s = len(scores) / span_s if span_s else 0.0
    report_figure(
        f"scoring topology: {len(scores)} scores; `sparse run` start to last score {wall_s:.1f} s; "
        f"first to last score {span_s:.2f} s = {users_per_s:.0f} users/s"
    )
    log = log_path.read_text(errors="replace")
    yield PipelineRun(
        settings,
        sent,
        placed[b"garbage"],
        placed[b"refused"],
        edge,
        scores,
        log,
        users_per_s,
        window,
        received,
    )
    delete_topics(settings, run_topics(settings))


@pytest.fixture(scope="module")
def edge_redis(pipeline_run: PipelineRun, tmp_path_factory) -> Iterator[redis.Redis]:
    """The edge's decisions once `botscore enforce` has applied every score of the run."""
    settings = pipeline_run.settings
    group = f"{settings.scores_topic}-edge"
    log_path = tmp_path_factory.mktemp("enforce") / "enforce.log"
    with empty_redis_db(EDGE_REDIS_DB) as client:
        with enforcing(
            settings,
            group,
            log_path,
            BOTSCORE_ENFORCEMENT_BLOCK_TTL_S=str(EDGE_TTL_S),
            BOTSCORE_ENFORCEMENT_CHALLENGE_TTL_S=str(EDGE_TTL_S),
            BOTSCORE_REDIS_DB=str(EDGE_REDIS_DB),
            BOTSCORE_METRICS_ENABLED="false",
        ) as process:
            # Committed to the end: Redis holds what every score of the run asked for.
            wait_committed_to_end(settings, group, settings.scores_topic, 120, process)
        yield client


def scores_by_source(run: PipelineRun) -> dict[tuple[int, int], ScoreRecord]:
    decoded = (decode_threat_score(r.value) for r in run.scores)
    return {(s.source.partition, s.source.offset): s for s in decoded}


def test_exactly_one_score_per_message(pipeline_run: PipelineRun):
    decoded = [decode_threat_score(r.value) for r in pipeline_run.scores]
    sources = [(s.source.partition, s.source.offset) for s in decoded]
    assert len(sources) == len(set(sources)), "a message was scored twice"
    assert set(sources) == set(pipeline_run.sent), "scores do not match the messages sent"
    assert all(s.source.topic == pipeline_run.settings.features_topic for s in decoded)
    for record, score in zip(pipeline_run.scores, decoded, strict=True):
        assert record.key == score.user_id.encode()
        assert (
            score.user_id
            == pipeline_run.sent[(score.source.partition, score.source.offset)]["user_id"]
        )


def test_scores_equal_offline_predict_proba(pipeline_run: PipelineRun):
    model = load_model(ROOT / "models" / "baseline")
    decoded: list[ScoreRecord] = [decode_threat_score(r.value) for r in pipeline_run.scores]
    features = [
        pipeline_run.sent[(s.source.partition, s.source.offset)]["features"] for s in decoded
    ]
    offline = model.estimator.predict_proba(feature_matrix(features, model.manifest.feature_names))[
        :, 1
    ]
    online = np.array([s.score for s in decoded])
    assert np.max(np.abs(online - offline)) <= 1e-9
    decide = model.manifest.thresholds.decide
    ceiling = Settings().scoring.block_requests_1m
    assert [s.decision for s in decoded] == [
        Decision.BLOCK if f["requests_1m"] > ceiling else decide(x, f["requests_1h"])
        for x, f in zip(offline, features, strict=True)
    ]
    assert {(s.model_name, s.model_version) for s in decoded} == {
        (model.manifest.name, model.manifest.version)
    }
    start_ms, end_ms = pipeline_run.wall_window_ms
    assert all(start_ms <= s.scored_time_ms <= end_ms for s in decoded)


def test_invalid_message_is_logged_dead_lettered_and_skipped(pipeline_run: PipelineRun):
    partition, offset = pipeline_run.garbage_at
    where = f"{pipeline_run.settings.features_topic}/{partition}/{offset}"
    assert f"skipping invalid message at {where}" in pipeline_run.log
    settings = pipeline_run.settings
    # the run committed every offset, so its letters are all on the topic already
    [letter] = [
        decode_dead_letter(r.value) for r in read_topic(settings, settings.dead_letter_topic)
    ]
    assert letter.original_value == GARBAGE
    assert letter.original_key == b"garbage"
    assert (letter.reason, letter.component) == ("undecodable", "features_spout")
    assert letter.source == SourceRef(settings.features_topic, partition, offset)
    # Skipped, not stalled: every valid message of that partition after it was scored.
    later = {o for p, o in pipeline_run.sent if p == partition and o > offset}
    decoded = [decode_threat_score(r.value) for r in pipeline_run.scores]
    scored = {s.source.offset for s in decoded if s.source.partition == partition}
    assert later, "the invalid message should sit between valid ones"
    assert later <= scored


def test_a_dead_letter_kafka_refuses_is_logged_counted_and_its_offset_finished(
    pipeline_run: PipelineRun,
):
    """Its topic's limit refuses the letter for good: resending could never succeed, and
    its offset held back would stall the partition (the run committed every offset)."""
    source = SourceRef(pipeline_run.settings.features_topic, *pipeline_run.refused_at)
    line = only_line(pipeline_run.log, f"dead letter for {source}")
    assert "can never be sent, dropped" in line and "MessageSizeTooLargeError" in line
    assert_failure_metrics_sent(
        "test_a_dead_letter_kafka_refuses_is_logged_counted_and_its_offset_finished",
        pipeline_run.metrics,
    )


def test_features_kafka_deleted_or_moved_back_are_reported_and_read_on(pipeline_run: PipelineRun):
    """As for the web logs (``test_aggregation.py``): every message still held is scored
    once (``test_exactly_one_score_per_message``), and the spout said what happened."""
    topic = pipeline_run.settings.features_topic
    only_line(pipeline_run.log, f"{topic}/0: offsets 0-{DELETED_BEFORE_READ - 1} were deleted")
    only_line(pipeline_run.log, f"{topic}/1: Kafka returned offset 0 where {PAST_THE_END} was")
    assert_failure_metrics_sent(
        "test_features_kafka_deleted_or_moved_back_are_reported_and_read_on", pipeline_run.metrics
    )


def test_kafka_console_consumer_reads_scores_that_protoc_decodes(pipeline_run: PipelineRun):
    """A client we did not write (Kafka's console consumer) and protoc agree on the bytes."""
    env = stack_env()
    for record in pipeline_run.scores[:: len(pipeline_run.scores) // 3][:3]:
        consumed = subprocess.run(
            [
                str(ROOT / "stack/kafka/kafka.sh"),
                "console-consumer",
                "--bootstrap-server",
                pipeline_run.settings.bootstrap_servers,
                "--topic",
                pipeline_run.settings.scores_topic,
                "--partition",
                str(record.partition),
                "--offset",
                str(record.offset),
                "--max-messages",
                "1",
                # Raw bytes cannot be split on newlines; this prints non-printables as \xHH.
                "--property",
                "value.deserializer=org.apache.kafka.common.serialization.BytesDeserializer",
            ],
            env=env,
            capture_output=True,
            timeout=120,
            check=True,
        )
        payload = re.sub(
            rb"\\x([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), consumed.stdout.rstrip(b"\n")
        )
        assert payload == record.value
        decoded = subprocess.run(
            [
                "protoc",
                f"-I{ROOT / 'proto'}",
                "--decode",
                "botscore.v1.ThreatScore",
                "botscore/v1/threat_score.proto",
            ],
            input=payload,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout.decode()
        score = decode_threat_score(record.value)
        assert f'user_id: "{score.user_id}"' in decoded
        assert f"offset: {score.source.offset}" in decoded or score.source.offset == 0


def test_watch_command_prints_one_line_per_score(pipeline_run: PipelineRun):
    watched = subprocess.run(
        ["botscore", "watch", "--from-beginning", "--max", "5"],
        cwd=ROOT,
        env=stack_env(BOTSCORE_KAFKA_SCORES_TOPIC=pipeline_run.settings.scores_topic),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = watched.stdout.strip().splitlines()
    assert len(lines) == 5
    assert all(" score=" in line and "model=baseline/" in line for line in lines)


def test_stale_features_make_no_decision(pipeline_run: PipelineRun, edge_redis: redis.Redis):
    stale = pipeline_run.edge.stale_users
    scored = {k: s for k, s in scores_by_source(pipeline_run).items() if s.user_id in stale}
    # Scored block, with features two hours old when the run began: within the blocks' TTL,
    # so only the features' age can keep them from the edge.
    assert sorted(s.user_id for s in scored.values()) == sorted(stale)
    assert {s.decision for s in scored.values()} == {Decision.BLOCK}
    two_hours_before_run = pipeline_run.wall_window_ms[0] - 120 * MINUTE_MS
    for source, score in scored.items():
        assert score.feature_time_ms == pipeline_run.sent[source]["feature_time_ms"]
        assert score.feature_time_ms <= two_hours_before_run
    edge = EdgeDecisions(edge_redis, cache_ms=0)
    for user in stale:
        assert not edge_redis.exists(decision_key(user))
        assert edge.decision_for(user) == Decision.ALLOW


def test_a_challenge_scored_after_a_block_is_what_the_edge_then_sees(
    pipeline_run: PipelineRun, edge_redis: redis.Redis
):
    (first, second), user = pipeline_run.edge.revised, pipeline_run.edge.revised_user
    assert first[0] == second[0] and first[1] < second[1]
    scores = scores_by_source(pipeline_run)
    # Had only the first score arrived, the edge would block.
    assert (scores[first].decision, scores[second].decision) == (Decision.BLOCK, Decision.CHALLENGE)
    assert scores[second].feature_time_ms - scores[first].feature_time_ms == MINUTE_MS
    assert edge_redis.get(decision_key(user)) == Decision.CHALLENGE.encode()
    assert EdgeDecisions(edge_redis, cache_ms=0).decision_for(user) == Decision.CHALLENGE


def test_a_flood_is_blocked_whatever_the_model_scores(
    pipeline_run: PipelineRun, edge_redis: redis.Redis
):
    """``scoring.block_requests_1m``: a user past it is blocked though the model, which saw
    no such rate in training, scores it as the allowed user it otherwise is."""
    user = pipeline_run.edge.flood_user
    [score] = [s for s in scores_by_source(pipeline_run).values() if s.user_id == user]
    thresholds = load_model(ROOT / "models" / "baseline").manifest.thresholds
    sent = next(info for info in pipeline_run.sent.values() if info["user_id"] == user)
    assert sent["features"]["requests_1m"] > Settings().scoring.block_requests_1m
    assert thresholds.decide(score.score, sent["features"]["requests_1h"]) == Decision.ALLOW
    assert score.decision == Decision.BLOCK
    assert EdgeDecisions(edge_redis, cache_ms=0).decision_for(user) == Decision.BLOCK
    assert missing_from(pipeline_run.metrics, RATE_CEILING_METRICS) == []


def test_a_model_of_fewer_features_scores_what_it_reads(kafka_settings, storm_on_path, tmp_path):
    """`models/no-sensor`, bundled: the spout decodes the features it reads and no more, so
    a message without the JavaScript feature is scored, one without a feature it reads is
    dead-lettered, and every score equals the model's own."""
    no_sensor = load_model(ROOT / "models" / "no-sensor")
    names = no_sensor.manifest.feature_names
    assert "js_check_ratio_1h" not in names and len(names) < len(CATALOG)
    settings = fresh_topics(kafka_settings, prefix="it-no-sensor")
    producer = create_producer(settings, client_id="it-producer")
    sent: dict[tuple[int, int], dict[str, float]] = {}
    for i, user in enumerate(sample_users(300, seed=7)):
        features = dict(user.features)
        if i % 3 == 0:
            del features["js_check_ratio_1h"]  # an edge without the gate: no such feature
        payload = encode_user_features(user.user_id, 1_790_000_000_000 + i, features)
        record = producer.send(
            settings.features_topic, key=user.user_id.encode(), value=payload
        ).get(30)
        sent[(record.partition, record.offset)] = features
    lacking = {k: v for k, v in next(sample_users(1, seed=8)).features.items() if k != names[0]}
    lacking_at = producer.send(
        settings.features_topic,
        key=b"it-lacking",
        value=encode_user_features("it-lacking", 1_790_000_000_000, lacking),
    ).get(30)
    producer.close()
    log_path = tmp_path / "sparse-run.log"
    try:
        with sparse_run(
            settings,
            log_path,
            BOTSCORE_SCORING_MODEL_DIR="models/no-sensor",
            BOTSCORE_METRICS_ENABLED="false",
        ) as process:
            consume_all(settings, settings.scores_topic, len(sent), 600, process, log_path)
            wait_committed_to_end(
                settings, scoring_group(settings), settings.features_topic, 120, process
            )
            scores = [
                decode_threat_score(r.value) for r in read_topic(settings, settings.scores_topic)
            ]
            letters = [
                decode_dead_letter(r.value)
                for r in read_topic(settings, settings.dead_letter_topic)
            ]
    finally:
        delete_topics(settings, run_topics(settings))
    assert sorted((s.source.partition, s.source.offset) for s in scores) == sorted(sent)
    rows = [sent[(s.source.partition, s.source.offset)] for s in scores]
    offline = no_sensor.predict_scores(feature_matrix(rows, names))
    assert np.max(np.abs(np.array([s.score for s in scores]) - offline)) <= 1e-9
    assert {(s.model_name, s.model_version) for s in scores} == {("no-sensor", "1")}
    assert [(d.reason, d.source.partition, d.source.offset) for d in letters] == [
        ("missing_feature", lacking_at.partition, lacking_at.offset)
    ]
    assert names[0] in letters[0].detail
