"""In-memory stand-ins for kafka-python's consumer and producer, for tests without a broker.

``FakeConsumer`` holds each partition's log as a list (offset = index), keeps positions,
committed offsets and a group's ``auto_offset_reset`` of "earliest" the way KafkaConsumer
does for an assigned consumer, and records what was done to it in ``events`` (shared with
a ``FakeProducer`` to check the order of sends, flushes and commits).

``FakeProducer.send`` returns a kafka-python ``Future`` that ``flush`` (or ``settle``, for
the oldest few) settles, as Kafka answering: a success, or the error ``fail`` names for
the sent value. A value named in ``refuse`` makes ``send`` itself raise, as
KafkaProducer.send does when the broker is unknown or the record too large.
``partitions_for`` answers from ``partitions`` (topic -> partition numbers).

``FakeGroupMember`` is a consumer-group member for the Kafka spout: its assignment and fetch
positions live in kafka-python's own ``SubscriptionState``, and ``rebalance`` drives that
state and the rebalance listener as kafka-python 3.0.12's ``ConsumerCoordinator`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import SubscriptionState
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.future import Future
from kafka.protocol.consumer import OffsetResetStrategy
from kafka.structs import OffsetAndMetadata, OffsetAndTimestamp


def record(
    topic: str,
    partition: int,
    offset: int,
    value: bytes,
    key: bytes | None = None,
    timestamp: int = 0,
):
    return ConsumerRecord(
        topic, partition, -1, offset, timestamp, 0, key, value, [], None, -1, len(value), -1
    )


class FakeConsumer:
    def __init__(
        self,
        logs: dict[str, dict[int, list[bytes]]] | None = None,
        *,
        committed: dict[TopicPartition, int] | None = None,
        max_per_poll: int = 2,
        events: list[tuple[Any, ...]] | None = None,
        on_poll: Callable[[FakeConsumer], None] | None = None,
    ) -> None:
        self.logs: dict[TopicPartition, list[Any]] = {}
        for topic, partitions in (logs or {}).items():
            for partition, values in partitions.items():
                self.logs.setdefault(TopicPartition(topic, partition), [])
                for value in values:
                    self.append(topic, partition, value)
        self.committed = dict(committed or {})
        self.max_per_poll = max_per_poll
        self.events = events if events is not None else []
        self.on_poll = on_poll
        self.assigned: list[TopicPartition] = []
        self.positions: dict[TopicPartition, int] = {}
        self.polls = 0
        self.closed = False

    def append(
        self,
        topic: str,
        partition: int,
        value: bytes,
        key: bytes | None = None,
        timestamp: int = 0,
    ) -> None:
        log = self.logs.setdefault(TopicPartition(topic, partition), [])
        log.append(record(topic, partition, len(log), value, key, timestamp))

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.logs if tp.topic == topic}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("assign", list(partitions)))
        self.assigned = list(partitions)
        self.positions = {}

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.events.append(("seek_to_beginning", list(partitions)))
        for tp in partitions:
            self.positions[tp] = 0

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        self.events.append(("seek_to_end", list(partitions)))
        for tp in partitions:
            self.positions[tp] = len(self.logs[tp])

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in partitions}

    def offsets_for_times(
        self, timestamps: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first record at or after each time, by the records' timestamps."""
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, time_ms in timestamps.items():
            later = [r for r in self.logs[tp] if r.timestamp >= time_ms]
            found[tp] = (
                OffsetAndTimestamp(later[0].offset, later[0].timestamp, -1) if later else None
            )
        return found

    def position(self, tp: TopicPartition) -> int:
        if tp not in self.positions:
            self.positions[tp] = self.committed.get(tp, 0)
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.events.append(("seek", tp, offset))
        self.positions[tp] = offset

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        if self.on_poll is not None:
            self.on_poll(self)
        batch: dict[TopicPartition, list[Any]] = {}
        for tp in self.assigned:
            start = self.position(tp)
            records = self.logs[tp][start : start + self.max_per_poll]
            if records:
                batch[tp] = records
                self.positions[tp] = start + len(records)
        return batch

    def __iter__(self) -> Iterator[Any]:
        while True:
            polled = self.poll()
            if not polled:
                return
            for records in polled.values():
                yield from records

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.events.append(("commit", {tp: meta.offset for tp, meta in offsets.items()}))
        self.committed.update({tp: meta.offset for tp, meta in offsets.items()})

    def close(self, **_: Any) -> None:
        self.closed = True


