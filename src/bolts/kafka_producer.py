"""Producer bolt base: writes each tuple to a Kafka topic as one protobuf message.

Delivery: a tuple is acked only when Kafka confirmed the write (acks=all), and failed
when the write failed, so Storm replays it from the spout. Kafka's delivery callbacks run
on the producer's I/O thread; pystorm serialises protocol writes with a lock, so acking
from there is safe. Subclasses name the topic and encode a tuple into (key, value).
"""

from __future__ import annotations

from typing import Any, ClassVar

from kafka.errors import KafkaError
from streamparse import Bolt, Tuple

from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.transport.kafka_clients import create_producer
from botscore.vocabulary import Component


# streamparse ships no types: its Bolt is Any to mypy.
class KafkaProducerBolt(Bolt):  # type: ignore[misc]
    auto_ack = False
    auto_anchor = False
    auto_fail = False
    component: ClassVar[Component]

    def target(self, settings: Settings) -> str:
        """The topic to write to."""
        raise NotImplementedError

    def encode(self, values: list[Any]) -> tuple[bytes, bytes]:
        """Key and value of the message for one tuple."""
        raise NotImplementedError

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        self.topic = self.target(settings)
        self.metrics = Metrics(settings.metrics, self.component)
        self.producer = create_producer(
            settings.kafka, client_id=f"botscore-{self.component}-{context.get('taskid', 0)}"
        )

    def process(self, tup: Tuple) -> None:
        key, value = self.encode(tup.values)
        try:
            future = self.producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            self._not_delivered(tup, exc)
            return
        future.add_callback(self._delivered, tup)
        future.add_errback(self._not_delivered, tup)

    def _delivered(self, tup: Tuple, _metadata: Any) -> None:
        self.metrics.count("sent")
        self.ack(tup)

    def _not_delivered(self, tup: Tuple, exc: Exception) -> None:
        self.logger.warning(
            "%s message for %s not delivered, replaying: %s", self.topic, tup.values[0], exc
        )
        self.metrics.count("send_failed")
        self.fail(tup)
