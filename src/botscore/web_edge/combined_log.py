"""Access logs in the format most web servers already write, read into ``WebLog``s.

The NCSA *combined* format (nginx's default ``combined``, Apache's ``%h %l %u %t "%r" %>s
%b "%{Referer}i" "%{User-agent}i"``) and its relatives: the *common* format (no referrer
and user agent), Apache's ``vhost_combined`` (the site first) and combined lines with more
fields after the user agent. It lets botscore read the logs of a web server without its
gate, and public logs nobody simulated (``botscore replay-log``).

Such a line says less than the edge's own format: no user id (the user is named by its
address and user agent, as the gate names a client without a cookie), no JavaScript token,
no TLS verdict and no request id (the caller gives one that names the line's place, so a
line read twice keeps its id and the feature stage counts it once). Times have seconds, not
milliseconds. A line that is not such a request is refused with its reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from botscore.errors import InvalidMessage, UnreadableLine
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision
from botscore.web_edge.access_log import EdgeRequest, Networks
from botscore.web_edge.identity import EdgeKeys
from botscore.wire.codec import UINT64_MAX, WEB_LOG_SCHEMA_VERSION, canonical_ip

__all__ = ["CombinedLine", "line_request_id", "parse_combined", "read_combined_line"]

_QUOTED = rb'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    rb"(?:\S+ )?(\S+) \S+ \S+ \[([^\]]*)\] "  # [site[:port]] address ident user [time]
    + _QUOTED
    + rb" (\S+) (\S+)"  # "request" status bytes
    + rb"(?: "
    + _QUOTED
    + b" "
    + _QUOTED
    + rb")?(.*)",  # "referrer" "user agent", then any other fields
    re.DOTALL,
)
_TIME = re.compile(
    r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})", re.ASCII
)
# Month names as servers write them, whatever the reader's locale.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_METHOD = re.compile(r"[A-Z][A-Z_-]*")
# nginx escapes '"', '\' and bytes outside printable ASCII as \xHH; Apache writes \" and \\
# and escapes control characters as \n, \t, ... or \xhh.
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_NAMED_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"v": b"\v"}


@dataclass(frozen=True)
class CombinedLine:
    """The fields of one line, unescaped; ``referrer`` and ``user_agent`` are empty in the
    common format, ``method`` and ``path`` when the request line was none (a server logs
    what it answered with 400, such as a TLS handshake sent to a plain-HTTP port)."""

    time_ms: int
    ip: str
    method: str
    path: str
    status: int
    response_bytes: int
    referrer: str
    user_agent: str


def parse_combined(line: bytes) -> CombinedLine:
    """The fields ``line`` logs, or ``UnreadableLine`` saying why it is not such a line."""
    match = _LINE.fullmatch(line.rstrip(b"\r"))
    if match is None:
        raise UnreadableLine(
            "not_combined",
            'not `address ident user [time] "request" status bytes` (common or combined format)',
        )
    ip_raw, time_raw, request_raw, status_raw, bytes_raw, referrer, agent, rest = match.groups()
    if referrer is None and rest:
        raise UnreadableLine(
            "not_combined", "after the size, neither a quoted referrer and user agent nor the end"
        )
    if rest[:1] not in (b"", b" ", b"\t"):
        # "Mo"zilla": a server that did not escape a quote would cut the agent short
        raise UnreadableLine(
            "not_combined", "text right after the user agent's closing quote: an unescaped quote?"
        )
    try:
        # its one spelling: the user of a line without a cookie is named by its address
        ip = canonical_ip(ip_raw.decode(errors="replace"))
    except InvalidMessage as exc:
        raise UnreadableLine(
            "bad_field", f"client {exc.detail} (a server resolving names logs host names)"
        ) from None
    status_text = status_raw.decode(errors="replace")
    # bytes.isdigit: ASCII digits only (a str's also takes superscripts, which int refuses)
    if not (status_raw.isdigit() and len(status_raw) == 3 and 100 <= int(status_raw) <= 599):
        raise UnreadableLine("bad_field", f"status {status_text[:40]!r} is not an HTTP status")
    if bytes_raw == b"-":
        size = 0
    elif (
        bytes_raw.isdigit()
        and len(bytes_raw) <= len(str(UINT64_MAX))
        and int(bytes_raw) <= UINT64_MAX
    ):
        size = int(bytes_raw)  # the feature stage refuses one over MAX_EXACT_INT
    else:
        raise UnreadableLine(
            "bad_field", f"size {bytes_raw[:40]!r} is not - or a whole number to {UINT64_MAX}"
        )
    method, path = _request(_unescape(request_raw))
    return CombinedLine(
        time_ms=_time_ms(time_raw.decode(errors="replace")),
        ip=ip,
        method=method,
        path=path,
        status=int(status_text),
        response_bytes=size,
        referrer="" if referrer in (None, b"-") else _unescape(referrer),
        user_agent="" if agent in (None, b"-") else _unescape(agent),
    )


def read_combined_line(
    line: bytes, datacenters: Networks, keys: EdgeKeys, place: str, node: str
) -> EdgeRequest:
    """The request ``line`` (at ``place``, see ``line_request_id``) logs, its user named as
    the gate names a client without a cookie.

    No gate answered for it, so nothing was blocked: its decision is ``allow``, and it
    counts as checked (there was no gate to be down).
    """
    fields = parse_combined(line)
    web_log = WebLog(
        time_unix_ms=fields.time_ms,
        user_id=keys.visitor(None, fields.ip, fields.user_agent).user_id,
        ip=fields.ip,
        ip_is_datacenter=datacenters.contain(fields.ip),
        method=fields.method,
        path=fields.path,
        status=fields.status,
        user_agent=fields.user_agent,
        referrer=fields.referrer,
        response_bytes=fields.response_bytes,
        request_id=line_request_id(place, line),
        edge_node=node,
        schema_version=WEB_LOG_SCHEMA_VERSION,
    )
    return EdgeRequest(web_log, Decision.ALLOW)


def line_request_id(place: str, line: bytes) -> str:
    """A request id for a log that has none: 32 hex digits of the line's place (such as
    the server, the file and the offset) and its bytes. The same line read again gets the
    same id; another line at the same offset (a file truncated and written again) another."""
    return hashlib.sha256(place.encode() + b"\0" + line).hexdigest()[:32]


def _unescape(raw: bytes) -> str:
    def one(match: re.Match[bytes]) -> bytes:
        escaped = match.group(1)
        if escaped[:1] == b"x" and len(escaped) == 3:
            return bytes([int(escaped[1:], 16)])
        return _NAMED_ESCAPES.get(escaped, escaped)

    return _ESCAPE.sub(one, raw).decode(errors="replace")


def _request(request_line: str) -> tuple[str, str]:
    """Method and path (with query, without scheme and host) of a request line."""
    parts = request_line.split(" ")
    if len(parts) not in (2, 3) or not _METHOD.fullmatch(parts[0]):
        return "", ""
    if len(parts) == 3 and not parts[2].startswith("HTTP/"):
        return "", ""
    target = parts[1]
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        target = "/" + rest.partition("/")[2]  # a proxy's absolute form
    return parts[0], target


def _time_ms(text: str) -> int:
    match = _TIME.fullmatch(text)
    month = _MONTHS.get(match.group(2).title()) if match else None
    if match is None or month is None:
        raise UnreadableLine(
            "bad_field", f"time {text[:40]!r} is not like 10/Oct/2000:13:55:36 -0700"
        )
    day, _, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    try:
        offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
        moment = datetime(
            int(year),
            month,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(offset if sign == "+" else -offset),
        )
    except ValueError as exc:
        raise UnreadableLine("bad_field", f"time {text!r}: {exc}") from None
    time_ms = int(moment.timestamp()) * 1000
    if time_ms <= 0:
        raise UnreadableLine("bad_field", f"time {text!r} is not after 1970")
    return time_ms
