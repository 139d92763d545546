"""Dead letters: messages set aside with their original bytes and the reason why.

A message that can never be scored (bad bytes, unknown schema version, a missing feature)
goes to the dead-letter topic and its offset moves on, so one bad message never stalls a
partition. ``botscore dead-letters`` lists them and replays them after a fix. Sending them
is ``botscore.transport.dead_letter_outbox``'s job; this module is their envelope.
"""

from __future__ import annotations

from dataclasses import dataclass

from botscore.v1.dead_letter_pb2 import DeadLetter
from botscore.wire.codec import parse_or_reject, source_from_proto, source_to_proto
from botscore.wire.records import SourceRef

__all__ = ["DeadLetterRecord", "decode_dead_letter", "encode_dead_letter"]


@dataclass(frozen=True)
class DeadLetterRecord:
    original_value: bytes
    original_key: bytes
    reason: str
    detail: str
    component: str
    source: SourceRef
    dead_lettered_ms: int


def encode_dead_letter(record: DeadLetterRecord) -> bytes:
    return DeadLetter(
        original_value=record.original_value,
        original_key=record.original_key,
        reason=record.reason,
        detail=record.detail,
        component=record.component,
        source=source_to_proto(record.source),
        dead_lettered_unix_ms=record.dead_lettered_ms,
    ).SerializeToString()


def decode_dead_letter(payload: bytes) -> DeadLetterRecord:
    message = parse_or_reject(DeadLetter(), payload)
    return DeadLetterRecord(
        original_value=message.original_value,
        original_key=message.original_key,
        reason=message.reason,
        detail=message.detail,
        component=message.component,
        source=source_from_proto(message.source),
        dead_lettered_ms=message.dead_lettered_unix_ms,
    )
