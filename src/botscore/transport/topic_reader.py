"""Reading a whole Kafka topic by assignment: every partition, from a chosen start.

Tools that look at a topic (``botscore watch``, the dead-letter commands, the integration
tests' collectors) assign themselves all of its partitions instead of joining a group:
there is no rebalance to wait for, and no other reader is affected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any, Protocol

from kafka import TopicPartition

from botscore.errors import TopicMissing

__all__ = [
    "AssignableConsumer",
    "StartAt",
    "TimedConsumer",
    "assign_topic",
    "read_between",
    "read_to_end",
]

POLL_TIMEOUT_MS = 1000
# Empty polls in a row after which read_to_end asks for the end offsets again.
IDLE_POLLS = 10


class StartAt(Enum):
    """Where reading starts in each assigned partition."""

    BEGINNING = "beginning"
    END = "end"
    # The consumer group's committed offset, or its ``auto_offset_reset`` without one.
    COMMITTED = "committed"


class AssignableConsumer(Protocol):
    """The part of ``kafka.KafkaConsumer`` that reading by assignment uses."""

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def seek_to_end(self, *partitions: TopicPartition) -> None: ...

    def end_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...

    def position(self, partition: TopicPartition) -> int: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def poll(self, timeout_ms: int = ...) -> Mapping[TopicPartition, list[Any]]: ...


class TimedConsumer(AssignableConsumer, Protocol):
    """An ``AssignableConsumer`` that also finds offsets by time."""

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> Mapping[TopicPartition, Any]: ...


def assign_topic(
    consumer: AssignableConsumer, topic: str, *, start: StartAt
) -> list[TopicPartition]:
    """Assign ``consumer`` every partition of ``topic`` and seek to ``start``.

    Returns the partitions in partition order. Raises ``TopicMissing`` when the topic
    has no partitions.
    """
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TopicMissing(topic)
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if start is StartAt.BEGINNING:
        consumer.seek_to_beginning(*assigned)
    elif start is StartAt.END:
        consumer.seek_to_end(*assigned)
    return assigned


def read_to_end(
    consumer: AssignableConsumer,
    topic: str,
    *,
    from_committed: bool = False,
    last: int | None = None,
) -> Iterator[Any]:
    """Yield ``topic``'s records (in offset order within a partition), then stop.

    Reading starts at the beginning (or, with ``from_committed``, at the consumer group's
    committed position; with ``last``, at most that many records before each partition's
    end) and ends at the end offsets taken when reading starts: records written meanwhile
    are left for the next reader, so the read always finishes. The records are
    ``kafka.consumer.fetcher.ConsumerRecord``s.

    A partition can end in offsets no poll returns (transaction markers), and its log can
    move back under the reader (the topic recreated or truncated), leaving the first end out
    of reach: positions are checked after every poll, and after ``IDLE_POLLS`` empty polls
    an end the log no longer reaches is lowered to where it is now. A topic deleted meanwhile
    makes the end offsets raise (``KafkaError``) rather than the read wait for good.
    """
    start = StartAt.COMMITTED if from_committed else StartAt.BEGINNING
    assigned = assign_topic(consumer, topic, start=start)
    end = dict(consumer.end_offsets(assigned))
    if last is not None:
        for tp in assigned:
            consumer.seek(tp, max(consumer.position(tp), end[tp] - last))
    yield from _read_until(consumer, assigned, end)


def read_between(
    consumer: TimedConsumer, topic: str, since_ms: int, until_ms: int
) -> Iterator[Any]:
    """Yield ``topic``'s records written from ``since_ms`` to before ``until_ms`` (by their
    Kafka timestamps), partition by partition in offset order, then stop.

    A partition's range runs from its first record at or after ``since_ms`` to its first at
    or after ``until_ms`` (or its end when reading starts, if it has none so late).
    """
    assigned = assign_topic(consumer, topic, start=StartAt.END)
    end = dict(consumer.end_offsets(assigned))
    starts = consumer.offsets_for_times({tp: since_ms for tp in assigned})
    stops = consumer.offsets_for_times({tp: until_ms for tp in assigned})
    for tp in assigned:
        stop = stops.get(tp)
        end[tp] = stop.offset if stop is not None else end[tp]
        start = starts.get(tp)
        consumer.seek(tp, start.offset if start is not None else end[tp])
    yield from _read_until(consumer, assigned, end)


def _read_until(
    consumer: AssignableConsumer, assigned: list[TopicPartition], end: dict[TopicPartition, int]
) -> Iterator[Any]:
    remaining = {tp for tp in assigned if consumer.position(tp) < end[tp]}
    idle = 0
    while remaining:
        polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        for tp, records in polled.items():
            for record in records:
                if record.offset < end[tp]:
                    yield record
        idle = 0 if polled else idle + 1
        if idle >= IDLE_POLLS:
            idle = 0
            now = consumer.end_offsets(sorted(remaining))
            for tp in remaining:
                end[tp] = min(end[tp], now[tp])
        remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
