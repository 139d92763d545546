"""The WebLog wire contract: fields pinned, round trip exact, labels absent."""

from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_CONTRADICTS_USER_AGENT, WebLog

FIELDS = {
    "time_unix_ms": 1,
    "user_id": 2,
    "ip": 3,
    "ip_is_datacenter": 4,
    "method": 5,
    "path": 6,
    "status": 7,
    "user_agent": 8,
    "referrer": 9,
    "response_bytes": 10,
    "js_check_passed": 11,
    "request_id": 12,
    "edge_node": 13,
    "schema_version": 14,
    "tls_fingerprint": 15,
}


def _full() -> WebLog:
    return WebLog(
        time_unix_ms=1_700_000_000_123,
        user_id="c-0123456789abcdef",
        ip="2001:db8::7",
        ip_is_datacenter=True,
        method="POST",
        path="/login?next=%2Fcart",
        status=401,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/135.0",
        referrer="https://shop.example.com/login",
        response_bytes=2**40 + 3,
        js_check_passed=True,
        request_id="00ff00ff00ff00ff",
        edge_node="edge-fra-1",
        schema_version=1,
        tls_fingerprint=TLS_FINGERPRINT_CONTRADICTS_USER_AGENT,
    )


def test_field_numbers_are_pinned():
    # Renumbering breaks every reader in the field; this pins the contract.
    assert {f.name: f.number for f in WebLog.DESCRIPTOR.fields} == FIELDS


def test_no_field_can_carry_a_label():
    names = " ".join(f.name for f in WebLog.DESCRIPTOR.fields)
    for word in ("bot", "kind", "label", "human", "truth"):
        assert word not in names


def test_round_trip_keeps_every_field():
    message = _full()
    decoded = WebLog.FromString(message.SerializeToString())
    assert decoded == message
    for name in FIELDS:
        assert getattr(decoded, name) == getattr(message, name), name


def test_missing_schema_version_is_detectable():
    message = _full()
    message.ClearField("schema_version")
    decoded = WebLog.FromString(message.SerializeToString())
    assert not decoded.HasField("schema_version")
    assert WebLog.FromString(_full().SerializeToString()).HasField("schema_version")


def test_reader_ignores_fields_a_newer_writer_added():
    # Field 16, varint 7: what a future WebLog field looks like to today's reader (the key,
    # 16 << 3 = 128, is itself a two-byte varint).
    newer = _full().SerializeToString() + bytes([0x80, 0x01, 7])
    decoded = WebLog.FromString(newer)
    decoded.DiscardUnknownFields()
    assert decoded == _full()
