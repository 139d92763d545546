"""Dead letters: messages set aside with their original bytes and the reason why.

A message that can never be scored (bad bytes, unknown schema version, a missing feature)
goes to the dead-letter topic and its offset moves on, so one bad message never stalls a
partition. ``botscore dead-letters`` lists them and replays them after a fix. Sending them
is ``botscore.transport.dead_letter_outbox``'s job; this module is their envelope.

A letter always fits the size it is given (``fit_dead_letter``): an original too large to
carry whole is cut to a prefix, and the letter's ``detail`` then ends with
``truncated: original N bytes, sha256 HEX`` (``key truncated: ...`` for the key), which
``truncations`` reads back. The wire contract has no field for this, so the note is text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Literal

from botscore.errors import ConfigError
from botscore.v1.dead_letter_pb2 import DeadLetter
from botscore.wire.codec import parse_or_reject, source_from_proto, source_to_proto
from botscore.wire.records import SourceRef

__all__ = [
    "MIN_LETTER_BYTES",
    "DeadLetterRecord",
    "Truncation",
    "decode_dead_letter",
    "encode_dead_letter",
    "fit_dead_letter",
    "letter_size",
    "truncations",
]

# The smallest limit fit_dead_letter accepts: room for the envelope, a shortened detail,
# the truncation notes and a useful part of the original.
MIN_LETTER_BYTES = 16 * 1024

# A detail longer than this is shortened when its letter must be cut to fit; details are
# one-line explanations, so only one that quotes input at length is ever this long.
_DETAIL_KEEP_CHARS = 1000

# What a non-empty bytes field adds beyond its bytes: a tag byte and a length varint of
# at most 5 bytes (lengths below 2**35).
_FIELD_OVERHEAD = 6

_NOTE = re.compile(r"(?:^|; )(key )?truncated: original (\d+) bytes, sha256 ([0-9a-f]{64})")


@dataclass(frozen=True)
class DeadLetterRecord:
    original_value: bytes
    original_key: bytes
    reason: str
    detail: str
    component: str
    source: SourceRef
    dead_lettered_ms: int


@dataclass(frozen=True)
class Truncation:
    """A part of a letter's original that was cut to make the letter fit."""

    part: Literal["value", "key"]
    original_size: int
    sha256: str  # hex digest of the whole original part


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


def letter_size(record: DeadLetterRecord) -> int:
    """Bytes of ``record`` as sent: its encoding plus its original key, the record's key."""
    return len(encode_dead_letter(record)) + len(record.original_key)


def fit_dead_letter(record: DeadLetterRecord, max_bytes: int) -> DeadLetterRecord:
    """``record`` itself if ``letter_size`` is within ``max_bytes``, else a cut copy that is.

    The value is cut to the longest prefix that fits; the key is kept whole unless the
    letter does not fit even with an empty value, and is then cut too (it counts twice:
    in the letter and as the record's key). A long detail is shortened. Each cut part is
    named in the detail with its original size and SHA-256.
    """
    if max_bytes < MIN_LETTER_BYTES:
        raise ConfigError(f"a dead letter needs at least {MIN_LETTER_BYTES} bytes, got {max_bytes}")
    if letter_size(record) <= max_bytes:
        return record
    value, key = record.original_value, record.original_key
    detail = record.detail
    if len(detail) > _DETAIL_KEEP_CHARS:
        detail = detail[:_DETAIL_KEEP_CHARS] + "..."
        shortened = replace(record, detail=detail)
        if letter_size(shortened) <= max_bytes:
            return shortened
    value_note = [_note("truncated", value)] if value else []
    head = replace(record, original_value=b"", detail=_join(detail, *value_note))
    room = max_bytes - letter_size(head) - _FIELD_OVERHEAD
    if room >= 0:
        fitted = replace(head, original_value=value[:room])
    else:
        head = replace(
            head, original_key=b"", detail=_join(detail, *value_note, _note("key truncated", key))
        )
        room = (max_bytes - letter_size(head) - _FIELD_OVERHEAD) // 2
        if room < 0:
            raise ConfigError(f"dead letter from {record.source} cannot fit in {max_bytes} bytes")
        fitted = replace(head, original_key=key[:room])
    assert letter_size(fitted) <= max_bytes, "dead letter still too large after cutting"
    return fitted


def truncations(letter: DeadLetterRecord) -> tuple[Truncation, ...]:
    """The parts of ``letter``'s original that were cut to fit (none for a whole letter).

    A note counts only where the part is indeed shorter than the size it names, so a
    detail that merely quotes such text does not make a whole letter look cut.
    """
    found: list[Truncation] = []
    for key_part, size, digest in _NOTE.findall(letter.detail):
        part: Literal["value", "key"] = "key" if key_part else "value"
        kept = letter.original_key if key_part else letter.original_value
        if len(kept) < int(size):
            found.append(Truncation(part, int(size), digest))
    return tuple(found)


def _note(what: str, original: bytes) -> str:
    return f"{what}: original {len(original)} bytes, sha256 {hashlib.sha256(original).hexdigest()}"


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
