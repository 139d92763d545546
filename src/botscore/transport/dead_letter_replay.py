"""Dead letters read back from their topic: listed, or replayed into a topic after a fix.

Replay reads with a consumer group of its own and commits after the replayed messages
are flushed to Kafka, so running it twice does not replay the same letter twice.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from botscore.errors import InvalidMessage
from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import commit_positions, connection_config, create_producer
from botscore.transport.topic_reader import AssignableConsumer, read_to_end
from botscore.vocabulary import Component
from botscore.wire.dead_letters import DeadLetterRecord, decode_dead_letter

__all__ = [
    "REPLAY_GROUP",
    "CommittingConsumer",
    "ReplayProducer",
    "ReplayResult",
    "Undecodable",
    "list_dead_letters",
    "read_dead_letters",
    "replay_dead_letters",
    "replay_letters",
]

REPLAY_GROUP = "botscore-dead-letter-replay"


@dataclass(frozen=True)
class Undecodable:
    """A record on the dead-letter topic that is not a dead letter."""

    partition: int
    offset: int
    error: InvalidMessage


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did."""

    target: str
    replayed: int
    # Letters with another reason than the one asked for: read and committed, not sent.
    skipped: int
    # Not committed past unless a later letter of the same partition is.
    undecodable: tuple[Undecodable, ...]


class CommittingConsumer(AssignableConsumer, Protocol):
    """A consumer in a group that commits offsets itself."""

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...


class ReplayProducer(Protocol):
    """The part of ``kafka.KafkaProducer`` a replay uses."""

    def send(self, topic: str, *, key: bytes | None, value: bytes) -> Any: ...

    def flush(self) -> None: ...


def read_dead_letters(
    consumer: AssignableConsumer, topic: str, *, from_committed: bool = False
) -> Iterator[tuple[Any, DeadLetterRecord | Undecodable]]:
    """Each record of ``topic`` up to its current end, with its letter or why it has none."""
    for record in read_to_end(consumer, topic, from_committed=from_committed):
        try:
            yield record, decode_dead_letter(record.value)
        except InvalidMessage as exc:
            yield record, Undecodable(record.partition, record.offset, exc)


def _wanted(letter: DeadLetterRecord, reason: str | None) -> bool:
    return reason is None or letter.reason == reason


def list_dead_letters(
    settings: KafkaSettings, reason: str | None = None
) -> Generator[DeadLetterRecord | Undecodable, None, None]:
    """The letters on the dead-letter topic (only ``reason``'s if given), and every
    record there that is not a letter. Reads without a group: nothing is committed."""
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    try:
        for _, entry in read_dead_letters(consumer, settings.dead_letter_topic):
            if isinstance(entry, Undecodable) or _wanted(entry, reason):
                yield entry
    finally:
        consumer.close()


def replay_letters(
    consumer: CommittingConsumer,
    producer: ReplayProducer,
    topic: str,
    target: str,
    reason: str | None = None,
) -> ReplayResult:
    """Send the letters on ``topic`` past the committed position (only ``reason``'s if
    given) to ``target`` as their original key and value; commit once all are flushed."""
    replayed = skipped = 0
    undecodable: list[Undecodable] = []
    positions: dict[tuple[str, int], int] = {}
    for record, entry in read_dead_letters(consumer, topic, from_committed=True):
        if isinstance(entry, Undecodable):
            undecodable.append(entry)
            continue
        if _wanted(entry, reason):
            producer.send(target, key=entry.original_key or None, value=entry.original_value)
            replayed += 1
        else:
            skipped += 1
        positions[(record.topic, record.partition)] = record.offset + 1
    producer.flush()
    if positions:
        consumer.commit(commit_positions(positions))
    return ReplayResult(target, replayed, skipped, tuple(undecodable))


def replay_dead_letters(
    settings: KafkaSettings, reason: str | None = None, to_topic: str | None = None
) -> ReplayResult:
    """Replay the dead-letter topic's new letters into ``to_topic`` (default: the
    features topic) with the replay's own consumer group."""
    consumer = KafkaConsumer(
        **connection_config(settings),
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = create_producer(settings, client_id=f"botscore-{Component.DEAD_LETTER_REPLAY}")
    try:
        return replay_letters(
            consumer,
            producer,
            settings.dead_letter_topic,
            to_topic or settings.features_topic,
            reason,
        )
    finally:
        producer.close()
        consumer.close()
