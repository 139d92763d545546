"""The aggregation topology's producer: each user of a publisher tuple becomes a
``UserFeatures``, and the tuple is acked once Kafka has them all."""

from bolts import kafka_producer
from bolts.feature_producer import FeatureProducerBolt
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.wire.records import PublicationBatch
from tests.unit.storm_fakes import start, storm_tuple
from tests.unit.transport.kafka_fakes import FakeProducer


def test_a_publisher_tuple_goes_to_the_features_topic_keyed_by_user_and_is_acked_once_sent(
    monkeypatch,
):
    producer = FakeProducer()
    monkeypatch.setattr(kafka_producer, "create_producer", lambda settings, client_id: producer)
    bolt, link = start(
        FeatureProducerBolt,
        {"botscore.kafka.scores_topic": "scores-t", "botscore.kafka.features_topic": "features-t"},
        monkeypatch,
    )
    names = ["requests_1m", "error_ratio_1h"]
    batch = PublicationBatch(
        publisher=0,
        user_ids=["user-1", "user-2"],
        window_end_ms=[1_700_000_000_999, 1_700_000_001_000],
        feature_names=names,
        rows=[[3.0, 0.25], [0.0, 1.0]],
    )
    bolt.process(storm_tuple("p7", batch.to_values()))
    assert link.commands() == []
    producer.flush()
    assert link.commands() == [("ack", "p7")]

    assert [(topic, key) for topic, key, _ in producer.sent] == [
        ("features-t", b"user-1"),
        ("features-t", b"user-2"),
    ]
    messages = [UserFeatures.FromString(value) for _, _, value in producer.sent]
    assert [m.user_id for m in messages] == batch.user_ids
    assert [m.window_end_unix_ms for m in messages] == batch.window_end_ms
    assert [dict(m.features) for m in messages] == [
        dict(zip(names, row, strict=True)) for row in batch.rows
    ]
    assert all(m.HasField("schema_version") and m.schema_version == 1 for m in messages)
