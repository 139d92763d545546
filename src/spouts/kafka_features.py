"""Kafka spout of the scoring topology: ``UserFeatures`` in, batches of feature rows out.

A tuple carries up to ``scoring.batch_size`` users of one partition (``FeatureBatch``), each
decoded straight into a row in the model's feature order. A message without every feature
the model needs can never be scored, so it is dead-lettered here, where its original bytes
are at hand; so is one keyed by anything but its user id, or whose window ends more than
``aggregation.max_event_skew_ms`` ahead of this spout's clock, the most the feature stage
lets a user's latest request be ahead of its own. Delivery: see ``KafkaSourceSpout``.
"""

from __future__ import annotations

from typing import Any

from botscore.clock import now_ms
from botscore.model.registry import read_manifest, resolve_model_dir
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import FeatureRow, decode_feature_row
from botscore.wire.records import FeatureBatch, SourceRef
from spouts.kafka_source import KafkaSourceSpout


class KafkaFeaturesSpout(KafkaSourceSpout):
    component = Component.FEATURES_SPOUT
    outputs = FeatureBatch.FIELDS

    def source(self, settings: Settings) -> tuple[str, str]:
        self.names = read_manifest(resolve_model_dir(settings.scoring.model_dir)).feature_names
        self.max_skew_ms = settings.aggregation.max_event_skew_ms
        return settings.kafka.features_topic, settings.scoring.consumer_group

    def messages_per_tuple(self, settings: Settings) -> int:
        return settings.scoring.batch_size

    def decode(self, value: bytes | None, key: bytes | None, source: SourceRef) -> FeatureRow:
        return decode_feature_row(value, key, self.names, now_ms(), self.max_skew_ms)

    def tuple_values(self, rows: list[FeatureRow], sources: list[SourceRef]) -> list[Any]:
        return FeatureBatch(
            user_ids=[row.user_id for row in rows],
            window_end_ms=[row.window_end_ms for row in rows],
            rows=[row.values for row in rows],
            schema_versions=[row.schema_version for row in rows],
            topic=sources[0].topic,
            partition=sources[0].partition,
            offsets=[source.offset for source in sources],
        ).to_values()
