"""The aggregation topology's producer: a publisher tuple becomes a ``UserFeatures``."""

from bolts import kafka_producer
from bolts.feature_producer import FeatureProducerBolt
from botscore.v1.user_features_pb2 import UserFeatures
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
    features = {"requests_1m": 3.0, "error_ratio_1h": 0.25}
    # user_id, window_end_ms, features, version: the DueFeaturesSpout's fields
    bolt.process(storm_tuple("7#user-1", ["user-1", 1_700_000_000_999, features, 7]))
    assert link.commands() == []
    producer.flush()
    assert link.commands() == [("ack", "7#user-1")]

    [(topic, key, value)] = producer.sent
    assert (topic, key) == ("features-t", b"user-1")
    message = UserFeatures.FromString(value)
    assert message.user_id == "user-1"
    assert message.window_end_unix_ms == 1_700_000_000_999
    assert dict(message.features) == features
    assert message.HasField("schema_version") and message.schema_version == 1
