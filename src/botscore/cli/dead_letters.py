"""``botscore dead-letters list|replay``: look at set-aside messages, send them back.

Replay reads with its own consumer group and commits after the replayed messages are on
Kafka, so running it twice does not replay the same letter twice.
"""

from __future__ import annotations

import sys

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from botscore.errors import BotscoreError, InvalidMessage
from botscore.settings import Settings
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.vocabulary import Component
from botscore.wire.dead_letters import DeadLetterRecord, decode_dead_letter

__all__ = ["REPLAY_GROUP", "list_dead_letters", "replay_dead_letters"]

REPLAY_GROUP = "botscore-dead-letter-replay"


def _read_to_end(consumer: KafkaConsumer, topic: str, from_committed: bool):
    """Yield (record, letter) from the start (or the committed position) to the current end."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise BotscoreError(f"topic {topic} does not exist: run `botscore topics`")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if not from_committed:
        consumer.seek_to_beginning(*assigned)
    end = consumer.end_offsets(assigned)
    remaining = {tp for tp in assigned if consumer.position(tp) < end[tp]}
    while remaining:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                if record.offset < end[tp]:
                    try:
                        yield record, decode_dead_letter(record.value)
                    except InvalidMessage as exc:
                        print(f"! not a dead letter at {tp.partition}@{record.offset}: {exc}")
            if consumer.position(tp) >= end[tp]:
                remaining.discard(tp)


def _describe(letter: DeadLetterRecord) -> str:
    s = letter.source
    return (
        f"{letter.reason:<26} from={s.topic}/{s.partition}/{s.offset} by={letter.component} "
        f"bytes={len(letter.original_value)} {letter.detail}"
    )


def list_dead_letters(settings: Settings, reason: str | None) -> int:
    k = settings.kafka
    consumer = KafkaConsumer(**connection_config(k), enable_auto_commit=False)
    shown = 0
    try:
        for _, letter in _read_to_end(consumer, k.dead_letter_topic, from_committed=False):
            if reason is None or letter.reason == reason:
                print(_describe(letter))
                shown += 1
    finally:
        consumer.close()
    print(f"{shown} dead letters", file=sys.stderr)
    return 0


def replay_dead_letters(settings: Settings, reason: str | None, to_topic: str | None) -> int:
    k = settings.kafka
    target = to_topic or k.features_topic
    consumer = KafkaConsumer(
        **connection_config(k),
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = create_producer(k, client_id=f"botscore-{Component.DEAD_LETTER_REPLAY}")
    replayed = 0
    positions: dict[TopicPartition, OffsetAndMetadata] = {}
    try:
        for record, letter in _read_to_end(consumer, k.dead_letter_topic, from_committed=True):
            if reason is None or letter.reason == reason:
                producer.send(target, key=letter.original_key or None, value=letter.original_value)
                replayed += 1
            positions[TopicPartition(record.topic, record.partition)] = OffsetAndMetadata(
                record.offset + 1, "", -1
            )
        producer.flush()
        if positions:
            consumer.commit(positions)
    finally:
        producer.close()
        consumer.close()
    print(f"replayed {replayed} dead letters into {target}", file=sys.stderr)
    return 0
