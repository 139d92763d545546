"""Kafka spout of the scoring topology: ``UserFeatures`` in, feature records out.

A message without every feature the model needs can never be scored, so it is
dead-lettered here, where its original bytes are at hand. Delivery: see ``KafkaSourceSpout``.
"""

from __future__ import annotations

from typing import Any

from botscore.model.registry import read_manifest, resolve_model_dir
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import decode_user_features
from botscore.wire.records import FeatureRecord, SourceRef
from spouts.kafka_source import KafkaSourceSpout


class KafkaFeaturesSpout(KafkaSourceSpout):
    component = Component.FEATURES_SPOUT
    outputs = FeatureRecord.FIELDS

    def source(self, settings: Settings) -> tuple[str, str]:
        self.required = read_manifest(resolve_model_dir(settings.scoring.model_dir)).feature_names
        return settings.kafka.features_topic, settings.scoring.consumer_group

    def decode(self, value: bytes | None, key: bytes | None, source: SourceRef) -> list[Any]:
        return decode_user_features(value, source, self.required).to_values()

    def tuple_values(self, rows: list[list[Any]], sources: list[SourceRef]) -> list[Any]:
        [values] = rows  # one user per tuple
        return values
