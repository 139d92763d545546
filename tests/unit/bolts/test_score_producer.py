"""The scoring topology's producer: a classifier's score tuple becomes a ``ThreatScore``."""

from bolts import kafka_producer
from bolts.score_producer import ScoreProducerBolt
from botscore.v1.threat_score_pb2 import Decision, ThreatScore
from botscore.wire.records import ScoreRecord, SourceRef
from tests.unit.storm_fakes import start, storm_tuple
from tests.unit.transport.kafka_fakes import FakeProducer


def test_a_score_tuple_goes_to_the_scores_topic_keyed_by_user_and_is_acked_once_sent(
    monkeypatch,
):
    producer = FakeProducer()
    monkeypatch.setattr(kafka_producer, "create_producer", lambda settings, client_id: producer)
    bolt, link = start(
        ScoreProducerBolt,
        {"botscore.kafka.scores_topic": "scores-t", "botscore.kafka.features_topic": "features-t"},
        monkeypatch,
    )
    score = ScoreRecord(
        user_id="user-ä1",
        score=0.93,
        decision="block",
        model_name="baseline",
        model_version="2",
        feature_time_ms=1_700_000_000_123,
        scored_time_ms=1_700_000_000_456,
        source=SourceRef("features-t", 2, 41),
    )
    bolt.process(storm_tuple("s1", score.to_values()))
    assert link.commands() == []
    producer.flush()
    assert link.commands() == [("ack", "s1")]

    [(topic, key, value)] = producer.sent
    assert (topic, key) == ("scores-t", "user-ä1".encode())
    message = ThreatScore.FromString(value)
    assert message.user_id == "user-ä1"
    assert message.score == 0.93
    assert message.decision == Decision.DECISION_BLOCK
    assert (message.model_name, message.model_version) == ("baseline", "2")
    assert message.feature_time_unix_ms == 1_700_000_000_123
    assert message.scored_time_unix_ms == 1_700_000_000_456
    assert (message.source.topic, message.source.partition, message.source.offset) == (
        "features-t",
        2,
        41,
    )
