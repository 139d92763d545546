"""`botscore backfill` as an operator runs it, against the real broker: it scores exactly the
features written in the range, with the model given, into a topic of its own, and leaves the
live scoring group's commits and the broker's groups as they were."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer

from botscore.clock import now_ms
from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import (
    commit_positions,
    connection_config,
    create_consumer,
    create_producer,
)
from botscore.wire.codec import decode_threat_score, encode_user_features
from botscore.wire.records import FeatureBatch

from .harness import (
    ROOT,
    botscore_cli,
    committed_offsets,
    delete_topics,
    fresh_topics,
    read_topic,
    run_topics,
    scoring_group,
)

pytestmark = pytest.mark.integration

MODEL_DIR = ROOT / "models" / "baseline"
HOUR_MS = 3_600_000


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[KafkaSettings]:
    settings = fresh_topics(kafka_settings, prefix="it-bf")
    yield settings
    delete_topics(settings, run_topics(settings))
    backfilled = f"{settings.scores_topic}-backfill"  # made by a backfill that ran
    consumer = KafkaConsumer(**connection_config(settings))
    try:
        made = backfilled in consumer.topics()
    finally:
        consumer.close()
    if made:
        delete_topics(settings, [backfilled])


def _botscore(settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return botscore_cli(settings, "backfill", *args)


def _groups(settings: KafkaSettings) -> set[str]:
    admin = KafkaAdminClient(**connection_config(settings))
    try:
        return {group["group_id"] for group in admin.list_groups()}
    finally:
        admin.close()


def test_backfill_scores_the_range_beside_the_live_group(topics):
    start = now_ms() - 2 * HOUR_MS
    users = list(sample_users(90, seed=41))
    # Thirty users each half an hour apart: before, inside and after the range.
    stamped = [(start + (i // 30) * (HOUR_MS // 2) + i * 1000, u) for i, u in enumerate(users)]
    since, until = start + HOUR_MS // 2, start + HOUR_MS
    messages = [
        (time_ms, user.user_id.encode(), encode_user_features(user.user_id, time_ms, user.features))
        for time_ms, user in stamped
    ]
    messages += [  # what the live pipeline dead-lettered, inside the range
        (since + 1000, b"u-garbage", b"\x07garbage"),
        (since + 1000, b"u-short", encode_user_features("u-short", 1, {})),
    ]
    producer = create_producer(topics, client_id="it-backfill")
    placed = {
        key.decode(): producer.send(topics.features_topic, key=key, value=value, timestamp_ms=t)
        for t, key, value in sorted(messages)  # in time order, as an edge writes them
    }
    producer.flush()
    producer.close()
    inside = {u.user_id: u for t, u in stamped if since <= t < until}
    assert len(inside) == 30
    sources = {uid: (f.get().partition, f.get().offset) for uid, f in placed.items()}

    # The live group has read part of the topic.
    group = scoring_group(topics)
    live = create_consumer(topics, client_id="it-live", group_id=group)
    live.commit(commit_positions({(topics.features_topic, p): 3 for p in range(4)}))
    live.close()
    commits, groups = committed_offsets(topics, group, topics.features_topic), _groups(topics)

    done = _botscore(topics, "--since", str(since), "--until", str(until))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "32 messages read, 30 scores written" in done.stdout
    assert "not scored: missing_feature 1, undecodable 1" in done.stdout

    model = load_model(MODEL_DIR)
    names = model.manifest.feature_names
    scores = [
        decode_threat_score(r.value) for r in read_topic(topics, f"{topics.scores_topic}-backfill")
    ]
    assert sorted(s.user_id for s in scores) == sorted(inside)
    for score in scores:
        user = inside[score.user_id]
        partition, offset = sources[score.user_id]
        alone = FeatureBatch(
            [user.user_id],
            [score.feature_time_ms],
            [[user.features[n] for n in names]],
            [1],
            topics.features_topic,
            partition,
            [offset],
        )
        [expected] = score_batch(model, alone, score.scored_time_ms).records()
        assert score == expected
    assert committed_offsets(topics, group, topics.features_topic) == commits
    assert _groups(topics) == groups


def test_backfill_refuses_a_range_that_ends_before_it_starts(topics):
    done = _botscore(topics, "--since", "2026-12-04T10:00", "--until", "2026-12-04T09:00")
    assert done.returncode == 2
    assert "botscore: --until (2026-12-04T09:00:00+00:00) must be after --since" in done.stderr
    refused = _botscore(topics, "--since", "yesterday")
    assert refused.returncode == 2 and "ISO 8601" in refused.stderr
