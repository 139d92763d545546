"""Producer bolt base: writes each tuple to a Kafka topic as protobuf messages.

Delivery: a tuple becomes one or more messages (``encode``); it is acked once, when Kafka
confirmed every one of them (acks=all), or failed once, at the first that failed, so Storm
replays it from the spout (messages already written are then written again: duplicates,
never losses). Kafka's delivery callbacks run on the producer's I/O thread; a lock keeps
each tuple's count, and pystorm serialises protocol writes with its own lock, so acking
from there is safe. Subclasses name the topic, encode a tuple into (key, value) pairs and
may name the partition (``partition``; None lets the key decide).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from kafka.errors import KafkaError
from streamparse import Tuple

from botscore.metrics import Metrics, storm_tags
from botscore.multilang_pipe import Bolt
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings
from botscore.transport.kafka_clients import create_producer
from botscore.vocabulary import Component


class KafkaProducerBolt(Bolt):
    auto_ack = False
    auto_anchor = False
    auto_fail = False
    component: ClassVar[Component]

    def target(self, settings: Settings) -> str:
        """The topic to write to."""
        raise NotImplementedError

    def encode(self, values: list[Any]) -> list[tuple[bytes, bytes]]:
        """Key and value of each message for one tuple."""
        raise NotImplementedError

    def partition(self, values: list[Any]) -> int | None:
        """The partition every message of the tuple goes to; None: each key decides."""
        return None

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf, role=self.component.role)
        self.topic = self.target(settings)
        self.metrics = Metrics(
            settings.metrics, self.component, tags=storm_tags(storm_conf, context)
        )
        tag_logs(self.logger, self.metrics.tags)
        self.producer = create_producer(
            settings.kafka, client_id=f"botscore-{self.component}-{context.get('taskid', 0)}"
        )

    def process(self, tup: Tuple) -> None:
        try:
            messages = self.encode(tup.values)
            partition = self.partition(tup.values)
        except Exception:
            self.logger.exception("cannot encode tuple %s; failing it for a replay", tup.id)
            self.fail(tup)
            return
        if not messages:
            self._delivered(tup, 0)
            return
        delivery = _Delivery(self, tup, len(messages))
        for key, value in messages:
            try:
                future = self.producer.send(self.topic, key=key, value=value, partition=partition)
            except (KafkaError, ValueError) as exc:  # ValueError: a partition it does not know
                delivery.failed(exc)
                return
            future.add_callback(delivery.confirmed)
            future.add_errback(delivery.failed)

    def _delivered(self, tup: Tuple, messages: int) -> None:
        self.metrics.count("sent", messages)
        self.ack(tup)

    def _not_delivered(self, tup: Tuple, exc: Exception) -> None:
        self.logger.warning(
            "%s message of %s not delivered, replaying: %s", self.topic, tup.id, exc
        )
        self.metrics.count("send_failed")
        self.fail(tup)


class _Delivery:
    """One tuple's messages on their way: ack after the last confirmation, or fail at the
    first failure, exactly once whichever thread reports it."""

    def __init__(self, bolt: KafkaProducerBolt, tup: Tuple, messages: int) -> None:
        self.bolt = bolt
        self.tup = tup
        self.messages = messages
        self.unconfirmed = messages
        self.answered = False
        self.lock = threading.Lock()

    def confirmed(self, _metadata: Any) -> None:
        with self.lock:
            self.unconfirmed -= 1
            if self.unconfirmed or not self._answer():
                return
        self.bolt._delivered(self.tup, self.messages)

    def failed(self, exc: Exception) -> None:
        with self.lock:
            if not self._answer():
                return
        self.bolt._not_delivered(self.tup, exc)

    def _answer(self) -> bool:
        """Whether this is the tuple's first answer (call with the lock held)."""
        if self.answered:
            return False
        self.answered = True
        return True
