"""Reading the dead-letter topic, and sending its letters back to be processed again.

``list_dead_letters`` reads without committing; ``replay_dead_letters`` resends each
letter's original key and value (to its source topic, or one named), as its own consumer
group (``REPLAY_GROUP``), and commits a partition only up to its first letter Kafka did not
confirm: a replay that fails part way is run again from there, never skipping a letter.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from botscore.errors import InvalidMessage
from botscore.settings import KafkaSettings
from botscore.transport.delivery import FLUSH_MARGIN_S
from botscore.transport.kafka_clients import commit_positions, connection_config, create_producer
from botscore.transport.topic_reader import AssignableConsumer, read_to_end
from botscore.vocabulary import Component
from botscore.wire.dead_letters import DeadLetterRecord, decode_dead_letter, truncations
from botscore.wire.records import SourceRef

__all__ = [
    "REPLAY_GROUP",
    "CommittingConsumer",
    "ReplayProducer",
    "ReplayResult",
    "SendFuture",
    "Truncated",
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
class Truncated:
    """A letter whose original was cut to fit: a prefix, so never replayed."""

    partition: int
    offset: int
    source: SourceRef


@dataclass(frozen=True)
class ReplayResult:
    """What one replay did."""

    # The topic every letter went to; None: each went back to its own source topic.
    target: str | None
    # Letters Kafka confirmed in their topic.
    replayed: int
    # Letters with another reason than the one asked for: read and committed, not sent.
    skipped: int
    # Not committed past unless a later letter of the same partition is.
    undecodable: tuple[Undecodable, ...]
    # Letters whose send Kafka did not confirm; the commit stops at the first of each
    # partition, so the next run sends them (and what followed them) again.
    failed: int = 0
    first_error: str = ""
    # Letters not sent because an earlier send of their partition was refused.
    held_back: int = 0
    # Reported, committed past, not sent.
    truncated: tuple[Truncated, ...] = ()
    # Letters confirmed per topic, by topic name.
    topics: tuple[tuple[str, int], ...] = ()

    @property
    def complete(self) -> bool:
        """Every letter asked for was replayed or can never be (truncated, undecodable)."""
        return not (self.failed or self.held_back)


class CommittingConsumer(AssignableConsumer, Protocol):
    """A consumer in a group that commits offsets itself."""

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...


class SendFuture(Protocol):
    """What a replay reads of ``KafkaProducer.send``'s future once it has flushed."""

    is_done: bool
    exception: BaseException | None


