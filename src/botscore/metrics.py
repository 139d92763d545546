"""DogStatsD metrics under one naming scheme: ``botscore.<component>.<what>``.

Every component gets its own ``Metrics`` with constant tags, and may only send what
``observability.catalog`` declares for it, so dashboards can rely on names and tags not
drifting. Sending is UDP fire-and-forget: a missing
agent never slows or breaks scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from datadog.dogstatsd.base import DogStatsd

from botscore.observability.catalog import Kind, spec_for
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component

__all__ = ["Metrics"]


class Metrics:
    def __init__(
        self, settings: MetricsSettings, component: Component, tags: Sequence[str] = ()
    ) -> None:
        self.component = component
        self._statsd: DogStatsd | None = None
        if settings.enabled:
            self._statsd = DogStatsd(
                host=settings.statsd_host,
                port=settings.statsd_port,
                namespace=settings.namespace,
                constant_tags=[f"component:{component}", *tags],
                disable_telemetry=True,
                # One datagram per flush interval instead of one per call.
                disable_buffering=False,
            )
            # Without an agent every dropped datagram would log a warning, per tuple.
            logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)

    def count(self, what: str, value: int = 1, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.COUNT)
        if self._statsd is not None:
            self._statsd.increment(f"{self.component}.{what}", value, tags=list(tags))

    def histogram(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.HISTOGRAM)
        if self._statsd is not None:
            self._statsd.histogram(f"{self.component}.{what}", value, tags=list(tags))

    def gauge(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        spec_for(self.component, what, Kind.GAUGE)
        if self._statsd is not None:
            self._statsd.gauge(f"{self.component}.{what}", value, tags=list(tags))

    def flush(self) -> None:
        """Send what the client buffered now (a short-lived command exits before its timer)."""
        if self._statsd is not None:
            self._statsd.flush()

    def close(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()
            self._statsd.close_socket()
