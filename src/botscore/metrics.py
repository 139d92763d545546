"""DogStatsD metrics under one naming scheme: ``botscore.<component>.<what>``.

Every component gets its own ``Metrics`` with constant tags, and may only send what
``observability.catalog`` declares for it, so dashboards can rely on names and tags not
drifting. Sending is UDP fire-and-forget: a missing
agent never slows or breaks scoring. The agent's name is looked up here, not by the client:
the client looks it up for every datagram, and a name that does not resolve then costs a
failed lookup per datagram (measured: 1,000 calls took 15 s).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from datadog.dogstatsd.base import DogStatsd

from botscore.observability.catalog import Kind, spec_for
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component

__all__ = ["Metrics", "storm_tags"]

log = logging.getLogger(__name__)

# How long a process sends nothing after the agent's name failed to resolve.
RESOLVE_RETRY_S = 60.0


def resolve_agent(host: str, port: int) -> str | None:
    """The agent's address, or None (logged) when ``host`` does not resolve."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        log.warning(
            "DogStatsD agent %s:%s does not resolve (%s): no metrics for %.0f s",
            host,
            port,
            exc,
            RESOLVE_RETRY_S,
        )
        return None
    return str(found[0][4][0])


class Metrics:
    def __init__(
        self, settings: MetricsSettings, component: Component, tags: Sequence[str] = ()
    ) -> None:
        self.component = component
        self._settings = settings
        self._tags = [f"component:{component}", *tags]
        self._statsd: DogStatsd | None = None
        self._retry_at = 0.0
        if settings.enabled:
            # Without an agent every dropped datagram would log a warning, per tuple.
            logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
            self._connect()

    @property
    def tags(self) -> list[str]:
        """The tags on every metric sent (``key:value``), but the agent's ``env``."""
        return list(self._tags)

    def _connect(self) -> None:
        address = resolve_agent(self._settings.statsd_host, self._settings.statsd_port)
        if address is None:
            self._retry_at = time.monotonic() + RESOLVE_RETRY_S
            return
        self._statsd = DogStatsd(
            host=address,
            port=self._settings.statsd_port,
            namespace=self._settings.namespace,
            constant_tags=self._tags,
            disable_telemetry=True,
            # One datagram per flush interval instead of one per call.
            disable_buffering=False,
        )

    def _client(self) -> DogStatsd | None:
        if self._statsd is None and self._settings.enabled and time.monotonic() >= self._retry_at:
            self._connect()
        return self._statsd

    def count(self, what: str, value: int = 1, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.COUNT)
        if (client := self._client()) is not None:
            client.increment(f"{self.component}.{what}", value, tags=list(tags))

    def histogram(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.HISTOGRAM)
        if (client := self._client()) is not None:
            client.histogram(f"{self.component}.{what}", value, tags=list(tags))

    def gauge(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.GAUGE)
        if (client := self._client()) is not None:
            client.gauge(f"{self.component}.{what}", value, tags=list(tags))

    def flush(self) -> None:
        """Send what the client buffered now (a short-lived command exits before its timer)."""
        if self._statsd is not None:
            self._statsd.flush()

    def close(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()
            self._statsd.close_socket()


def storm_tags(storm_conf: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """Which topology and task a Storm component's metrics come from: executors of one
    component differ only by task, and two submitted topologies only by name."""
    return [
        f"topology:{storm_conf.get('topology.name', 'unknown')}",
        f"task:{context.get('taskid', 'unknown')}",
    ]
