"""nginx's access-log lines read into ``WebLog``s, and the lines that are none refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from botscore.errors import ConfigError, UnreadableLine
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_UNCHECKED
from botscore.vocabulary import Decision
from botscore.web_edge.access_log import FIELDS, Networks, read_line
from botscore.web_edge.identity import EdgeKeys
from botscore.wire.codec import WEB_LOG_SCHEMA_VERSION

NO_NETWORKS = Networks([])
KEYS = EdgeKeys("k" * 32)


def _line(**changes: Any) -> bytes:
    fields = {
        "time": "1796420083.157",
        "user": "fp-bc1989b6b995f60c6e5c",
        "ip": "203.0.113.9",
        "request": "POST /login?next=%2F HTTP/1.1",
        "uri": "/login?next=%2F",
        "status": "401",
        "user_agent": 'Mozilla/5.0 "quoted"',
        "referrer": "https://shop.example.com/",
        "bytes": "178",
        "js": "1",
        "decision": "challenge",
        "request_id": "8ac00ee4e39e7aa142bdde3600ba7d78",
        "node": "edge-1",
        "cookie_user": "",
    }
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def test_the_nginx_template_logs_exactly_the_fields_read(project_root: Path) -> None:
    template = (project_root / "stack/nginx/botscore.conf.in").read_text()
    log_format = template.split("log_format botscore escape=json", 1)[1].split(";", 1)[0]
    assert tuple(re.findall(r'"(\w+)":"\$', log_format)) == FIELDS


def test_a_line_becomes_the_request_it_logs() -> None:
    request = read_line(_line(), NO_NETWORKS, KEYS)
    assert request.decision is Decision.CHALLENGE
    log = request.web_log
    assert (log.time_unix_ms, log.user_id, log.ip) == (
        1796420083157,
        "fp-bc1989b6b995f60c6e5c",
        "203.0.113.9",
    )
    assert (log.method, log.path, log.status, log.response_bytes) == (
        "POST",
        "/login?next=%2F",
        401,
        178,
    )
    assert log.user_agent == 'Mozilla/5.0 "quoted"'
    assert log.referrer == "https://shop.example.com/"
    assert log.js_check_passed and not log.ip_is_datacenter
    assert (log.request_id, log.edge_node) == ("8ac00ee4e39e7aa142bdde3600ba7d78", "edge-1")
    assert log.HasField("schema_version") and log.schema_version == WEB_LOG_SCHEMA_VERSION
    assert log.tls_fingerprint == TLS_FINGERPRINT_UNCHECKED  # nginx does not fingerprint


def test_only_the_script_s_mark_counts_as_javascript() -> None:
    for js in ("0", "", "true", "yes"):
        assert not read_line(_line(js=js), NO_NETWORKS, KEYS).web_log.js_check_passed


def test_addresses_in_the_data_centre_ranges_are_marked() -> None:
    networks = Networks(["198.51.100.0/24", " 2001:db8::/32 ", ""])
    assert read_line(_line(ip="198.51.100.7"), networks, KEYS).web_log.ip_is_datacenter
    assert read_line(_line(ip="2001:db8::1"), networks, KEYS).web_log.ip_is_datacenter
    assert not read_line(_line(ip="203.0.113.9"), networks, KEYS).web_log.ip_is_datacenter
    # Not an address: the feature stage dead-letters it as invalid_ip, as from any edge.
    assert read_line(_line(ip="nonsense"), networks, KEYS).web_log.ip == "nonsense"


def test_a_range_that_is_none_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"edge\.datacenter_networks"):
        Networks(["198.51.100.0/33"])


def test_a_time_without_milliseconds_is_whole_seconds() -> None:
    assert (
        read_line(_line(time="1796420083"), NO_NETWORKS, KEYS).web_log.time_unix_ms == 1796420083000
    )


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", "not_json", ""),
        (b"GET / HTTP/1.1", "not_json", ""),
        (b"\xff\xfe", "not_json", ""),
        (b'["a list"]', "not_json", "a list"),
        (_line(request_id=None), "missing_field", "request_id"),
        (_line(status=401), "bad_field", "status not strings"),
        (_line(status="4O1"), "bad_field", "status '4O1'"),
        (_line(bytes="-1"), "bad_field", "bytes '-1'"),
        (_line(time="1796420083.1"), "bad_field", "time '1796420083.1'"),
        (_line(time="-5"), "bad_field", "time '-5'"),
        (_line(decision="maybe"), "bad_field", "decision 'maybe'"),
        (_line(decision=""), "bad_field", "decision ''"),
        (_line(user=""), "bad_field", "the gate's answer names no user"),
        # digits int() refuses, and numbers past what a WebLog's field holds
        (_line(status="\u00b2"), "bad_field", "status '\u00b2'"),
        (_line(status=str(2**32)), "bad_field", "to 4294967295"),
        (_line(bytes=str(2**64)), "bad_field", "to 18446744073709551615"),
        (_line(bytes="9" * 5000), "bad_field", "bytes '9999"),
        (_line(time=f"{2**63 // 1000}.808"), "bad_field", "past what a WebLog holds"),
        (_line(time="9" * 5000), "bad_field", "past what a WebLog holds"),
        (_line()[:-1] + b', "x": ' + b"1" * 5000 + b"}", "not_json", "digits"),
        (b"[" * 30_000 + b"]" * 30_000, "not_json", "recursion"),
    ],
)
def test_a_line_that_is_no_request_is_refused_with_its_reason(
    line: bytes, reason: str, detail: str
) -> None:
    with pytest.raises(UnreadableLine, match=re.escape(detail) if detail else None) as refused:
        read_line(line, NO_NETWORKS, KEYS)
    assert refused.value.reason == reason


def test_bytes_that_are_not_utf8_are_replaced_not_refused() -> None:
    # nginx's escape=json copies a client's bytes from 0x80 up as they came.
    line = _line(user_agent="python-requests/2.31.0 \u00ff").replace(b"\\u00ff", b"\xff")
    assert b"\xff" in line
    assert read_line(line, NO_NETWORKS, KEYS).web_log.user_agent == "python-requests/2.31.0 \ufffd"
    # a JSON escape naming half of a surrogate pair, which UTF-8 cannot hold
    half = _line(referrer="x").replace(b'"referrer": "x"', b'"referrer": "\\ud800"')
    assert read_line(half, NO_NETWORKS, KEYS).web_log.referrer == "?"


def test_values_a_web_log_holds_are_read_and_left_to_the_feature_stage_to_refuse() -> None:
    web_log = read_line(
        _line(status="700", bytes=str(2**60), time="99999999999.000"), NO_NETWORKS, KEYS
    ).web_log
    assert (web_log.status, web_log.response_bytes, web_log.time_unix_ms) == (
        700,
        2**60,
        99999999999000,
    )


def test_a_request_the_gate_did_not_answer_is_named_as_the_gate_would_have() -> None:
    unanswered = {"user": "", "decision": "", "js": ""}
    request = read_line(_line(**unanswered), NO_NETWORKS, KEYS)
    assert not request.checked and request.decision is Decision.ALLOW
    gate_s = KEYS.visitor(None, "203.0.113.9", 'Mozilla/5.0 "quoted"').user_id
    assert request.web_log.user_id == gate_s and not request.web_log.js_check_passed
    # A visitor with the edge's cookie keeps its user; a forged cookie is its fingerprint.
    signed = read_line(_line(**unanswered, cookie_user=KEYS.user_cookie("u-7")), NO_NETWORKS, KEYS)
    assert signed.web_log.user_id == "u-7"
    forged = read_line(_line(**unanswered, cookie_user="u-7." + "0" * 32), NO_NETWORKS, KEYS)
    assert forged.web_log.user_id == gate_s
    assert read_line(_line(), NO_NETWORKS, KEYS).checked
