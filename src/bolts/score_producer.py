"""Producer bolts of the scoring topology: one ``ThreatScore`` per user, keyed by user id,
the champion's to the scores topic and a challenger's to the shadow scores topic.

When the features and scores topics have as many partitions, a batch's scores go to the
partition its features came from: the one the user id's key maps to (both topics are
keyed by user id), without hashing each key here. Topics can grow while the topology
runs, so the counts are checked again every ``_RECHECK_S``, and a batch from a partition
the scores topic is not known to have goes by its keys instead of failing its sends.
"""

from __future__ import annotations

import time
from typing import Any

from kafka.errors import KafkaError
from streamparse import Tuple

from bolts.kafka_producer import KafkaProducerBolt
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreBatch

_PARTITION = ScoreBatch.FIELDS.index("partition")
# Seconds between two checks of the topics' partition counts (the producer's cached metadata).
_RECHECK_S = 30.0


class ScoreProducerBolt(KafkaProducerBolt):
    component = Component.SCORE_PRODUCER

    def target(self, settings: Settings) -> str:
        return settings.kafka.scores_topic

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        super().initialize(storm_conf, context)
        settings = Settings.from_options(storm_conf, role=self.component.role)
        self.features_topic = settings.kafka.features_topic
        # The features partitions whose batches keep their number: every partition of the
        # scores topic when both topics have as many, else none (the keys decide).
        self.pinned: frozenset[int] | None = None
        self.checked = 0.0
        self._check_partitions()

    def _check_partitions(self) -> None:
        self.checked = time.monotonic()
        try:
            features, scores = (
                self.producer.partitions_for(t) for t in (self.features_topic, self.topic)
            )
        except KafkaError as exc:
            self.logger.warning("partition counts unknown, keys decide: %s", exc)
            features, scores = set(), {-1}
        pinned = frozenset(scores) if len(features) == len(scores) else frozenset()
        if pinned != self.pinned:
            self.logger.info(
                "scores go to %s",
                "their features' partition" if pinned else "the partition of their key",
            )
            self.pinned = pinned

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        return [
            (record.user_id.encode(), encode_threat_score(record))
            for record in ScoreBatch.from_values(values).records()
        ]

    def partition(self, values: list[Any]) -> int | None:
        if time.monotonic() - self.checked > _RECHECK_S:
            self._check_partitions()
        partition = int(values[_PARTITION])
        return partition if self.pinned and partition in self.pinned else None


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
