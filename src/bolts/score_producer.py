"""Producer bolt: writes ``ThreatScore`` messages to Kafka, keyed by user id.

Delivery: a tuple is acked only when Kafka confirmed the write (acks=all), and failed
when the write failed, so Storm replays it from the spout. Kafka's delivery callbacks run
on the producer's I/O thread; pystorm serialises protocol writes with a lock, so acking
from there is safe.
"""

from __future__ import annotations

from typing import Any

from kafka.errors import KafkaError
from streamparse import Bolt, Tuple

from botscore.codec import encode_threat_score
from botscore.kafka_clients import create_producer
from botscore.metrics import Metrics
from botscore.records import ScoreRecord
from botscore.settings import Settings


class ScoreProducerBolt(Bolt):
    auto_ack = False
    auto_anchor = False
    auto_fail = False

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        self.topic = settings.kafka.scores_topic
        self.metrics = Metrics(settings.metrics, "producer")
        self.producer = create_producer(
            settings.kafka, client_id=f"botscore-producer-{context.get('taskid', 0)}"
        )

    def process(self, tup: Tuple) -> None:
        record = ScoreRecord.from_values(tup.values)
        try:
            future = self.producer.send(
                self.topic, key=record.user_id.encode(), value=encode_threat_score(record)
            )
        except KafkaError as exc:
            self._not_delivered(tup, exc)
            return
        future.add_callback(self._delivered, tup)
        future.add_errback(self._not_delivered, tup)

    def _delivered(self, tup: Tuple, _metadata: Any) -> None:
        self.metrics.count("sent")
        self.ack(tup)

    def _not_delivered(self, tup: Tuple, exc: Exception) -> None:
        self.logger.warning("score for %s not delivered, replaying: %s", tup.values[0], exc)
        self.metrics.count("send_failed")
        self.fail(tup)
