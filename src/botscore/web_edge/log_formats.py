"""Which reader turns an access log's lines into requests: one per ``AccessLogFormat``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from botscore.settings import AccessLogFormat
from botscore.web_edge.access_log import EdgeRequest, Networks, read_line
from botscore.web_edge.combined_log import read_combined_line
from botscore.web_edge.identity import EdgeKeys

__all__ = ["LineReader", "line_reader"]

# (line, its place: the server, the file and the offset) -> the request it logs; raises
# ``UnreadableLine``. The place names requests in a format that logs no request id.
LineReader = Callable[[bytes, str], EdgeRequest]


def line_reader(
    log_format: AccessLogFormat, datacenters: Networks, keys: EdgeKeys, node: str
) -> LineReader:
    """The reader of ``log_format``'s lines, written by edge server ``node``."""
    if log_format == "combined":
        return partial(_combined, datacenters=datacenters, keys=keys, node=node)
    return partial(_botscore, datacenters=datacenters, keys=keys)


def _combined(
    line: bytes, place: str, *, datacenters: Networks, keys: EdgeKeys, node: str
) -> EdgeRequest:
    return read_combined_line(line, datacenters, keys, place, node)


def _botscore(line: bytes, place: str, *, datacenters: Networks, keys: EdgeKeys) -> EdgeRequest:
    return read_line(line, datacenters, keys)  # its lines carry nginx's request id
