"""Run a simulation onto Kafka: WebLogs keyed by user id, paced to the wall clock.

Event times are the simulated clock started at the wall clock, and simulated second ``s``
is sent at wall second ``s / speedup``: at speedup 1 event time and arrival time agree for
the feature stage and the enforcement loop; above 1 a simulated hour takes minutes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from botscore.clock import now_ms
from botscore.enforcement.edge import EdgeDecisions
from botscore.errors import BotscoreError
from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.simulator.labels import write_labels
from botscore.simulator.population import population_for
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.stats import SimulationStats
from botscore.simulator.status import StatusLine, status_text
from botscore.simulator.traffic import TrafficGenerator, always_allow
from botscore.transport.kafka_clients import create_producer, ensure_topics
from botscore.vocabulary import Component

__all__ = ["SimulationStats", "simulate"]

# Sleeping for less than this costs more than it saves at high rates.
_MIN_SLEEP_S = 0.002


Clock = Callable[[], float]
Sleep = Callable[[float], None]


class _Live:
    """The wall-clock side of a run: paces requests and refreshes what it shows.

    ``clock`` (seconds, monotonic) and ``sleep`` are the wall clock's, so a test can pace
    a run on simulated wall time.
    """

    def __init__(
        self,
        stats: SimulationStats,
        speedup: float,
        edge: EdgeDecisions | None,
        status: StatusLine | None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        *,
        start_ms: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        self.stats = stats
        self.speedup = speedup
        self.edge = edge
        self.status = status
        self.clock = clock
        self.sleep = sleep
        self.start_ms = start_ms  # event time of simulated second 0
        self.metrics = metrics
        # The enforcer's counter outlives runs: this run's scores are what it adds.
        self._scored_before = self._users_scored_total() or 0
        self.started = clock()
        self._sim_s = 0.0
        self._last_tick, self._last_requests = self.started, 0
        self._next_tick = self.started + 1.0

    def wait_until(self, sim_s: float) -> None:
        """Sleep until simulated second ``sim_s`` is due; refresh once a wall second."""
        self._sim_s = sim_s
        delay = self.started + sim_s / self.speedup - self.clock()
        if delay > _MIN_SLEEP_S:
            self.sleep(delay)
        now = self.clock()
        if now >= self._next_tick:
            self.tick(now)

    def tick(self, now: float) -> None:
        self._record_decision_latencies()
        total = self._users_scored_total()
        scored = None if total is None else total - self._scored_before
        if self.stats.first_scores_s is None:
            if scored:
                self.stats.first_scores_s = self._sim_s
            elif scored is not None:
                self.stats.unscored_until_s = self._sim_s
        requests = self.stats.sent + self.stats.blocked  # what the edge received
        if self.status is not None:
            wall_rate = (requests - self._last_requests) / max(now - self._last_tick, 1e-9)
            self.status.show(status_text(self.stats, self._sim_s, wall_rate, scored))
        self._last_tick, self._last_requests = now, requests
        self._next_tick = now + 1.0

    def _record_decision_latencies(self) -> None:
        """Wall seconds from each new decision's last counted request to the edge seeing it.

        Simulated second ``s`` (event time ``start_ms + 1000 s``) is sent at wall time
        ``started + s / speedup``: event times map back to the wall clock through that.
        """
        if self.edge is None:
            return
        for new in self.edge.take_new_decisions():
            request_at = self.started + (new.feature_time_ms - self.start_ms) / 1000 / self.speedup
            latency_s = new.seen_at - request_at
            self.stats.decision_latencies_s.append(latency_s)
            if self.metrics is not None:
                self.metrics.histogram(
                    "decision_latency_seconds", latency_s, tags=[f"decision:{new.decision}"]
                )

    def _users_scored_total(self) -> int | None:
        counters = self.edge.stats() if self.edge is not None else None
        return None if counters is None else counters.get("users_scored", 0)


def simulate(
    settings: Settings,
    spec: SimulationSpec,
    labels_path: str | Path,
    *,
    progress: bool = False,
    topic: str | None = None,
    edge: EdgeDecisions | None = None,
    start_unix_ms: int | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> SimulationStats:
    """Produce ``spec.rate`` WebLogs per simulated second for ``spec.duration_s`` seconds.

    ``topic`` defaults to the aggregation's web-logs topic. With ``edge`` every request
    gets the edge's decision at send time. ``progress`` shows the status line on stderr.
    The labels file is written first, so the ground truth exists even if the run is
    interrupted. Ctrl-C (``KeyboardInterrupt``) ends the run early, with the figures so
    far. ``clock`` and ``sleep`` pace the run (see ``_Live``). Raises
    ``BotscoreError`` when Kafka did not confirm every message.
    """
    topic = topic or settings.aggregation.web_logs_topic
    population = population_for(spec)
    write_labels(population, labels_path)
    ensure_topics(settings.kafka, [topic])
    producer = create_producer(settings.kafka, client_id=f"botscore-{Component.SIMULATOR}")
    failures: list[BaseException] = []
    # Taken after the set-up, so the first events are due now, not a set-up ago.
    wall_start_ms = now_ms() if start_unix_ms is None else start_unix_ms
    generator = TrafficGenerator.from_spec(
        population,
        spec,
        wall_start_ms,
        decision_for=edge.decision_for if edge is not None else always_allow,
        # ``live`` needs the generator's stats; it exists before the first request.
        pace=lambda sim_s: live.wait_until(sim_s),
    )
    status = StatusLine(sys.stderr, clock=clock) if progress else None
    metrics = Metrics(settings.metrics, Component.EDGE) if edge is not None else None
    live = _Live(
        generator.stats,
        spec.speedup,
        edge,
        status,
        clock,
        sleep,
        start_ms=wall_start_ms,
        metrics=metrics,
    )
    try:
        try:
            for event in generator:
                future = producer.send(
                    topic, key=event.user_id.encode(), value=event.SerializeToString()
                )
                future.add_errback(failures.append)
        except KeyboardInterrupt:
            # Stopped by hand: what was sent is flushed and counted, so the figures of the
            # run so far still come out.
            pass
        producer.flush()
        live.tick(clock())
    finally:
        if status is not None:
            status.close()
        if metrics is not None:
            metrics.close()
        producer.close(timeout=5)
    if failures:
        raise BotscoreError(
            f"{len(failures)} of {generator.stats.sent} WebLogs not confirmed by Kafka: "
            f"{failures[0]!r}"
        )
    return generator.stats
