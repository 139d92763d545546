"""The web server's access log, one JSON object a line, read into ``WebLog``s.

nginx writes the lines (``log_format botscore escape=json`` in
``stack/nginx/botscore.conf.in``, which must name exactly ``FIELDS``); every value is a
string there, as nginx's variables are. The gate's answers travel in the line too: the
user id it chose, whether the request carried the JavaScript token, and the decision the
edge applied; when the gate did not answer they are empty, and the user is named from the
logged cookie, address and agent as the gate would have. A line that is not such an object
is refused with its reason; what a
``WebLog`` may hold (an address, a status) is the feature stage's to check, as for any edge.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass

from botscore.errors import ConfigError, UnreadableLine
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision
from botscore.web_edge.identity import EdgeKeys
from botscore.wire.codec import INT64_MAX, UINT32_MAX, UINT64_MAX, WEB_LOG_SCHEMA_VERSION

__all__ = ["FIELDS", "EdgeRequest", "Networks", "read_line"]

# The keys of a line, in nginx's order.
FIELDS = (
    "time",  # $msec: seconds since the epoch, with milliseconds
    "user",  # the gate's X-Botscore-User
    "ip",  # $remote_addr
    "request",  # $request: the request line as received, whose method is logged
    "uri",  # $request_uri: path and query
    "status",
    "user_agent",
    "referrer",
    "bytes",  # $body_bytes_sent
    "js",  # the gate's X-Botscore-Js: "1" when the request carried the token
    "decision",  # the gate's X-Botscore-Decision: allow, challenge or block
    "request_id",  # $request_id: 32 hex digits, unique per request
    "node",  # $hostname
    "cookie_user",  # $cookie_bs_uid: names the user when the gate did not answer
)


@dataclass(frozen=True)
class EdgeRequest:
    """One logged request: what the feature stage gets, and what the edge did with it."""

    web_log: WebLog
    decision: Decision
    checked: bool = True  # False: the gate did not answer, and nginx served it unchecked


class Networks:
    """The address ranges the edge counts as data centres (``edge.datacenter_networks``)."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        try:
            self._networks = [ipaddress.ip_network(c.strip()) for c in cidrs if c.strip()]
        except ValueError as exc:
            raise ConfigError(f"edge.datacenter_networks: {exc}") from exc

    def contain(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False  # the feature stage dead-letters the request for its address
        return any(address in network for network in self._networks)


def _is_whole(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes superscripts that ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _number(fields: dict[str, str], key: str, limit: int) -> int:
    text = fields[key]
    if not _is_whole(text) or len(text) > len(str(limit)) or int(text) > limit:
        raise UnreadableLine("bad_field", f"{key} {text[:40]!r} is not a whole number to {limit}")
    return int(text)


def _time_ms(text: str) -> int:
    seconds, dot, millis = text.partition(".")
    if not _is_whole(seconds) or (dot and (len(millis) != 3 or not _is_whole(millis))):
        raise UnreadableLine("bad_field", f"time {text[:40]!r} is not seconds.milliseconds")
    time_ms = int(seconds[: len(str(INT64_MAX))]) * 1000 + (int(millis) if dot else 0)
    if len(seconds) > len(str(INT64_MAX)) or time_ms > INT64_MAX:
        raise UnreadableLine("bad_field", f"time {text[:40]!r} is past what a WebLog holds")
    return time_ms


def _text(value: str) -> str:
    """``value`` as UTF-8 can hold it: a JSON escape may name half of a surrogate pair."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode(errors="replace").decode()
    return value


def _fields(line: bytes) -> dict[str, str]:
    # nginx's escape=json escapes quotes, backslashes and control bytes only: a client's
    # bytes that are not UTF-8 reach the line raw, and are replaced as the combined reader
    # replaces them rather than costing the request.
    try:
        fields = json.loads(line.decode(errors="replace"))
    except (ValueError, RecursionError) as exc:  # ValueError: also a 5000-digit number
        raise UnreadableLine("not_json", str(exc)[:200]) from None
    if not isinstance(fields, dict):
        raise UnreadableLine("not_json", f"a {type(fields).__name__}, not an object")
    missing = [k for k in FIELDS if k not in fields]
    if missing:
        raise UnreadableLine("missing_field", ", ".join(missing))
    not_text = [k for k in FIELDS if not isinstance(fields[k], str)]
    if not_text:
        raise UnreadableLine("bad_field", f"{', '.join(not_text)} not strings")
    return {k: _text(fields[k]) for k in FIELDS}


def read_line(line: bytes, datacenters: Networks, keys: EdgeKeys) -> EdgeRequest:
    """The request a line logs, or ``UnreadableLine`` saying why it is none. ``keys`` name
    the user of a request the gate did not answer, as the gate would have."""
    fields = _fields(line)
    checked = bool(fields["user"] or fields["decision"] or fields["js"])
    if checked:
        if not fields["user"]:
            raise UnreadableLine("bad_field", "the gate's answer names no user")
        if fields["decision"] not in set(Decision):
            raise UnreadableLine("bad_field", f"decision {fields['decision']!r}")
        user_id, decision = fields["user"], Decision(fields["decision"])
    else:
        # The gate did not answer (down, slow): nginx served the request, and the user is
        # the one the gate would have named, from the same cookie, address and agent.
        visitor = keys.visitor(fields["cookie_user"] or None, fields["ip"], fields["user_agent"])
        user_id, decision = visitor.user_id, Decision.ALLOW
    web_log = WebLog(
        time_unix_ms=_time_ms(fields["time"]),
        user_id=user_id,
        ip=fields["ip"],
        ip_is_datacenter=datacenters.contain(fields["ip"]),
        method=fields["request"].partition(" ")[0],
        path=fields["uri"],
        status=_number(fields, "status", UINT32_MAX),
        user_agent=fields["user_agent"],
        referrer=fields["referrer"],
        response_bytes=_number(fields, "bytes", UINT64_MAX),
        js_check_passed=fields["js"] == "1",
        request_id=fields["request_id"],
        edge_node=fields["node"],
        schema_version=WEB_LOG_SCHEMA_VERSION,
    )
    return EdgeRequest(web_log, decision, checked)
