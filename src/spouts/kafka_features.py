"""Kafka spout: reads ``UserFeatures`` messages and emits them as plain tuple values.

Delivery: each tuple's id is its ``topic/partition/offset``. An offset is committed only
once it and every offset before it in its partition are acked (or were bad input that was
logged and skipped), so a crash replays at most the uncommitted window and loses nothing.
A failed tuple is emitted again. Storm's ``topology.max.spout.pending`` bounds what is in
flight.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from streamparse import Spout

from botscore.codec import decode_user_features
from botscore.errors import InvalidMessage
from botscore.kafka_clients import create_consumer
from botscore.metrics import Metrics
from botscore.offsets import OffsetTracker
from botscore.records import FeatureRecord, SourceRef
from botscore.settings import Settings


class KafkaFeaturesSpout(Spout):
    outputs = FeatureRecord.FIELDS

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        self.kafka = settings.kafka
        self.metrics = Metrics(settings.metrics, "spout")
        self.tracker = OffsetTracker()
        self.pending: dict[str, FeatureRecord] = {}
        self.last_commit = time.monotonic()
        self.consumer = create_consumer(
            self.kafka, client_id=f"botscore-spout-{context.get('taskid', 0)}"
        )
        self.consumer.subscribe([self.kafka.features_topic], listener=_CommitOnRevoke(self))
        self.logger.info(
            "reading %s as group %s", self.kafka.features_topic, self.kafka.consumer_group
        )

    def next_tuple(self) -> None:
        if self.tracker.in_flight() < self.kafka.max_in_flight:
            polled = self.consumer.poll(timeout_ms=100)
            for messages in polled.values():
                for message in messages:
                    self._emit_message(message)
            if not polled and not self.consumer.assignment():
                # poll returns at once without partitions; do not spin a core meanwhile.
                time.sleep(0.1)
        self.commit_done(force=False)

    def ack(self, tup_id: str) -> None:
        record = self.pending.pop(tup_id, None)
        if record is not None:
            self.tracker.done((record.source.topic, record.source.partition), record.source.offset)

    def fail(self, tup_id: str) -> None:
        record = self.pending.get(tup_id)
        if record is not None:
            self.metrics.count("replayed")
            self.emit(record.to_values(), tup_id=tup_id)

    def _emit_message(self, message: Any) -> None:
        source = SourceRef(message.topic, message.partition, message.offset)
        self.tracker.emitted((source.topic, source.partition), source.offset)
        try:
            record = decode_user_features(message.value, source)
        except InvalidMessage as exc:
            self.logger.warning("skipping invalid message at %s: %s", source.tuple_id(), exc)
            self.metrics.count("invalid", tags=[f"reason:{exc.reason}"])
            self.tracker.done((source.topic, source.partition), source.offset)
            return
        self.metrics.count("in")
        self.pending[source.tuple_id()] = record
        self.emit(record.to_values(), tup_id=source.tuple_id())

    def commit_done(self, force: bool) -> None:
        """Commit offsets below which everything is done, at most every interval."""
        now = time.monotonic()
        if not force and now - self.last_commit < self.kafka.commit_interval_ms / 1000:
            return
        self.last_commit = now
        positions = self.tracker.pending_commits()
        if not positions:
            return
        try:
            self.consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(pos, "", -1)
                    for (t, p), pos in positions.items()
                }
            )
        except (CommitFailedError, KafkaError) as exc:
            # Not fatal: the same positions are retried next interval; a rebalance
            # that caused this hands the partitions to a consumer that replays them.
            self.logger.warning("offset commit failed, will retry: %s", exc)
            return
        self.tracker.committed(positions)


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Commit what is done before partitions move, then forget them."""

    def __init__(self, spout: KafkaFeaturesSpout) -> None:
        self.spout = spout

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.spout.commit_done(force=True)
        for tp in revoked:
            self.spout.tracker.forget((tp.topic, tp.partition))
        lost = {(tp.topic, tp.partition) for tp in revoked}
        self.spout.pending = {
            k: r
            for k, r in self.spout.pending.items()
            if (r.source.topic, r.source.partition) not in lost
        }

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            self.spout.logger.info(
                "assigned partitions %s", sorted(tp.partition for tp in assigned)
            )
        else:
            self.spout.logger.warning(
                "no partitions assigned (topic missing, or more spouts than partitions)"
            )
