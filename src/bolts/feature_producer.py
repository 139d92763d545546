"""Producer bolt of the aggregation topology: ``UserFeatures`` messages keyed by user id,
one per user of a publisher's tuple."""

from __future__ import annotations

from typing import Any

from bolts.kafka_producer import KafkaProducerBolt
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_user_features
from botscore.wire.records import PublicationBatch


class FeatureProducerBolt(KafkaProducerBolt):
    component = Component.FEATURE_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.features_topic

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        batch = PublicationBatch.from_values(values)
        names = batch.feature_names
        messages = []
        for user_id, end, row in zip(batch.user_ids, batch.window_end_ms, batch.rows, strict=True):
            features = dict(zip(names, row, strict=True))
            messages.append((user_id.encode(), encode_user_features(user_id, int(end), features)))
        return messages
