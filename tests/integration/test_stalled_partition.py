"""A stalled partition shows: a hung classifier raises the spout's lag past its monitor's threshold.

The scoring topology runs under `sparse run` with its metrics going to a real UDP listener.
Once it has scored a first stream, the classifier is stopped (SIGSTOP: it hangs, alive) while
a burst arrives on partition 0. The features spout's own lag gauge must rise past the
threshold of ``monitoring/monitors/scoring_lag.json`` within a minute, and that monitor's
query, evaluated over the received values, must fire for partition 0 (and not before).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.statsd import Point, StatsdListener

from .harness import (
    ROOT,
    delete_topics,
    fresh_topics,
    run_topics,
    scoring_group,
    wait_committed_to_end,
)
from .stream import SupervisedTopology, produce, valid_users

pytestmark = [pytest.mark.integration, pytest.mark.metrics]

MONITOR = ROOT / "monitoring/monitors/scoring_lag.json"
_QUERY = re.compile(
    r"^(?P<time_agg>avg|max|min|sum)\(last_(?P<n>\d+)(?P<unit>[mh])\):"
    r"(?P<space_agg>avg|max|min|sum):(?P<metric>[a-z0-9_.]+)\{\*\}"
    r"(?: by \{(?P<by>[^}]*)\})?\s*(?P<op>>=|>)\s*(?P<threshold>[0-9.]+)$"
)
_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "avg": lambda values: sum(values) / len(values),
    "max": max,
    "min": min,
    "sum": sum,
}


@dataclass(frozen=True)
class _Alert:
    """A metric query alert as Datadog evaluates it, over the points one listener received.

    Each group (the ``by`` tags) is one sender here, so the space aggregation is the identity.
    """

    metric: str
    time_agg: str
    window_s: float
    by: tuple[str, ...]
    above: float
    inclusive: bool

    @classmethod
    def from_monitor(cls, body: dict) -> _Alert:
        match = _QUERY.match(body["query"])
        assert match, f"a query this test cannot evaluate: {body['query']}"
        above = float(match["threshold"])
        assert above == body["options"]["thresholds"]["critical"], "query and critical differ"
        return cls(
            metric=match["metric"],
            time_agg=match["time_agg"],
            window_s=int(match["n"]) * (60 if match["unit"] == "m" else 3600),
            by=tuple(k.strip() for k in (match["by"] or "").split(",") if k.strip()),
            above=above,
            inclusive=match["op"] == ">=",
        )

    def firing(self, points: list[Point], now: float) -> dict[tuple[str | None, ...], float]:
        """The groups whose aggregate over the window ending ``now`` breaches the threshold."""
        groups: dict[tuple[str | None, ...], list[float]] = {}
        for point in points:
            if now - self.window_s <= point.at <= now:
                groups.setdefault(tuple(point.tag(k) for k in self.by), []).append(point.value)
        fired = {}
        for group, values in groups.items():
            value = _AGGREGATE[self.time_agg](values)
            if value > self.above or (self.inclusive and value == self.above):
                fired[group] = value
        return fired


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``predicate`` held; fails after ``timeout_s``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"no {what} after {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - start


def test_a_hung_classifier_makes_the_lag_monitor_fire_within_a_minute(
    kafka_settings, storm_on_path, tmp_path, report_figure
):
    alert = _Alert.from_monitor(json.loads(MONITOR.read_text()))
    assert alert.metric == "botscore.features_spout.lag" and "partition" in alert.by
    topics = fresh_topics(kafka_settings)
    burst = valid_users(int(alert.above) * 5 // 4, seed=52)  # built before the clock starts
    try:
        with (
            StatsdListener() as listener,
            SupervisedTopology(
                topics, tmp_path, BOTSCORE_METRICS_STATSD_PORT=str(listener.port)
            ) as topology,
        ):
            produce(topics, valid_users(2000, seed=51))
            wait_committed_to_end(topics, scoring_group(topics), topics.features_topic, 240)
            caught_up = time.monotonic()
            _wait(
                lambda: any(
                    p.at > caught_up and p.tag("partition") == "0"
                    for p in listener.points(alert.metric)
                ),
                30,
                "lag gauge of partition 0 once caught up",
            )
            healthy = listener.points(alert.metric)
            assert alert.firing(healthy, time.monotonic()) == {}, "fires on a healthy run"

            [classifier] = topology.component_pids("bolts.classifier.ClassifierBolt")
            os.kill(classifier, signal.SIGSTOP)  # well under Storm's 30 s heartbeat timeout
            stalled_at = time.monotonic()
            try:
                produce(topics, burst, partition=0)
                produced_s = time.monotonic() - stalled_at
                fired_s = produced_s + _wait(
                    lambda: alert.firing(listener.points(alert.metric), time.monotonic()),
                    60 - produced_s,
                    f"lag above {alert.above:.0f}",
                )
            finally:
                os.kill(classifier, signal.SIGCONT)
            fired = alert.firing(listener.points(alert.metric), time.monotonic())
            # Tuples the producer had in hand when the classifier stopped may still commit.
            stalled = [
                p.value
                for p in listener.points("botscore.features_spout.committed_offset")
                if p.at > stalled_at + 3 and p.tag("partition") == "0"
            ]
    finally:
        delete_topics(topics, run_topics(topics))
    assert [group for group in fired if group[alert.by.index("partition")] != "0"] == []
    assert len(set(stalled)) == 1, f"partition 0's committed offset, once stalled: {stalled}"
    report_figure(
        f"stalled partition: classifier stopped, {len(burst)} messages produced to partition 0 "
        f"in {produced_s:.1f} s; lag monitor ({alert.time_agg} over {alert.window_s:.0f} s "
        f"> {alert.above:.0f}) fires {fired_s:.1f} s after the stop "
        f"(lag {max(fired.values()):.0f}, committed offset flat at {stalled[0]:.0f})"
    )
