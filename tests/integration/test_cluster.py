"""`sparse submit` to a Storm cluster on this machine, and what survives a dead worker.

The module starts the cluster (ZooKeeper, Nimbus, two supervisors) once with
``stack/storm/cluster.sh`` and stops it at the end; Kafka and Redis come from `make up`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise

import pytest

from botscore.settings import KafkaSettings

from .cluster import (
    SteadyFeed,
    cluster_script,
    kill_hard,
    scoring_options,
    sparse,
    spout_worker_pid,
    wait_reading,
)
from .harness import delete_topics, end_offsets, fresh_topics, new_run_id, run_topics
from .stream import ScoreCollector, Source, valid_users

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

USERS = 20_000
RATE = 1_000  # users per second offered while the worker is killed


@pytest.fixture(scope="module")
def cluster(storm_on_path: None, kafka_settings: KafkaSettings) -> Iterator[None]:
    started = cluster_script("start")
    if started.returncode != 0:
        pytest.fail(f"the Storm cluster did not start:\n{started.stdout}\n{started.stderr}")
    yield
    stopped = cluster_script("stop")
    assert stopped.returncode == 0, stopped.stderr


def _all_sources(settings: KafkaSettings) -> set[Source]:
    ends = end_offsets(settings, settings.features_topic)
    return {(partition, offset) for partition, end in ends.items() for offset in range(end)}


def _longest_silence(arrivals: list[float], since: float) -> float:
    """The longest time without a new score from ``since`` on (arrival times sorted)."""
    times = [since, *sorted(t for t in arrivals if t > since)]
    return max(later - earlier for earlier, later in pairwise(times))


def test_submitted_scoring_loses_nothing_through_a_worker_kill_and_a_resubmit(
    cluster: None, kafka_settings: KafkaSettings, report_figure
) -> None:
    run = new_run_id()
    settings = fresh_topics(kafka_settings, prefix="cl", run=run)
    name = f"scoring-{run}"
    submitted = False
    try:
        sparse("submit", "-n", "scoring", "-N", name, *scoring_options(settings))
        submitted = True
        wait_reading(name, timeout_s=180)
        with ScoreCollector(settings) as scores:
            feed = SteadyFeed(settings, valid_users(USERS, seed=31), RATE).start()
            scores.wait_for(lambda: scores.distinct() >= USERS // 4, 120, "a quarter scored")
            killed_at = time.monotonic()
            kill_hard(spout_worker_pid(name))
            feed.join(120)
            scores.wait_for(lambda: scores.distinct() == USERS, 240, "every user scored")
            silence = _longest_silence(scores.arrivals, killed_at - 1)
            assert set(scores.counts) == _all_sources(settings)
            duplicates = sum(scores.counts.values()) - USERS
            report_figure(
                f"cluster, spout's worker JVM killed (kill -9) at {RATE} users/s: longest "
                f"time without a score {silence:.1f} s; {USERS} of {USERS} scored, "
                f"{duplicates} scored twice"
            )

            sparse("kill", "-n", name, "--wait", "1")
            submitted = False
            more = valid_users(2_000, seed=32)
            SteadyFeed(settings, more, rate=10_000).start().join(60)
            sparse("submit", "-n", "scoring", "-N", name, *scoring_options(settings))
            submitted = True
            total = USERS + len(more)
            scores.wait_for(lambda: scores.distinct() == total, 240, "users fed while killed")
            assert set(scores.counts) == _all_sources(settings)
            report_figure(
                f"cluster, sparse kill then submit: the {len(more)} users fed in between "
                f"scored, {sum(scores.counts.values()) - total} scored twice in all"
            )
    finally:
        if submitted:
            sparse("kill", "-n", name, "--wait", "1")
        delete_topics(settings, run_topics(settings))
