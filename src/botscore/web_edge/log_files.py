"""Whole access-log files read at once, for offline work on logs already written.

The shipper follows one growing file; this reads finished ones (gzip-compressed too, as
logrotate leaves them) with the same line readers, keeping every refused line's reason and
place. Users are named with a key of its own (``OFFLINE_KEYS``): the ids stay the same from
one read to the next, and say nothing about the edge's real ids. The requests are kept
serialized (``RequestLog``): a parsed ``WebLog`` takes about five times the memory.
"""

from __future__ import annotations

import gzip
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from botscore.errors import ConfigError, InvalidMessage, UnreadableLine
from botscore.settings import AccessLogFormat
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision
from botscore.web_edge.access_log import Networks
from botscore.web_edge.identity import EdgeKeys
from botscore.web_edge.log_formats import LineReader, line_reader
from botscore.wire.codec import check_web_log

__all__ = ["OFFLINE_KEYS", "LogRead", "RequestLog", "read_log_files"]

OFFLINE_KEYS = EdgeKeys("botscore: users of access logs read offline")
# Refused lines quoted in full; the rest are only counted.
QUOTED_REFUSALS = 20
# How far past the moment of reading a logged time may be: the live feature stage's default
# (``aggregation.max_event_skew_ms``). A log is read after it was written.
OFFLINE_MAX_SKEW_MS = 60_000


class RequestLog(Sequence[WebLog]):
    """Requests in the order added, each kept serialized (about 300 bytes, against 1.2 KB
    parsed) and parsed again when read, with every request's time at hand for sorting."""

    def __init__(self) -> None:
        self._serialized: list[bytes] = []
        self._times = array("q")

    def append(self, log: WebLog) -> None:
        self._serialized.append(log.SerializeToString())
        self._times.append(log.time_unix_ms)

    def __len__(self) -> int:
        return len(self._serialized)

    @overload
    def __getitem__(self, index: int) -> WebLog: ...

    @overload
    def __getitem__(self, index: slice) -> list[WebLog]: ...

    def __getitem__(self, index: int | slice) -> WebLog | list[WebLog]:
        if isinstance(index, slice):
            return [WebLog.FromString(data) for data in self._serialized[index]]
        return WebLog.FromString(self._serialized[index])

    @property
    def times_ms(self) -> np.ndarray:
        """Each request's ``time_unix_ms``, in the order added."""
        return np.array(self._times, dtype=np.int64)


@dataclass
class LogRead:
    """The requests of some log files, in the files' order, and what was not one."""

    logs: RequestLog = field(default_factory=RequestLog)
    lines: int = 0
    # lines the edge blocked: never served, so the feature stage never counts them
    blocked: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # reason -> lines
    # "<file>:<line number>: <reason: detail>", the first QUOTED_REFUSALS
    refusals: list[str] = field(default_factory=list)

    def refuse(self, place: str, reason: str, text: str) -> None:
        self.refused[reason] += 1
        if len(self.refusals) < QUOTED_REFUSALS:
            self.refusals.append(f"{place}: {text}")


def read_log_files(
    paths: Sequence[Path], log_format: AccessLogFormat, datacenters: Networks
) -> LogRead:
    """Every line of ``paths`` (``.gz`` ones decompressed) read as ``log_format``."""
    read = LogRead()
    for path in paths:
        try:
            _read_file(path, line_reader(log_format, datacenters, OFFLINE_KEYS, path.name), read)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ConfigError(f"cannot read the access log {path}: {exc}") from exc
    return read


def _read_file(path: Path, reader: LineReader, read: LogRead) -> None:
    """Add ``path``'s lines to ``read``, a line at a time (a log may not fit in memory as
    text; its requests must)."""
    read_at_ms = int(time.time() * 1000)
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as lines:
        end = 0
        for number, line in enumerate(lines, 1):
            end += len(line)
            place = f"{path.name}:{end}"  # as the shipper names it: where the line ends
            line = line.rstrip(b"\n")
            if not line.strip():
                continue
            read.lines += 1
            try:
                request = reader(line, place)
            except UnreadableLine as exc:
                read.refuse(f"{path}:{number}", exc.reason, str(exc))
                continue
            if request.decision is Decision.BLOCK:
                read.blocked += 1
                continue
            try:
                # as the live feature stage would refuse it (a time in the future, a size
                # past what it counts), with the same reason; old logs are what it reads
                check_web_log(request.web_log, read_at_ms, OFFLINE_MAX_SKEW_MS, max_age_ms=None)
            except InvalidMessage as exc:
                read.refuse(f"{path}:{number}", str(exc.reason), str(exc))
                continue
            read.logs.append(request.web_log)
