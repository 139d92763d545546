"""The dead-letter envelope: round trips, and letters cut to fit."""

import hashlib

import pytest

from botscore.errors import ConfigError, InvalidMessage
from botscore.wire.dead_letters import (
    DeadLetterRecord,
    Truncation,
    decode_dead_letter,
    encode_dead_letter,
    fit_dead_letter,
    truncations,
)
from botscore.wire.records import SourceRef


def test_dead_letter_keeps_the_original_bytes_exactly():
    record = DeadLetterRecord(
        original_value=bytes(range(256)),
        original_key=b"user-1",
        reason="undecodable",
        detail="Error parsing message",
        component="spout",
        source=SourceRef("user-features", 3, 99),
        dead_lettered_ms=1234,
    )
    assert decode_dead_letter(encode_dead_letter(record)) == record


def test_garbage_is_not_a_dead_letter():
    with pytest.raises(InvalidMessage):
        decode_dead_letter(b"\xff\xff\xff")


# A letter for the dead-letter topic must fit the producer's max_request_size (1 MiB by
# default) with room to spare; this is the limit the outbox derives from that default.
LIMIT = 1_048_576 - 16 * 1024


def _oversized(
    value: bytes, key: bytes = b"user-1", detail: str = "Error parsing"
) -> DeadLetterRecord:
    return DeadLetterRecord(
        original_value=value,
        original_key=key,
        reason="undecodable",
        detail=detail,
        component="spout",
        source=SourceRef("web-logs", 2, 41),
        dead_lettered_ms=1234,
    )


def _sent_size(record: DeadLetterRecord) -> int:
    # A letter goes to Kafka keyed by its original key: both count against the limit.
    return len(encode_dead_letter(record)) + len(record.original_key)


def test_a_letter_that_fits_is_left_whole():
    record = _oversized(b"x" * 1000)
    assert fit_dead_letter(record, LIMIT) is record
    assert truncations(record) == ()


def test_an_oversized_original_is_cut_to_fit_and_the_letter_says_so():
    original = hashlib.sha256(b"seed").digest() * (1_048_000 // 32)
    assert len(original) == 1_048_000
    record = _oversized(original)

    fitted = fit_dead_letter(record, LIMIT)

    assert _sent_size(fitted) <= LIMIT
    assert _sent_size(fitted) > LIMIT - 100, "cut far more than needed"
    decoded = decode_dead_letter(encode_dead_letter(fitted))
    assert decoded == fitted
    assert original.startswith(decoded.original_value)
    assert len(decoded.original_value) < len(original)
    assert decoded.original_key == b"user-1"
    digest = hashlib.sha256(original).hexdigest()
    assert decoded.detail == f"Error parsing; truncated: original 1048000 bytes, sha256 {digest}"
    assert truncations(decoded) == (Truncation("value", 1_048_000, digest),)
    assert (decoded.reason, decoded.component, decoded.source) == (
        "undecodable",
        "spout",
        SourceRef("web-logs", 2, 41),
    )


def test_a_key_too_large_for_any_letter_is_cut_as_well():
    key = b"k" * 2_000_000
    record = _oversized(b"value", key=key, detail="")
    fitted = fit_dead_letter(record, LIMIT)
    assert _sent_size(fitted) <= LIMIT
    assert key.startswith(fitted.original_key) and len(fitted.original_key) > LIMIT // 2 - 1000
    assert fitted.original_value == b""
    assert truncations(fitted) == (
        Truncation("value", 5, hashlib.sha256(b"value").hexdigest()),
        Truncation("key", 2_000_000, hashlib.sha256(key).hexdigest()),
    )


def test_a_huge_detail_is_shortened():
    record = _oversized(b"v", detail="d" * 3_000_000)
    fitted = fit_dead_letter(record, LIMIT)
    assert _sent_size(fitted) <= LIMIT
    assert fitted.original_value == b"v"
    assert fitted.detail.startswith("ddd") and len(fitted.detail) < 2000
    assert "truncated" not in fitted.detail
    assert truncations(fitted) == ()


def test_a_detail_that_only_looks_like_a_note_is_no_truncation():
    record = _oversized(b"v" * 10, detail=f"truncated: original 10 bytes, sha256 {'0' * 64}")
    assert truncations(record) == ()


def test_a_limit_no_letter_can_meet_is_refused():
    with pytest.raises(ConfigError):
        fit_dead_letter(_oversized(b"x" * 10_000), 100)
