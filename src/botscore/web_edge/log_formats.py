"""Which reader turns an access log's lines into requests: one per ``AccessLogFormat``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from botscore.errors import UnreadableLine
from botscore.settings import AccessLogFormat
from botscore.web_edge.access_log import EdgeRequest, Networks, read_line
from botscore.web_edge.combined_log import read_combined_line
from botscore.web_edge.identity import EdgeKeys

__all__ = ["MAX_LINE_BYTES", "LineReader", "line_reader"]

# (line, its place: the server, the file and the offset) -> the request it logs; raises
# ``UnreadableLine``. The place names requests in a format that logs no request id.
LineReader = Callable[[bytes, str], EdgeRequest]
# nginx and Apache refuse a request line or header over 8 KiB by default, so a logged
# request stays well within this; a longer line is no request, and as one message it could
# exceed what Kafka accepts (1 MiB by default), which would stall the shipper on it.
MAX_LINE_BYTES = 64 * 1024


def line_reader(
    log_format: AccessLogFormat, datacenters: Networks, keys: EdgeKeys, node: str
) -> LineReader:
    """The reader of ``log_format``'s lines, written by edge server ``node``; a line longer
    than ``MAX_LINE_BYTES`` is refused first, whatever the format."""
    if log_format == "combined":
        read = partial(_combined, datacenters=datacenters, keys=keys, node=node)
    else:
        read = partial(_botscore, datacenters=datacenters, keys=keys)
    return partial(_within_limit, read=read)


def _within_limit(line: bytes, place: str, *, read: LineReader) -> EdgeRequest:
    if len(line) > MAX_LINE_BYTES:
        raise UnreadableLine(
            "too_long",
            f"{len(line)} bytes, more than {MAX_LINE_BYTES}: longer than a server's request "
            "limits allow, and a message Kafka might refuse for good",
        )
    try:
        return read(line, place)
    except (ValueError, OverflowError, RecursionError) as exc:
        # A value the reader's own checks did not foresee: still one line's fault, so it
        # costs that line, not the shipper (which would stop at it on every restart).
        raise UnreadableLine("bad_field", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def _combined(
    line: bytes, place: str, *, datacenters: Networks, keys: EdgeKeys, node: str
) -> EdgeRequest:
    return read_combined_line(line, datacenters, keys, place, node)


def _botscore(line: bytes, place: str, *, datacenters: Networks, keys: EdgeKeys) -> EdgeRequest:
    return read_line(line, datacenters, keys)  # its lines carry nginx's request id
