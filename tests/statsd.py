"""A real DogStatsD listener for tests: a UDP socket on loopback that keeps every metric line.

The components send with the ``datadog`` package's client, buffered: one datagram carries
several ``name:value|type|#tag,...`` lines. Each line is kept with the moment it arrived.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from botscore.observability.statsd_lines import Sample, parse_line


@dataclass(frozen=True)
class Point:
    """One value as received: when (``time.monotonic()``), what, and its tags."""

    at: float
    sample: Sample

    @property
    def value(self) -> float:
        return self.sample.value

    def tag(self, key: str) -> str | None:
        return self.sample.tag(key)


class StatsdListener:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._receive, daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65_535)
            except TimeoutError:
                continue
            now = time.monotonic()
            with self._lock:
                self._lines.extend((now, line) for line in data.decode().splitlines() if line)

    def _points(self) -> list[Point]:
        with self._lock:
            lines = list(self._lines)
        parsed = ((at, parse_line(line)) for at, line in lines)
        return [Point(at, sample) for at, sample in parsed if sample is not None]

    def tags_by_metric(self) -> dict[str, set[str]]:
        """Each metric name received -> every tag (``key:value``) it was sent with."""
        tags: dict[str, set[str]] = defaultdict(set)
        for point in self._points():
            tags[point.sample.name].update(point.sample.tags)
        return dict(tags)

    def points(self, name: str) -> list[Point]:
        """Every value of metric ``name`` received so far, in arrival order."""
        return [p for p in self._points() if p.sample.name == name]
