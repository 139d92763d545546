"""Producer bolt of the scoring topology: ``ThreatScore`` messages keyed by user id."""

from __future__ import annotations

from typing import Any

from bolts.kafka_producer import KafkaProducerBolt
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord


class ScoreProducerBolt(KafkaProducerBolt):
    component = Component.SCORE_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.scores_topic

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        record = ScoreRecord.from_values(values)
        return [(record.user_id.encode(), encode_threat_score(record))]
