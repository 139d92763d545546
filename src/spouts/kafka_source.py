"""Kafka spout base: reads one topic and emits each message as plain tuple values.

Subclasses say which topic and consumer group (``source``) and how a message becomes
tuple values (``decode``); everything about delivery lives here, once.

Delivery (at least once): each tuple's id is its ``topic/partition/offset``. A partition's
offset is committed only once it and every earlier offset are finished: acked, or written
to the dead-letter topic (``DeadLetterOutbox`` hands an offset back only once Kafka has
its dead letter; a letter that fails is resent with backoff; one too large is truncated to
fit; one Kafka refuses for good is logged once, counted as ``dead_letters_abandoned`` and
finished all the same, so it cannot stall the partition). A crash therefore replays at
most the uncommitted window. A failed tuple is replayed after a growing backoff; after
``kafka.max_attempts`` it is dead-lettered (``retries_exhausted``) rather than retried
forever. Messages that can never be scored are dead-lettered at once with their original
bytes and the reason, so they never stall a partition. Storm's
``topology.max.spout.pending`` bounds what is in flight. After a rebalance the new owner of
a partition resumes from its last commit (at most ``kafka.commit_interval_ms`` old), so a
rebalance neither loses nor duplicates beyond that uncommitted window.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

from kafka import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import TopicPartition
from streamparse import Spout

from botscore.clock import now_ms
from botscore.errors import InvalidMessage
from botscore.metrics import Metrics
from botscore.settings import Settings, require_message_timeouts
from botscore.transport.dead_letter_outbox import DeadLetterOutbox
from botscore.transport.delivery import Backoff, InFlight
from botscore.transport.kafka_clients import (
    commit_positions,
    create_consumer,
    create_producer,
    poll_group,
    wait_for_topic,
)
from botscore.vocabulary import Component, DeadLetterReason
from botscore.wire.dead_letters import DeadLetterRecord
from botscore.wire.records import SourceRef


@dataclass(frozen=True)
class _Read:
    """A message as read, kept until finished so it can be replayed or dead-lettered."""

    values: list[Any] | None
    source: SourceRef
    value: bytes
    key: bytes


# streamparse and kafka-python ship no types: their base classes are Any to mypy.
class KafkaSourceSpout(Spout):  # type: ignore[misc]
    # Names the spout in metrics (botscore.<component>.in, ...), client ids and dead letters.
    component: ClassVar[Component]

    def source(self, settings: Settings) -> tuple[str, str]:
        """The topic to read and the consumer group to read it as."""
        raise NotImplementedError

    def decode(self, value: bytes | None, source: SourceRef) -> list[Any]:
        """Tuple values for one message, or ``InvalidMessage`` to dead-letter it."""
        raise NotImplementedError

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        require_message_timeouts(storm_conf)
        settings = Settings.from_options(storm_conf)
        self.kafka = settings.kafka
        self.topic, self.group = self.source(settings)
        self.metrics = Metrics(settings.metrics, self.component)
        backoff = Backoff(
            self.kafka.replay_backoff_first_ms / 1000,
            self.kafka.replay_backoff_max_ms / 1000,
            self.kafka.max_attempts,
        )
        self.in_flight: InFlight[_Read] = InFlight(backoff)
        # Filled by the consumer's I/O thread during a rebalance, drained here.
        self.revoked: deque[set[tuple[str, int]]] = deque()
        self.last_commit = time.monotonic()
        task = context.get("taskid", 0)
        self.producer = create_producer(
            self.kafka, client_id=f"botscore-{self.component}-dlq-{task}"
        )
        # Its tokens say what a confirmed letter finishes: an exhausted tuple (its id) or a
        # read that was never emitted (its reserved offset).
        self.dead_letters: DeadLetterOutbox[str | SourceRef] = DeadLetterOutbox(
            self.producer, self.kafka.dead_letter_topic, backoff, logger=self.logger
        )
        self.abandoned_reported = 0  # the outbox's abandoned count already sent as a metric
        self.consumer = create_consumer(
            self.kafka, client_id=f"botscore-{self.component}-{task}", group_id=self.group
        )
        deadline = time.monotonic() + 30
        if not wait_for_topic(self.consumer, self.topic, lambda: time.monotonic() > deadline):
            self.logger.error("topic %s still unknown after 30 s; subscribing anyway", self.topic)
        self.consumer.subscribe([self.topic], listener=_ForgetOnRevoke(self))
        self.logger.info("reading %s as group %s", self.topic, self.group)

    def next_tuple(self) -> None:
        self._finish_dead_letters()
        now = time.monotonic()
        for tup_id, read in self.in_flight.due_replays(now):
            self.metrics.count("replayed")
            self.emit(read.values, tup_id=tup_id)
        if len(self.in_flight) < self.kafka.max_in_flight:
            polled = poll_group(self.consumer, timeout_ms=100)
            # A rebalance inside poll() revokes partitions before it hands out records of
            # the new assignment, so forget the old ones before reading the new.
            self._forget_revoked()
            for messages in polled.values():
                for message in messages:
                    self._read(message)
            if not polled and not self.consumer.assignment():
                # poll returns at once without partitions; do not spin a core meanwhile.
                time.sleep(0.1)
        self.commit_finished(force=False)

    def ack(self, tup_id: str) -> None:
        self.in_flight.acked(tup_id)

    def fail(self, tup_id: str) -> None:
        exhausted = self.in_flight.failed(tup_id, time.monotonic())
        if exhausted is not None:
            attempts = self.in_flight.attempts(tup_id)
            self._dead_letter(
                exhausted,
                DeadLetterReason.RETRIES_EXHAUSTED,
                f"failed downstream {attempts} times",
                tup_id,
            )

    def _read(self, message: Any) -> None:
        source = SourceRef(message.topic, message.partition, message.offset)
        read = _Read(None, source, message.value or b"", message.key or b"")
        try:
            values = self.decode(message.value, source)
        except InvalidMessage as exc:
            self.logger.warning("skipping invalid message at %s: %s", source.tuple_id(), exc)
            self.in_flight.reserve((source.topic, source.partition), source.offset)
            self._dead_letter(read, exc.reason, exc.detail, source)
            return
        self.metrics.count("in")
        tup_id = source.tuple_id()
        self.in_flight.emitted(
            tup_id,
            _Read(values, source, read.value, read.key),
            (source.topic, source.partition),
            source.offset,
        )
        self.emit(values, tup_id=tup_id)

    def _dead_letter(self, read: _Read, reason: str, detail: str, token: str | SourceRef) -> None:
        """Set ``read`` aside; ``token`` (tuple id or reserved offset) finishes once on Kafka."""
        letter = DeadLetterRecord(
            read.value, read.key, reason, detail, self.component, read.source, now_ms()
        )
        self.metrics.count("dead_lettered", tags=[f"reason:{reason}"])
        self.dead_letters.add(letter, token)

    def _forget_revoked(self) -> None:
        while self.revoked:
            partitions = self.revoked.popleft()
            self.in_flight.forget_partitions(partitions)
            self.logger.info("partitions revoked: %s", sorted(p for _, p in partitions))

    def _finish_dead_letters(self) -> None:
        for token in self.dead_letters.confirmed():
            if isinstance(token, SourceRef):
                self.in_flight.release((token.topic, token.partition), token.offset)
            else:
                self.in_flight.finish(token)
        abandoned = self.dead_letters.abandoned - self.abandoned_reported
        if abandoned:
            self.metrics.count("dead_letters_abandoned", abandoned)
            self.abandoned_reported += abandoned

    def commit_finished(self, force: bool) -> None:
        """Commit offsets below which everything is finished, at most every interval."""
        now = time.monotonic()
        if not force and now - self.last_commit < self.kafka.commit_interval_ms / 1000:
            return
        self.last_commit = now
        positions = self.in_flight.offsets.pending_commits()
        if not positions:
            return
        try:
            self.consumer.commit(
                commit_positions(positions),
                timeout_ms=2000,  # a blocked spout misses Storm's heartbeats and is killed
            )
        except (CommitFailedError, KafkaError) as exc:
            # Not fatal: the same positions are retried next interval; a rebalance
            # that caused this hands the partitions to a consumer that replays them.
            self.logger.warning("offset commit failed, will retry: %s", exc)
            return
        self.in_flight.offsets.committed(positions)


class _ForgetOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hand revoked partitions to the spout's thread, which forgets them.

    kafka-python 3 calls this on its I/O thread, where a blocking commit raises and the
    spout's state must not be touched. Not committing here costs at most the last commit
    interval of replays: the new owner resumes from the last periodic commit.
    """

    def __init__(self, spout: KafkaSourceSpout) -> None:
        self.spout = spout

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:  # the first join "revokes" nothing
            self.spout.revoked.append({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if not assigned:
            self.spout.logger.warning(
                "no partitions assigned (topic missing, or more spouts than partitions)"
            )
        else:
            partitions = sorted(tp.partition for tp in assigned)
            self.spout.logger.info("partitions assigned: %s", partitions)
