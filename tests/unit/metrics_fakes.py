"""``RecordingMetrics``: a ``Metrics`` that keeps what it was asked to send, for assertions.

It checks every name against the catalogue as the real one does (so a test fails on an
undeclared metric) but sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from botscore.metrics import Metrics
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component


class RecordingMetrics(Metrics):
    def __init__(self, component: Component, *_: object, **__: object) -> None:
        super().__init__(MetricsSettings(enabled=False), component)
        # (kind, what, value, tags) in the order sent.
        self.sent: list[tuple[str, str, float, tuple[str, ...]]] = []

    def count(self, what: str, value: int = 1, tags: Sequence[str] = ()) -> None:
        super().count(what, value, tags)
        self.sent.append(("count", what, value, tuple(tags)))

    def histogram(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        super().histogram(what, value, tags)
        self.sent.append(("histogram", what, value, tuple(tags)))

    def gauge(self, what: str, value: float, tags: Sequence[str] = ()) -> None:
        super().gauge(what, value, tags)
        self.sent.append(("gauge", what, value, tuple(tags)))

    def gauges(self, what: str) -> dict[tuple[str, ...], float]:
        """The last value of gauge ``what`` for each tag set."""
        return {
            tags: value for kind, name, value, tags in self.sent if (kind, name) == ("gauge", what)
        }

    def counted(self, what: str) -> float:
        return sum(value for kind, name, value, _ in self.sent if (kind, name) == ("count", what))

    def counted_by(self, what: str, key: str) -> dict[str, float]:
        """Count ``what`` summed per value of tag ``key``."""
        found: dict[str, float] = {}
        for kind, name, value, tags in self.sent:
            if (kind, name) == ("count", what):
                for tag in tags:
                    if tag.startswith(f"{key}:"):
                        group = tag.split(":", 1)[1]
                        found[group] = found.get(group, 0) + value
        return found
