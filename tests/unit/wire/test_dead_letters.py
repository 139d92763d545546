import pytest

from botscore.errors import InvalidMessage
from botscore.wire.dead_letters import DeadLetterRecord, decode_dead_letter, encode_dead_letter
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
