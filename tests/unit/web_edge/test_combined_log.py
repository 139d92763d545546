"""Common and combined access-log lines read into ``WebLog``s; lines that are none refused."""

from __future__ import annotations

import pytest

from botscore.errors import UnreadableLine
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_UNCHECKED, WebLog
from botscore.vocabulary import Decision
from botscore.web_edge.access_log import Networks
from botscore.web_edge.combined_log import line_request_id, parse_combined, read_combined_line
from botscore.web_edge.identity import EdgeKeys
from botscore.wire.codec import WEB_LOG_SCHEMA_VERSION

KEYS = EdgeKeys("k" * 32)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
COMBINED = (
    f'203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /a/b.png?x=1 HTTP/1.1" 200 203023 '
    f'"http://example.com/a/" "{CHROME}"'
).encode()


def test_a_combined_line_becomes_the_request_it_logs() -> None:
    request = read_combined_line(COMBINED, Networks([]), KEYS, "edge-1:7:180", "edge-1")
    log = request.web_log
    assert request.decision is Decision.ALLOW and request.checked
    # 2015-05-17 10:05:03 UTC; the format has whole seconds
    assert log.time_unix_ms == 1431857103000
    assert (log.ip, log.method, log.path, log.status, log.response_bytes) == (
        "203.0.113.9",
        "GET",
        "/a/b.png?x=1",
        200,
        203023,
    )
    assert (log.referrer, log.user_agent) == ("http://example.com/a/", CHROME)
    # named as the gate names a client without its cookie
    assert log.user_id == KEYS.visitor(None, "203.0.113.9", CHROME).user_id
    assert log.request_id == line_request_id("edge-1:7:180", COMBINED)
    assert len(log.request_id) == 32
    assert log.edge_node == "edge-1"
    assert not log.js_check_passed and not log.ip_is_datacenter
    assert log.tls_fingerprint == TLS_FINGERPRINT_UNCHECKED
    assert log.HasField("schema_version") and log.schema_version == WEB_LOG_SCHEMA_VERSION


def test_request_ids_name_the_place_and_the_line() -> None:
    same = line_request_id("edge-1:7:180", COMBINED)
    assert line_request_id("edge-1:7:180", COMBINED) == same  # read again: counted once
    assert line_request_id("edge-1:7:181", COMBINED) != same
    assert line_request_id("edge-2:7:180", COMBINED) != same
    assert line_request_id("edge-1:7:180", COMBINED.replace(b"200", b"304")) != same


def test_one_address_and_agent_is_one_user() -> None:
    def user(ip: str, agent: str) -> str:
        line = f'{ip} - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "{agent}"'
        return read_combined_line(line.encode(), Networks([]), KEYS, "x", "n").web_log.user_id

    assert user("198.51.100.1", "a") == user("198.51.100.1", "a")
    others = {user("198.51.100.1", "a"), user("198.51.100.2", "a"), user("198.51.100.1", "b")}
    assert len(others) == 3


def test_one_address_is_one_user_however_it_is_spelt() -> None:
    def read(ip: str) -> WebLog:
        line = f'{ip} - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "a"'
        return read_combined_line(line.encode(), Networks([]), KEYS, "x", "n").web_log

    spellings = [read(ip) for ip in ("::1", "::0001", "0:0:0:0:0:0:0:1")]
    assert {(log.ip, log.user_id) for log in spellings} == {("::1", read("::1").user_id)}


