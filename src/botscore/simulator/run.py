"""Run a simulation onto Kafka: WebLogs keyed by user id, paced to the wall clock.

Event times are the simulated clock started at the wall clock, and simulated second ``s``
is sent at wall second ``s / speedup``: at speedup 1 event time and arrival time agree for
the feature stage and the enforcement loop; above 1 a simulated hour takes minutes.

While Kafka leaves WebLogs unconfirmed (``sends``: a broker outage), simulated time stands
still: no request is made, and afterwards the run goes on from where it stopped rather than
rushing to catch up. Caught up, requests would be stamped in the past and decided by the
edge late, with scores that came in meanwhile, and a bot would look blocked sooner than it
was; stopped, every visitor's requests and the edge's decisions on them are what they would
have been, only sent later.
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

from botscore.clock import now_ms
from botscore.enforcement.edge import EdgeDecisions
from botscore.errors import BotscoreError
from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.simulator.labels import write_labels
from botscore.simulator.population import population_for
from botscore.simulator.sends import MAX_UNCONFIRMED, WebLogSends
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.stats import SimulationStats
from botscore.simulator.status import StatusLine, status_text
from botscore.simulator.traffic import TrafficGenerator, always_allow
from botscore.transport.delivery import FLUSH_MARGIN_S
from botscore.transport.kafka_clients import create_producer, ensure_topics
from botscore.vocabulary import Component

__all__ = ["SimulationStats", "simulate"]

# Sleeping for less than this costs more than it saves at high rates.
_MIN_SLEEP_S = 0.002
# How often a held run looks at Kafka's answers.
_HOLD_POLL_S = 0.1


Clock = Callable[[], float]
Sleep = Callable[[float], None]


class _Live:
    """The wall-clock side of a run: paces requests and refreshes what it shows.

    ``clock`` (seconds, monotonic) and ``sleep`` are the wall clock's, so a test can pace
    a run on simulated wall time. While ``sends`` holds, simulated time stands still (see
    the module's docstring); without it nothing is sent, only paced.
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
        sends: WebLogSends | None = None,
    ) -> None:
        self.stats = stats
        self.speedup = speedup
        self.edge = edge
        self.status = status
        self.clock = clock
        self.sleep = sleep
        self.start_ms = start_ms  # event time of simulated second 0
        self.metrics = metrics
        self.sends = sends
        # The enforcer's counter outlives runs: this run's scores are what it adds.
        self._scored_before = self._users_scored_total() or 0
        self.started = clock()
        self._sim_s = 0.0
        self._last_tick, self._last_requests = self.started, 0
        self._next_tick = self.started + 1.0
        # Wall seconds simulated time stood still so far; and per stop, the event time of
        # the first request sent after it, and the wall seconds stood still until then.
        self._paused_s = 0.0
        self._resumed_at_ms: list[int] = []
        self._paused_by: list[float] = []

    def wait_until(self, sim_s: float) -> None:
        """Sleep until simulated second ``sim_s`` is due; refresh once a wall second."""
        self._sim_s = sim_s
        if self.sends is not None:
            self._hold(sim_s, self.sends)
        delay = self.started + self._paused_s + sim_s / self.speedup - self.clock()
        if delay > _MIN_SLEEP_S:
            self.sleep(delay)
        now = self.clock()
        if now >= self._next_tick:
            self.tick(now)

    def _hold(self, sim_s: float, sends: WebLogSends) -> None:
        """Make no request while ``sends`` holds; then go on from ``sim_s`` unhurried."""
        held_from = self.clock()
        sends.update(held_from)
        if not sends.holding:
            return
        while sends.holding:
            self.sleep(_HOLD_POLL_S)
            now = self.clock()
            sends.update(now)
            if now >= self._next_tick:
                self.tick(now)
        due = self.started + self._paused_s + sim_s / self.speedup
        paused = self.clock() - max(held_from, due)
        if paused > 0:
            self._paused_s += paused
            # The generator's stamp of the request held here, the first sent after the stop.
            self._resumed_at_ms.append(self.start_ms + int(sim_s * 1000))
            self._paused_by.append(self._paused_s)

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
            resending = 0 if self.sends is None else self.sends.resending
            self.status.show(status_text(self.stats, self._sim_s, wall_rate, scored, resending))
        self._last_tick, self._last_requests = now, requests
        self._next_tick = now + 1.0

    def _record_decision_latencies(self) -> None:
        """Wall seconds from each new decision's last counted request to the edge seeing it.

        Simulated second ``s`` (event time ``start_ms + 1000 s``) is sent at wall time
        ``started + s / speedup``, later by the stops before it: event times map back to
        the wall clock through that.
        """
        if self.edge is None:
            return
        for new in self.edge.take_new_decisions():
            stops = bisect_right(self._resumed_at_ms, new.feature_time_ms)
            paused = self._paused_by[stops - 1] if stops else 0.0
            sim_s = (new.feature_time_ms - self.start_ms) / 1000
            request_at = self.started + paused + sim_s / self.speedup
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
    far. ``clock`` and ``sleep`` pace the run (see ``_Live``). What Kafka does not confirm
    is sent again until it is (``sends``); raises ``BotscoreError`` when some WebLogs are
    still unconfirmed after a last wait of a delivery timeout and a margin at the end.
    """
    topic = topic or settings.aggregation.web_logs_topic
    population = population_for(spec)
    write_labels(population, labels_path)
    ensure_topics(settings.kafka, [topic])
    producer = create_producer(settings.kafka, client_id=f"botscore-{Component.SIMULATOR}")
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
    sends = WebLogSends(producer, topic, generator.stats, MAX_UNCONFIRMED)
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
        sends=sends,
    )
    final_wait_s = settings.kafka.producer_delivery_timeout_ms / 1000 + FLUSH_MARGIN_S
    try:
        try:
            for event in generator:
                sends.send(event.user_id.encode(), event.SerializeToString())
        except KeyboardInterrupt:
            # Stopped by hand: what was sent is confirmed and counted, so the figures of
            # the run so far still come out.
            pass
        unconfirmed = sends.finish(final_wait_s, clock, sleep)
        live.tick(clock())
    finally:
        if status is not None:
            status.close()
        if metrics is not None:
            metrics.close()
        producer.close(timeout=5)
    if unconfirmed:
        raise BotscoreError(
            f"{unconfirmed} of {generator.stats.sent} WebLogs not confirmed by Kafka, "
            f"the last {final_wait_s:.0f} s spent waiting for them: {sends.last_error!r}"
        )
    return generator.stats