class ReplayProducer(Protocol):
    """The part of ``kafka.KafkaProducer`` a replay uses."""

    def send(self, topic: str, *, key: bytes | None, value: bytes) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...


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
    # A position retention moves out of the log goes to its start, not past what is left.
    consumer = KafkaConsumer(
        **connection_config(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        for _, entry in read_dead_letters(consumer, settings.dead_letter_topic):
            if isinstance(entry, Undecodable) or _wanted(entry, reason):
                yield entry
    finally:
        consumer.close()


@dataclass(frozen=True)
class _Sent:
    topic: str
    future: SendFuture


# A read record's fate: finished without a send (skipped, truncated), failed at once
# (refused, no topic), held back behind such a failure, or sent and awaiting Kafka.
_Outcome = Literal["finished", "failed", "held_back"] | _Sent


def replay_letters(
    consumer: CommittingConsumer,
    producer: ReplayProducer,
    topic: str,
    target: str | None = None,
    reason: str | None = None,
    *,
    flush_timeout_s: float | None = None,
) -> ReplayResult:
    """Send the letters on ``topic`` past the committed position (only ``reason``'s if
    given) as their original key and value, to ``target`` or else each to its source
    topic; then commit each partition up to its first letter Kafka did not confirm.

    Waits up to ``flush_timeout_s`` (None: as long as it takes) for Kafka's answers.
    """
    skipped = 0
    undecodable: list[Undecodable] = []
    truncated: list[Truncated] = []
    errors: list[tuple[int, str]] = []  # (read order, error), to report the first
    # Per partition of ``topic``, in offset order: (offset, read order, outcome).
    tracks: dict[tuple[str, int], list[tuple[int, int, _Outcome]]] = {}
    refused: set[tuple[str, int]] = set()
    for order, (record, entry) in enumerate(
        read_dead_letters(consumer, topic, from_committed=True)
    ):
        partition = (record.topic, record.partition)
        track = tracks.setdefault(partition, [])
        outcome: _Outcome
        if isinstance(entry, Undecodable):
            undecodable.append(entry)
            continue
        if partition in refused:
            outcome = "held_back"
        elif not _wanted(entry, reason):
            skipped += 1
            outcome = "finished"
        elif truncations(entry):
            truncated.append(Truncated(record.partition, record.offset, entry.source))
            outcome = "finished"
        else:
            outcome, error = _send(producer, entry, target or entry.source.topic)
            if error:
                # Likely the same for each next letter (an unknown topic costs
                # max_block_ms each): hold the rest of the partition back.
                errors.append((order, f"letter at {record.partition}@{record.offset}: {error}"))
                refused.add(partition)
        track.append((record.offset, order, outcome))
    # A flush that times out is not the verdict: each send's own outcome is.
    with contextlib.suppress(KafkaError):
        producer.flush(timeout=flush_timeout_s)

    replayed: Counter[str] = Counter()
    failed = held_back = 0
    positions: dict[tuple[str, int], int] = {}
    for partition, track in tracks.items():
        stopped = False
        for offset, order, outcome in track:
            if isinstance(outcome, _Sent):
                why = _send_error(outcome.future)
                if why is None:
                    replayed[outcome.topic] += 1
                else:
                    errors.append((order, f"letter at {partition[1]}@{offset}: {why}"))
                    failed += 1
                    stopped = True
            elif outcome == "failed":
                failed += 1
                stopped = True
            elif outcome == "held_back":
                held_back += 1
                stopped = True
            if not stopped:
                positions[partition] = offset + 1
    if positions:
        consumer.commit(commit_positions(positions))
    return ReplayResult(
        target=target,
        replayed=sum(replayed.values()),
        skipped=skipped,
        undecodable=tuple(undecodable),
        failed=failed,
        first_error=min(errors)[1] if errors else "",
        held_back=held_back,
        truncated=tuple(truncated),
        topics=tuple(sorted(replayed.items())),
    )


def _send(producer: ReplayProducer, letter: DeadLetterRecord, to: str) -> tuple[_Outcome, str]:
    """Send ``letter``'s original to ``to``: the send, or a failure and why."""
    if not to:
        return "failed", "names no source topic: give the topic with --to"
    try:
        future = producer.send(to, key=letter.original_key or None, value=letter.original_value)
    except KafkaError as exc:
        return "failed", _describe(exc)
    return _Sent(to, future), ""


def _send_error(future: SendFuture) -> str | None:
    """Why Kafka did not confirm a flushed send, or None if it did."""
    if not future.is_done:
        return "send not confirmed by Kafka before the flush timed out"
    if future.exception is not None:
        return _describe(future.exception)
    return None


def _describe(exc: BaseException) -> str:
    # kafka-python's errors name their class in str(); others do not.
    return str(exc) if isinstance(exc, KafkaError) else f"{type(exc).__name__}: {exc}"


def replay_dead_letters(
    settings: KafkaSettings, reason: str | None = None, to_topic: str | None = None
) -> ReplayResult:
    """Replay the dead-letter topic's new letters, each into its source topic or all into
    ``to_topic``, with the replay's own consumer group."""
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
            to_topic,
            reason,
            flush_timeout_s=settings.producer_delivery_timeout_ms / 1000 + FLUSH_MARGIN_S,
        )
    finally:
        producer.close()
        consumer.close()