class FakeCoordinator:
    """What ``poll_group`` reads of a coordinator; by default no rejoin is under way.

    ``rejoining`` without ``need_rejoin`` is a rejoin kafka-python abandoned.
    """

    def __init__(self, rejoining: bool = False, need_rejoin: bool = False) -> None:
        self.rejoining = rejoining
        self._need_rejoin = need_rejoin
        self.rejoins_requested = 0

    def need_rejoin(self) -> bool:
        return self._need_rejoin

    def request_rejoin(self) -> None:
        self.rejoins_requested += 1


class FakeFetcher:
    """What ``poll_group`` reads of a fetcher: its in-line slot and its parked records."""

    def __init__(self, inline: object = None, parked: dict[Any, object] | None = None) -> None:
        self._next_partition_records = inline
        self._paused_partition_records = parked if parked is not None else {}


class FakeGroupMember:
    """One member of a consumer group, reading a topic whose partitions are lists.

    ``committed`` is the group's committed offsets (share one dict between members). Like
    ``KafkaConsumer.poll``, ``poll`` first gives each partition without a position the
    group's committed offset, or the reset policy's; then it returns up to
    ``max_per_poll`` records per fetchable partition and moves its position past them.
    ``rebalance`` and ``lose`` are what a group rejoin does to the member: the listener is
    called on the caller's thread here, on kafka-python's I/O thread in a real consumer.
    ``refuse_committed`` makes ``committed`` raise, as on a coordinator timeout;
    ``refuse_end_offsets`` makes ``end_offsets`` raise, as on a broker timeout.
    ``log_start`` is each partition's first offset still held (retention deleted those
    below); a position outside the log is reset by the consumer's policy, as kafka-python
    does on OFFSET_OUT_OF_RANGE, and ``recreate`` replaces a partition's log with a new one.
    """

    def __init__(
        self,
        logs: dict[TopicPartition, list[bytes]],
        *,
        committed: dict[TopicPartition, int] | None = None,
        auto_offset_reset: str = "earliest",
        max_per_poll: int = 2,
        on_poll: Callable[[FakeGroupMember], None] | None = None,
    ) -> None:
        self.logs = {
            tp: [record(tp.topic, tp.partition, offset, v) for offset, v in enumerate(values)]
            for tp, values in logs.items()
        }
        self.group_committed = committed if committed is not None else {}
        self.subscription = SubscriptionState(auto_offset_reset)
        self.max_per_poll = max_per_poll
        self.on_poll = on_poll
        self.commits: list[dict[TopicPartition, int]] = []
        self.commit_metadata: dict[TopicPartition, str] = {}  # of the group's last commits
        self.refuse_committed: KafkaError | None = None
        self.refuse_end_offsets: KafkaError | None = None
        self.log_start: dict[TopicPartition, int] = {}
        self._coordinator = FakeCoordinator()
        self._fetcher = FakeFetcher()

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.logs if tp.topic == topic}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.subscription.subscribe(topics=topics, listener=listener)

    def assignment(self) -> set[TopicPartition]:
        return self.subscription.assigned_partitions()

    def position(self, tp: TopicPartition) -> int | None:
        position = self.subscription.assignment[tp].position
        return None if position is None else position.offset

    def rebalance(self, assigned: list[TopicPartition]) -> None:
        """An eager rebalance: every partition revoked, then ``assigned`` handed out.

        ``assign_from_subscribed`` keeps the state, fetch position included, of a partition
        handed back to this member.
        """
        listener = self.subscription.rebalance_listener
        revoked = self.subscription.assigned_partitions()
        self.subscription.mark_pending_revocation(revoked)
        listener.on_partitions_revoked(revoked)
        self.subscription.assign_from_subscribed(assigned)
        listener.on_partitions_assigned(self.subscription.assigned_partitions())

    def lose(self) -> None:
        """Evicted from the group (a missed heartbeat): every partition lost at once."""
        lost = self.subscription.assigned_partitions()
        self.subscription.mark_pending_revocation(lost)
        self.subscription.rebalance_listener.on_partitions_lost(lost)
        self.subscription.assign_from_subscribed([])

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        if self.on_poll is not None:
            self.on_poll(self)
        for tp in self.subscription.missing_fetch_positions():
            if tp in self.group_committed:
                self.subscription.seek(tp, self.group_committed[tp])
        self.subscription.reset_missing_positions()
        for tp in self.subscription.fetchable_partitions():
            position = self.subscription.assignment[tp].position.offset
            if not self.log_start.get(tp, 0) <= position <= len(self.logs[tp]):
                self.subscription.request_offset_reset(tp)  # OFFSET_OUT_OF_RANGE
        for tp in self.subscription.partitions_needing_reset():
            strategy = self.subscription.assignment[tp].reset_strategy
            earliest = strategy == OffsetResetStrategy.EARLIEST
            self.subscription.seek(
                tp, self.log_start.get(tp, 0) if earliest else len(self.logs[tp])
            )
        batch: dict[TopicPartition, list[Any]] = {}
        for tp in self.subscription.fetchable_partitions():
            start = self.subscription.assignment[tp].position.offset
            records = self.logs[tp][start : start + self.max_per_poll]
            if records:
                batch[tp] = records
                self.subscription.assignment[tp].position = OffsetAndMetadata(
                    start + len(records), "", -1
                )
        return batch

    def pause(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.subscription.pause(tp)

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.subscription.resume(tp)

    def paused(self) -> set[TopicPartition]:
        return self.subscription.paused_partitions()

    def committed(
        self, tp: TopicPartition, metadata: bool = False, timeout_ms: int | None = None
    ) -> int | OffsetAndMetadata | None:
        if self.refuse_committed is not None:
            raise self.refuse_committed
        offset = self.group_committed.get(tp)
        if offset is None or not metadata:
            return offset
        return OffsetAndMetadata(offset, self.commit_metadata.get(tp, ""), -1)

    def offsets_for_times(
        self, timestamps: dict[TopicPartition, int], timeout_ms: int | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset of each partition whose record's timestamp is at least the one
        asked (None when there is none), as the broker answers."""
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, since in timestamps.items():
            hits = [r for r in self.logs[tp][self.log_start.get(tp, 0) :] if r.timestamp >= since]
            found[tp] = OffsetAndTimestamp(hits[0].offset, hits[0].timestamp, -1) if hits else None
        return found

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.subscription.assigned_partitions():
            raise ValueError("Unassigned partition")
        self.subscription.assignment[tp].seek(offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.subscription.request_offset_reset(tp, OffsetResetStrategy.EARLIEST)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.subscription.request_offset_reset(tp, OffsetResetStrategy.LATEST)

    def recreate(self, tp: TopicPartition, values: list[bytes]) -> None:
        self.logs[tp] = [record(tp.topic, tp.partition, o, v) for o, v in enumerate(values)]
        self.log_start.pop(tp, None)

    def beginning_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        return {tp: self.log_start.get(tp, 0) for tp in partitions}

    def end_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        if self.refuse_end_offsets is not None:
            raise self.refuse_end_offsets
        return {tp: len(self.logs[tp]) for tp in partitions}

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int | None = None) -> None:
        committing = {tp: meta.offset for tp, meta in offsets.items()}
        self.commits.append(committing)
        self.group_committed.update(committing)
        self.commit_metadata.update({tp: meta.metadata for tp, meta in offsets.items()})


class FakeProducer:
    def __init__(
        self,
        events: list[tuple[Any, ...]] | None = None,
        partitions: dict[str, set[int]] | None = None,
    ) -> None:
        self.events = events if events is not None else []
        self.partitions = partitions if partitions is not None else {}
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        # The partition each send named (None: its key decides), in the order of ``sent``.
        self.sent_partitions: list[int | None] = []
        self.flushes = 0
        self.flush_timeouts: list[float | None] = []
        self.closed = False
        # By sent value: the error its future fails with at the next flush.
        self.fail: dict[bytes | None, BaseException] = {}
        # By sent value: the error send() raises instead of sending.
        self.refuse: dict[bytes | None, BaseException] = {}
        self._unsettled: list[tuple[bytes | None, Future]] = []

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> Future:
        if value in self.refuse:
            self.events.append(("refused", topic, key, value))
            raise self.refuse[value]
        self.events.append(("send", topic, key, value))
        self.sent.append((topic, key, value))
        self.sent_partitions.append(partition)
        future = Future()
        self._unsettled.append((value, future))
        return future

    def partitions_for(self, topic: str) -> set[int]:
        if topic not in self.partitions:
            raise KafkaTimeoutError(f"no metadata for {topic}")
        return self.partitions[topic]

    def flush(self, timeout: float | None = None) -> None:
        self.events.append(("flush",))
        self.flushes += 1
        self.flush_timeouts.append(timeout)
        self.settle(len(self._unsettled))

    def settle(self, count: int) -> None:
        """Kafka answers the oldest ``count`` sends not answered yet."""
        unsettled, self._unsettled = self._unsettled[:count], self._unsettled[count:]
        for value, future in unsettled:
            if value in self.fail:
                future.failure(self.fail[value])
            else:
                future.success(("metadata", value))

    def close(self, **_: Any) -> None:
        self.closed = True
