"""The key figures of a running loop, computed from the same DogStatsD datagrams Datadog
gets: what `botscore top` shows for users without Datadog.

Each ``Panel`` names a metric (a glob over the catalogue's names, so one panel can sum the
dead letters of every component) and how to reduce it over a sliding window: a rate per
second of counts, a 99th percentile of a histogram (in ms), or the largest latest value of
a gauge per tag set (consumer lag per partition), or how long a component that sends a
gauge on a timer (consumer lag) has sent nothing: a hung consumer sends no lag, so without
that it would merely vanish from the lag panel, as if idle. Nothing here reads a socket or a
clock: callers pass the samples and the moments, so every figure is a plain function of its
input.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from botscore.observability.statsd_lines import Sample
from botscore.settings import KafkaSettings

__all__ = ["PANELS", "LocalView", "Panel", "Reduce", "render", "silent_after"]


class Reduce(StrEnum):
    RATE = "rate"  # counts per second over the window
    P99_MS = "p99_ms"  # 99th percentile of a histogram of seconds, in milliseconds
    MAX_LATEST = "max_latest"  # per series (name and tags) the latest gauge, then the largest
    # per component that ever sent the metric, seconds since it last sent any metric, shown
    # once that is more than the view's ``silent_after_s``
    SILENT_S = "silent_s"


@dataclass(frozen=True)
class Panel:
    title: str
    metric: str  # a name or a glob (``fnmatch``) over full metric names
    reduce: Reduce
    by: str | None = None  # a tag to show the figure per value of
    # What a graph's y axis counts, where the reduction does not say (a gauge's unit).
    axis: str | None = None

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.metric)


PANELS: tuple[Panel, ...] = (
    Panel("edge requests read", "botscore.web_logs_spout.in", Reduce.RATE),
    Panel("requests folded into state", "botscore.aggregate.applied", Reduce.RATE),
    Panel("users' features published", "botscore.publisher.emitted", Reduce.RATE),
    Panel("users scored", "botscore.classifier.scored", Reduce.RATE),
    Panel("live model (users scored)", "botscore.classifier.scored", Reduce.RATE, by="model"),
    Panel("scores on Kafka", "botscore.score_producer.sent", Reduce.RATE),
    Panel("scores enforced", "botscore.enforcer.scores", Reduce.RATE, by="outcome"),
    Panel("dead letters", "botscore.*.dead_lettered", Reduce.RATE, by="reason"),
    Panel("model call p99", "botscore.classifier.predict_seconds", Reduce.P99_MS),
    Panel("request to decision p99", "botscore.edge.decision_latency_seconds", Reduce.P99_MS),
    Panel("Redis round trip p99", "botscore.aggregate.redis_seconds", Reduce.P99_MS),
    Panel(
        "consumer lag (largest partition)",
        "botscore.*.lag",
        Reduce.MAX_LATEST,
        by="component",
        axis="messages",
    ),
    Panel("components silent", "botscore.*.lag", Reduce.SILENT_S, by="component"),
    Panel("nginx's gate answers", "botscore.edge.requests", Reduce.RATE, by="answer"),
    Panel(
        "access log not shipped (bytes)",
        "botscore.log_shipper.unshipped_bytes",
        Reduce.MAX_LATEST,
        axis="bytes",
    ),
    # Nimbus's figures, when `botscore storm --send` runs beside a cluster (none in local mode).
    Panel(
        "Storm topologies (workers)",
        "botscore.storm.workers",
        Reduce.MAX_LATEST,
        by="topology",
        axis="workers",
    ),
    Panel(
        "Storm component capacity",
        "botscore.storm.capacity",
        Reduce.MAX_LATEST,
        by="storm_component",
        axis="share of time executing",
    ),
)

UNIT = {Reduce.RATE: "/s", Reduce.P99_MS: " ms", Reduce.MAX_LATEST: "", Reduce.SILENT_S: " s"}

Figures = dict[str, dict[str, float]]  # panel title -> group ("" when not split) -> value


def silent_after(lag_interval_ms: int) -> float:
    """How long a consumer may send nothing before it is shown silent.

    Consumers send their lag every ``kafka.lag_interval_ms``, idle or not, but a report may
    come up to about 2 s late (a 0.5 s poll, the end offsets' 1 s timeout, the client's 0.3 s
    buffer). Past two intervals and those 2 s, at least one report was missed, not delayed.
    """
    return 2 * lag_interval_ms / 1000 + 2.0


class LocalView:
    """Samples of the last ``window_s`` seconds, reduced to each panel's figure on demand;
    ``snapshot`` also keeps each figure's history for a graph after the run."""

    def __init__(
        self,
        window_s: float = 10.0,
        panels: Sequence[Panel] = PANELS,
        silent_after_s: float = silent_after(KafkaSettings().lag_interval_ms),
    ) -> None:
        self.window_s = window_s
        self.panels = tuple(panels)
        self.silent_after_s = silent_after_s
        self.history: list[tuple[float, Figures]] = []
        self._samples: deque[tuple[float, Sample]] = deque()
        self._latest: dict[tuple[str, frozenset[str]], tuple[float, float]] = {}
        self._heard: dict[str, float] = {}  # component -> when it last sent anything
        self._started: float | None = None

    def add(self, samples: Iterable[Sample], at: float) -> None:
        if self._started is None:
            self._started = at
        for sample in samples:
            # any metric, on a panel or not, shows its component is alive
            component = _tag(sample.tags, "component")
            if component is not None:
                self._heard[component] = at
            if not any(panel.matches(sample.name) for panel in self.panels):
                continue
            if sample.kind == "g":
                self._latest[(sample.name, sample.tags)] = (at, sample.value)
            else:
                self._samples.append((at, sample))

    def figures(self, now: float) -> Figures:
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        # a rate over the time actually watched (at least a second), not over a window
        # longer than that
        watched = now - self._started if self._started is not None else 0.0
        span = min(self.window_s, max(watched, 1.0))
        return {panel.title: self._reduce(panel, now, span) for panel in self.panels}

    def snapshot(self, now: float) -> Figures:
        figures = self.figures(now)
        self.history.append((now, figures))
        return figures

    def _reduce(self, panel: Panel, now: float, span: float) -> dict[str, float]:
        if panel.reduce is Reduce.MAX_LATEST:
            largest: dict[str, float] = {}
            for (name, tags), (at, value) in self._latest.items():
                if panel.matches(name) and at >= now - self.window_s:
                    group = _group(panel, tags)
                    largest[group] = max(value, largest.get(group, value))
            return largest
        if panel.reduce is Reduce.SILENT_S:
            watched = {
                _tag(tags, "component") for name, tags in self._latest if panel.matches(name)
            }
            silent = {c: now - self._heard[c] for c in watched if c is not None}
            return {c: s for c, s in silent.items() if s > self.silent_after_s}
        grouped: dict[str, list[Sample]] = {}
        for _, sample in self._samples:
            if panel.matches(sample.name):
                grouped.setdefault(_group(panel, sample.tags), []).append(sample)
        if panel.reduce is Reduce.RATE:
            return {g: sum(s.count for s in found) / span for g, found in grouped.items()}
        return {
            g: float(np.percentile([s.value for s in found], 99)) * 1000
            for g, found in grouped.items()
        }


def _group(panel: Panel, tags: frozenset[str]) -> str:
    if panel.by is None:
        return ""
    found = _tag(tags, panel.by)
    return "?" if found is None else found


def _tag(tags: frozenset[str], key: str) -> str | None:
    prefix = f"{key}:"
    return next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None)


def render(figures: Figures, panels: Sequence[Panel] = PANELS) -> str:
    """One line per panel: its figure, or each group's, or ``-`` when nothing arrived."""
    lines = []
    for panel in panels:
        values = figures.get(panel.title, {})
        unit = UNIT[panel.reduce]
        if not values:
            shown = "-"
        elif panel.by is None:
            shown = f"{values['']:,.1f}{unit}"
        else:
            shown = ", ".join(f"{g} {v:,.1f}{unit}" for g, v in sorted(values.items()))
        lines.append(f"{panel.title:<34} {shown}")
    return "\n".join(lines)
