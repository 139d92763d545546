"""The scoring topology's producer: a classifier's batch becomes one ``ThreatScore`` per user."""

import dataclasses

import pytest
from kafka.errors import MessageSizeTooLargeError

from bolts import kafka_producer, score_producer
from bolts.score_producer import ScoreProducerBolt, ShadowProducerBolt
from botscore.v1.threat_score_pb2 import Decision, ThreatScore
from botscore.vocabulary import Component
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreBatch
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.storm_fakes import start, storm_tuple
from tests.unit.transport.kafka_fakes import FakeProducer

SCORES = ScoreBatch(
    user_ids=["user-ä1", "user-2"],
    scores=[0.93, 0.1],
    decisions=["block", "allow"],
    model_name="baseline",
    model_version="2",
    feature_times_ms=[1_700_000_000_123, 1_700_000_000_124],
    scored_time_ms=1_700_000_000_456,
    topic="features-t",
    partition=2,
    offsets=[41, 43],
)


def _bolt(monkeypatch, partitions):
    producer = FakeProducer(partitions=partitions)
    monkeypatch.setattr(kafka_producer, "create_producer", lambda settings, client_id: producer)
    bolt, link = start(
        ScoreProducerBolt,
        {"botscore.kafka.scores_topic": "scores-t", "botscore.kafka.features_topic": "features-t"},
        monkeypatch,
    )
    return bolt, link, producer


def test_each_user_of_a_batch_becomes_a_threat_score_keyed_by_user_and_the_tuple_is_acked(
    monkeypatch,
):
    bolt, link, producer = _bolt(monkeypatch, {"features-t": {0, 1, 2}, "scores-t": {0, 1, 2}})
    bolt.process(storm_tuple("features-t/2/41-43", SCORES.to_values()))
    assert link.commands() == []
    producer.flush()
    assert link.commands() == [("ack", "features-t/2/41-43")]

    assert [(topic, key) for topic, key, _ in producer.sent] == [
        ("scores-t", "user-ä1".encode()),
        ("scores-t", b"user-2"),
    ]
    first, second = (ThreatScore.FromString(value) for _, _, value in producer.sent)
    assert first.user_id == "user-ä1"
    assert first.score == 0.93
    assert first.decision == Decision.DECISION_BLOCK
    assert (first.model_name, first.model_version) == ("baseline", "2")
    assert first.feature_time_unix_ms == 1_700_000_000_123
    assert first.scored_time_unix_ms == 1_700_000_000_456
    assert (first.source.topic, first.source.partition, first.source.offset) == (
        "features-t",
        2,
        41,
    )
    assert (second.user_id, second.decision, second.source.offset) == (
        "user-2",
        Decision.DECISION_ALLOW,
        43,
    )


def test_scores_go_to_their_features_partition_when_the_topics_have_as_many(monkeypatch):
    bolt, _, producer = _bolt(monkeypatch, {"features-t": {0, 1, 2}, "scores-t": {0, 1, 2}})
    bolt.process(storm_tuple("b", SCORES.to_values()))
    assert producer.sent_partitions == [2, 2]


@pytest.mark.parametrize(
    "partitions",
    [
        pytest.param({"features-t": {0, 1, 2}, "scores-t": {0, 1, 2, 3}}, id="different-counts"),
        pytest.param({"features-t": {0, 1, 2}}, id="scores-topic-unknown"),
    ],
)
def test_otherwise_the_key_decides(monkeypatch, partitions):
    bolt, _, producer = _bolt(monkeypatch, partitions)
    bolt.process(storm_tuple("b", SCORES.to_values()))
    assert producer.sent_partitions == [None, None]


def test_topics_that_grow_while_running_are_followed_and_a_new_partition_goes_by_key(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(score_producer.time, "monotonic", lambda: clock[0])
    bolt, link, producer = _bolt(monkeypatch, {"features-t": {0, 1, 2}, "scores-t": {0, 1, 2}})
    producer.partitions["features-t"] = {0, 1, 2, 3, 4, 5}  # grown; the scores topic not yet
    batch = dataclasses.replace(SCORES, partition=5)
    bolt.process(storm_tuple("b5", batch.to_values()))
    bolt.process(storm_tuple("b2", SCORES.to_values()))
    assert producer.sent_partitions == [None, None, 2, 2]  # within 30 s: the old counts
    clock[0] += 31
    bolt.process(storm_tuple("b2", SCORES.to_values()))
    assert producer.sent_partitions[4:] == [None, None]  # counts differ now: keys decide
    producer.partitions["scores-t"] = {0, 1, 2, 3, 4, 5}
    clock[0] += 31
    bolt.process(storm_tuple("b5", batch.to_values()))
    assert producer.sent_partitions[6:] == [5, 5]
    producer.flush()
    assert [c for c, _ in link.commands()] == ["ack"] * 4


def _shadow_bolt(monkeypatch):
    producer = FakeProducer(partitions={"features-t": {0, 1, 2}, "shadow-t": {0, 1, 2}})
    monkeypatch.setattr(kafka_producer, "create_producer", lambda settings, client_id: producer)
    bolt, link = start(
        ShadowProducerBolt,
        {
            "botscore.kafka.scores_topic": "scores-t",
            "botscore.kafka.shadow_scores_topic": "shadow-t",
            "botscore.kafka.features_topic": "features-t",
        },
        monkeypatch,
    )
    return bolt, link, producer


def test_the_shadow_producer_writes_a_challengers_scores_to_the_shadow_topic(monkeypatch):
    bolt, link, producer = _shadow_bolt(monkeypatch)
    bolt.process(storm_tuple("features-t/2/41-43", SCORES.to_values()))
    producer.flush()
    assert link.commands() == [("ack", "features-t/2/41-43")]
    assert [(topic, key) for topic, key, _ in producer.sent] == [
        ("shadow-t", "user-ä1".encode()),
        ("shadow-t", b"user-2"),
    ]
    assert producer.sent_partitions == [2, 2]
    assert bolt.metrics.component == "shadow_producer"


def test_a_shadow_send_kafka_refuses_is_counted_and_acked_not_replayed(monkeypatch):
    """Failing it would replay the champion's input with it (the tuple is anchored there)."""
    bolt, link, producer = _shadow_bolt(monkeypatch)
    bolt.metrics = RecordingMetrics(Component.SHADOW_PRODUCER)
    producer.fail[encode_threat_score(list(SCORES.records())[1])] = MessageSizeTooLargeError(
        "too big"
    )
    bolt.process(storm_tuple("features-t/2/41-43", SCORES.to_values()))
    producer.flush()
    assert link.commands() == [("ack", "features-t/2/41-43")]
    assert bolt.metrics.counted("send_failed") == 1
