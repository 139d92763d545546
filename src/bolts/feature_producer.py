"""Producer bolt of the aggregation topology: ``UserFeatures`` messages keyed by user id."""

from __future__ import annotations

from typing import Any

from bolts.kafka_producer import KafkaProducerBolt
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_user_features


class FeatureProducerBolt(KafkaProducerBolt):
    component = Component.FEATURE_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.features_topic

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        user_id, window_end_ms, features, _version = values
        return [(user_id.encode(), encode_user_features(user_id, int(window_end_ms), features))]
