"""Producer bolts of the scoring topology: one ``ThreatScore`` per user, keyed by user id,
the champion's to the scores topic and a challenger's to the shadow scores topic.

When the features and scores topics have as many partitions, a batch's scores go to the
partition its features came from: the one the user id's key maps to (both topics are
keyed by user id), without hashing each key here.
"""

from __future__ import annotations

from typing import Any

from kafka.errors import KafkaError
from streamparse import Tuple

from bolts.kafka_producer import KafkaProducerBolt
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreBatch

_PARTITION = ScoreBatch.FIELDS.index("partition")


class ScoreProducerBolt(KafkaProducerBolt):
    component = Component.SCORE_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.scores_topic

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        super().initialize(storm_conf, context)
        features_topic = Settings.from_options(storm_conf).kafka.features_topic
        try:
            counts = {len(self.producer.partitions_for(t)) for t in (features_topic, self.topic)}
        except KafkaError as exc:
            self.logger.warning("partition counts unknown, keys decide: %s", exc)
            counts = set()
        self.same_partitions = len(counts) == 1
        self.logger.info(
            "scores go to %s",
            "their features' partition" if self.same_partitions else "the partition of their key",
        )

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        return [
            (record.user_id.encode(), encode_threat_score(record))
            for record in ScoreBatch.from_values(values).records()
        ]

    def partition(self, values: list[Any]) -> int | None:
        return int(values[_PARTITION]) if self.same_partitions else None


class ShadowProducerBolt(ScoreProducerBolt):
    """The challenger's scores (the classifier's ``shadow`` stream), which no edge reads.

    A send that fails is logged, counted and acked, never failed: the shadow tuple is
    anchored to the champion's input, and failing it would replay that input, the
    champion's scores with it, until the input was dead-lettered. When the champion's send
    fails too (the broker is away), its replay scores the challenger again.
    """

    component = Component.SHADOW_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.shadow_scores_topic

    def _not_delivered(self, tup: Tuple, exc: Exception) -> None:
        self.logger.warning(
            "%s message of %s not delivered, its shadow scores are lost: %s",
            self.topic,
            tup.id,
            exc,
        )
        self.metrics.count("send_failed")
        self.ack(tup)