def test_data_centre_addresses_are_marked() -> None:
    request = read_combined_line(COMBINED, Networks(["203.0.113.0/24"]), KEYS, "x", "n")
    assert request.web_log.ip_is_datacenter


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # the common format: no referrer, no user agent
        (
            b'192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" '
            b"200 2326",
            ("192.0.2.1", 971211336000, "GET", "/apache_pb.gif", 200, 2326, "", ""),
        ),
        # Apache's vhost_combined: the site and port first; IPv6; "-" for no size
        (
            b'www.example.com:443 2001:db8::7 - - [01/Jan/2024:00:00:00 +0100] "HEAD / HTTP/2.0" '
            b'304 - "-" "curl/8.5.0"',
            ("2001:db8::7", 1704063600000, "HEAD", "/", 304, 0, "", "curl/8.5.0"),
        ),
        # more fields after the user agent (request time, forwarded-for); a CRLF ending
        (
            b'192.0.2.2 - - [01/Jan/2024:00:00:00 +0000] "POST /login HTTP/1.1" 401 17 '
            b'"https://example.com/" "UA" 0.012 "10.0.0.1"\r',
            ("192.0.2.2", 1704067200000, "POST", "/login", 401, 17, "https://example.com/", "UA"),
        ),
        # Apache's escapes: \" and \\ in the request and the agent
        (
            b'192.0.2.3 - - [01/Jan/2024:00:00:00 +0000] "GET /q=\\"x\\" HTTP/1.1" 200 5 '
            b'"-" "a \\"quoted\\" \\\\ agent"',
            ("192.0.2.3", 1704067200000, "GET", '/q="x"', 200, 5, "", 'a "quoted" \\ agent'),
        ),
        # nginx's escapes: \xHH for quotes and for every byte outside printable ASCII (UTF-8)
        (
            b'192.0.2.4 - - [01/Jan/2024:00:00:00 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 5 '
            b'"-" "x\\x22y"',
            ("192.0.2.4", 1704067200000, "GET", "/caf\u00e9", 200, 5, "", 'x"y'),
        ),
        # a request line that is none (a TLS handshake on a plain-HTTP port): logged, kept
        (
            b'192.0.2.5 - - [01/Jan/2024:00:00:00 +0000] "\\x16\\x03\\x01\\x00\\xA5\\x01" 400 '
            b'157 "-" "-"',
            ("192.0.2.5", 1704067200000, "", "", 400, 157, "", ""),
        ),
        (
            b'192.0.2.6 - - [01/Jan/2024:00:00:00 +0000] "-" 408 0 "-" "-"',
            ("192.0.2.6", 1704067200000, "", "", 408, 0, "", ""),
        ),
        # a proxy's absolute form loses its scheme and host; HTTP/0.9 has no version
        (
            b'192.0.2.7 - - [01/Jan/2024:00:00:00 +0000] "GET http://example.com:8080/x?y '
            b'HTTP/1.1" 200 1 "-" "-"',
            ("192.0.2.7", 1704067200000, "GET", "/x?y", 200, 1, "", ""),
        ),
        (
            b'192.0.2.8 - - [01/Jan/2024:00:00:00 +0000] "GET /old" 200 1',
            ("192.0.2.8", 1704067200000, "GET", "/old", 200, 1, "", ""),
        ),
        # a month written in another case, a zone far from UTC
        (
            b'192.0.2.9 - - [29/FEB/2024:23:59:59 -1130] "GET / HTTP/1.1" 200 1 "-" "-"',
            ("192.0.2.9", 1709292599000, "GET", "/", 200, 1, "", ""),
        ),
    ],
)
def test_the_formats_servers_write(line: bytes, expected: tuple[object, ...]) -> None:
    fields = parse_combined(line)
    assert (
        fields.ip,
        fields.time_ms,
        fields.method,
        fields.path,
        fields.status,
        fields.response_bytes,
        fields.referrer,
        fields.user_agent,
    ) == expected


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", "not_combined", "common or combined"),
        (b'{"time": "1796420083.157", "ip": "192.0.2.1"}', "not_combined", "common or combined"),
        # cut short in the user agent: its closing quote never came
        (
            b'192.0.2.1 - - [20/May/2015:12:05:17 +0000] "GET / HTTP/1.1" 200 235 "-" "Mozilla/5.0',
            "not_combined",
            "neither a quoted referrer",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "Mo"zilla"',
            "not_combined",
            "unescaped quote",
        ),
        (
            b'crawl-66-249-66-1.googlebot.com - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" '
            b'200 1 "-" "-"',
            "bad_field",
            "host names",
        ),
        (
            b'fe80::1%eth0 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "has a scope id",
        ),
        (
            b'fe80::1%\x1b[2J - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "has a scope id",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 2000 1 "-" "-"',
            "bad_field",
            "status '2000'",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 099 1 "-" "-"',
            "bad_field",
            "status '099'",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 -5 "-" "-"',
            "bad_field",
            "size",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 %d "-" "-"' % 2**64,
            "bad_field",
            "to 18446744073709551615",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 %s "-" "-"'
            % (b"9" * 5000),
            "bad_field",
            "size",
        ),
        (
            # superscript digits: str.isdigit takes them, int does not
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" '
            + "\u00b2\u2070\u2070".encode()
            + b' 1 "-" "-"',
            "bad_field",
            "status",
        ),
        (
            # Arabic-Indic digits
            b"192.0.2.1 - - ["
            + "\u0660\u0661".encode()
            + b'/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "is not like",
        ),
        (
            b'192.0.2.1 - - [2024-01-01T00:00:00Z] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "is not like",
        ),
        (
            b'192.0.2.1 - - [01/Foo/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "is not like",
        ),
        (
            b'192.0.2.1 - - [31/Feb/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "day is out of range",
        ),
        (
            b'192.0.2.1 - - [01/Jan/2024:00:00:00 +9900] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "time",
        ),
        (
            b'192.0.2.1 - - [01/Jan/1960:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "bad_field",
            "not after 1970",
        ),
    ],
)
def test_lines_that_are_no_such_request_are_refused_with_their_reason(
    line: bytes, reason: str, detail: str
) -> None:
    with pytest.raises(UnreadableLine, match=detail) as refused:
        parse_combined(line)
    assert refused.value.reason == reason


def test_bytes_that_are_not_utf8_are_replaced_not_refused() -> None:
    line = b'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET /\xff HTTP/1.1" 200 1 "-" "\xfe"'
    fields = parse_combined(line)
    assert (fields.path, fields.user_agent) == ("/\ufffd", "\ufffd")
