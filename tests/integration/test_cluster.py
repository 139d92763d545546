"""`sparse submit` to a Storm cluster on this machine, and what survives its faults.

The module starts the cluster (ZooKeeper, Nimbus, two supervisors) once with
``stack/storm/cluster.sh``, submits the scoring topology once, and runs each fault against
that same topology while a steady stream of users flows; Kafka and Redis come from `make up`.
Each test feeds users of its own and ends only when every offset of the topic has a score;
the last one runs the whole loop (edge simulator, aggregation topology, enforcer) through it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from botscore.enforcement.edge import EdgeDecisions
from botscore.observability.datadog_assets import grouped_tags, load_assets
from botscore.observability.storm_stats import nimbus_client, read_cluster
from botscore.settings import AggregationSettings, KafkaSettings, Settings
from botscore.simulator.run import simulate
from botscore.simulator.spec import SimulationSpec
from botscore.transport.kafka_clients import ensure_topics
from tests.statsd import StatsdListener

from .cluster import (
    cluster_script,
    daemon_log,
    daemon_pid,
    kill_hard,
    kill_supervisor_and_workers,
    sparse,
    spout_worker_pid,
    submit_options,
    supervisor_of,
    wait_reading,
)
from .harness import (
    ROOT,
    delete_topics,
    empty_redis_db,
    end_offsets,
    fresh_topics,
    new_run_id,
    run_topics,
    stack_env,
    stack_redis_db,
)
from .stream import PacedFeed, ScoreCollector, Source, produce, valid_users

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

RATE = 1_000  # users per second offered while a fault happens
SPEEDUP = 20  # simulated seconds per second in the whole-loop test
LOOP_SPEC = SimulationSpec(
    users=500, bot_share=0.3, rate=30, duration_s=900, seed=43, speedup=SPEEDUP
)
# Simulated time outruns the wall clock: every clock check must allow the lead, the
# aggregation's, the scoring spout's (its features' window ends) and the enforcer's.
LOOP_SKEW_MS = LOOP_SPEC.clock_lead_ms + 60_000


@pytest.fixture(scope="module")
def cluster(storm_on_path: None, kafka_settings: KafkaSettings) -> Iterator[None]:
    started = cluster_script("start")
    if started.returncode != 0:
        pytest.fail(f"the Storm cluster did not start:\n{started.stdout}\n{started.stderr}")
    yield
    stopped = cluster_script("stop")
    assert stopped.returncode == 0, stopped.stderr


@dataclass
class Submitted:
    """The scoring topology on the cluster, its topics, and every score it wrote."""

    name: str
    settings: KafkaSettings
    scores: ScoreCollector
    metrics: StatsdListener
    fed: int = 0
    seed: int = 40

    def submit(self) -> None:
        # The whole loop's features end ahead of the wall clock: its spout must take them.
        options = submit_options(
            self.settings,
            metrics__statsd_port=self.metrics.port,
            aggregation__max_event_skew_ms=LOOP_SKEW_MS,
            enforcement__max_clock_skew_ms=LOOP_SKEW_MS,
        )
        sparse("submit", "-n", "scoring", "-N", self.name, *options)
        wait_reading(self.name, timeout_s=180)

    def replays(self, since: float) -> str:
        """The spout's replays received after ``since`` (monotonic), by cause."""
        causes: dict[str, float] = {}
        for point in self.metrics.points("botscore.features_spout.replayed"):
            if point.at > since:
                cause = point.tag("cause") or "none"
                causes[cause] = causes.get(cause, 0) + point.value
        return ", ".join(f"{n:.0f} {c}" for c, n in sorted(causes.items())) or "none"

    def feed_through(self, users: int, fault: Callable[[], None]) -> float:
        """Feed ``users`` at ``RATE``, call ``fault`` a quarter of the way, wait until every
        offset has a score; the longest time without a new score from the fault on."""
        self.seed += 1
        before = self.fed
        self.fed += users
        with PacedFeed(self.settings, valid_users(users, self.seed), RATE) as feed:
            feed.start()
            self.scores.wait_for(
                lambda: self.scores.distinct() >= before + users // 4, 120, "a quarter scored"
            )
            fault_at = time.monotonic()
            fault()
            feed.join(120)
        self.scores.wait_for(lambda: self.scores.distinct() == self.fed, 240, "every user scored")
        assert set(self.scores.counts) == self.sources()
        with self.scores._lock:
            arrivals = sorted(t for t in self.scores.arrivals if t > fault_at - 1)
        return max(b - a for a, b in pairwise([fault_at - 1, *arrivals]))

    def sources(self) -> set[Source]:
        ends = end_offsets(self.settings, self.settings.features_topic)
        return {(partition, offset) for partition, end in ends.items() for offset in range(end)}

    def twice(self) -> int:
        return sum(self.scores.counts.values()) - self.scores.distinct()


@pytest.fixture(scope="module")
def scoring(cluster: None, kafka_settings: KafkaSettings) -> Iterator[Submitted]:
    run = new_run_id()
    settings = fresh_topics(kafka_settings, prefix="cl", run=run)
    with ScoreCollector(settings) as scores, StatsdListener() as metrics:
        submitted = Submitted(f"scoring-{run}", settings, scores, metrics)
        try:
            submitted.submit()
            yield submitted
        finally:
            sparse("kill", "-n", submitted.name, "--wait", "1")
            delete_topics(settings, run_topics(settings))


def test_a_killed_worker_is_restarted_and_its_users_scored(scoring: Submitted, report_figure):
    began = time.monotonic()
    silence = scoring.feed_through(20_000, lambda: kill_hard(spout_worker_pid(scoring.name)))
    report_figure(
        f"cluster, kill -9 of the spout's worker JVM at {RATE} users/s: longest time without "
        f"a score {silence:.1f} s; all {scoring.fed} offsets scored, {scoring.twice()} twice; "
        f"tuples replayed: {scoring.replays(began)}"
    )


def _wait_uptime(name: str, seconds: int) -> None:
    """Nimbus counts a worker alive for ``nimbus.task.launch.secs`` (30 s here) after its
    assignment, heartbeats or not: a fault inside that window waits for its end."""
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        stats = read_cluster(nimbus_client("127.0.0.1:6627"))
        if any(t.name == name and t.uptime_s >= seconds for t in stats.topologies):
            return
        time.sleep(1)
    raise AssertionError(f"{name} not up {seconds} s according to Nimbus")


def test_a_killed_supervisor_s_work_moves_to_the_other(scoring: Submitted, report_figure):
    _wait_uptime(scoring.name, 35)
    killed: list[str] = []
    began = time.monotonic()

    def kill_spout_supervisor() -> None:
        supervisor = supervisor_of(spout_worker_pid(scoring.name))
        kill_supervisor_and_workers(supervisor)
        killed.append(supervisor)

    try:
        silence = scoring.feed_through(10_000, kill_spout_supervisor)
    finally:
        restarted = cluster_script("start")  # brings back only what is missing
        assert restarted.returncode == 0, restarted.stderr
    report_figure(
        f"cluster, kill -9 of {killed[0]} and its workers at {RATE} users/s: longest time "
        f"without a score {silence:.1f} s; all {scoring.fed} offsets scored; tuples "
        f"replayed: {scoring.replays(began)}"
    )


def test_a_stalled_supervisor_keeps_its_workers(scoring: Submitted, report_figure):
    """A supervisor too busy to ping ZooKeeper (stopped here) loses its 2 s session, yet its
    workers are alive: Nimbus's scheduler finds their ports accepting and leaves them where
    they run, where a move would have cost a failover's gap for nothing."""
    worker = spout_worker_pid(scoring.name)
    supervisor = supervisor_of(worker)
    nimbus_log = daemon_log("nimbus")
    seen_from = nimbus_log.stat().st_size
    stalled: list[float] = []

    def stall_supervisor() -> None:
        pid = daemon_pid(supervisor)
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            while "accepts: its worker stays" not in _read_from(nimbus_log, seen_from):
                assert time.monotonic() - started < 30, "Nimbus never saw the supervisor gone"
                time.sleep(0.2)
        finally:
            os.kill(pid, signal.SIGCONT)
        stalled.append(time.monotonic() - started)

    silence = scoring.feed_through(10_000, stall_supervisor)
    assert spout_worker_pid(scoring.name) == worker, "the stalled supervisor's worker was moved"
    assert "does not accept" not in _read_from(nimbus_log, seen_from)
    report_figure(
        f"cluster, {supervisor} stopped {stalled[0]:.1f} s (its ZooKeeper session lapsed): "
        f"its workers stayed; longest time without a score {silence:.1f} s"
    )


def _read_from(log: Path, offset: int) -> str:
    with log.open(errors="replace") as f:
        f.seek(offset)
        return f.read()


def test_running_topologies_keep_scoring_while_nimbus_is_down(scoring: Submitted, report_figure):
    def restart_nimbus() -> None:
        kill_hard(daemon_pid("nimbus"))
        restarted = cluster_script("start")  # waits until the new Nimbus leads
        assert restarted.returncode == 0, restarted.stderr

    silence = scoring.feed_through(10_000, restart_nimbus)
    assert silence < 5, f"scoring paused {silence:.1f} s while Nimbus restarted"
    report_figure(
        f"cluster, Nimbus kill -9 and restart: longest time without a score {silence:.1f} s"
    )


def test_a_resubmitted_topology_resumes_from_its_commits(scoring: Submitted, report_figure):
    scoring.feed_through(2_000, lambda: None)
    twice_before = scoring.twice()
    # Deactivated, the spout commits what finished: workers see it within a second
    # (task.refresh.poll.secs), well inside the wait.
    sparse("kill", "-n", scoring.name, "--wait", "5")
    more = 2_000
    produce(scoring.settings, valid_users(more, 99))
    scoring.fed += more
    scoring.submit()
    scoring.scores.wait_for(
        lambda: scoring.scores.distinct() == scoring.fed, 240, "users fed while killed"
    )
    assert set(scoring.scores.counts) == scoring.sources()
    again = scoring.twice() - twice_before
    report_figure(
        f"cluster, sparse kill then submit: the {more} users fed in between scored, "
        f"{again} scored again"
    )
    assert again == 0, "users scored before the kill were read again: not all was committed"


def test_botscore_storm_shows_what_nimbus_knows(scoring: Submitted) -> None:
    # Nimbus counts one tuple in 20 (Storm's topology.stats.sample.rate) and learns the counts
    # from heartbeats, seconds behind; 2,000 users make a few dozen tuples, so a component can
    # show none: feed again until every busy one shows acks.
    deadline = time.monotonic() + 240
    shown: str | None = "nothing fed yet"
    while shown is not None:
        assert time.monotonic() < deadline, f"Nimbus never showed 2 workers and acks: {shown}"
        scoring.feed_through(2_000, lambda: None)
        settled = time.monotonic() + 15
        while (shown := _unacked_components(scoring.name)) is not None:
            if time.monotonic() > settled:
                break
            time.sleep(2)
    with StatsdListener() as listener:
        shown = subprocess.run(
            ["botscore", "-e", "cluster", "storm", "--send"],
            cwd=ROOT,
            env=stack_env(BOTSCORE_METRICS_STATSD_PORT=str(listener.port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        wanted = {
            name: keys
            for asset in load_assets(ROOT / "monitoring")
            for name, keys in grouped_tags(asset.body).items()
            if name.startswith("botscore.storm.")
        }
        deadline = time.monotonic() + 10
        while not set(wanted) <= set(listener.tags_by_metric()) and time.monotonic() < deadline:
            time.sleep(0.1)
        received = listener.tags_by_metric()
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert re.search(r"nimbus 127\.0\.0\.1:6627; 2 supervisors, [1-9] of 4 slots used", out), out
    assert re.search(rf"{scoring.name} \(ACTIVE, up \d+ s, 2 workers", out), out
    rows = {
        m["name"]: int(m["acked"])
        for m in re.finditer(
            r"^  (?P<name>\w+)\s+(?:spout|bolt)\s+\d+\s+\d+\s+(?P<acked>\d+)", out, re.M
        )
    }
    assert set(rows) == {"features", "classifier", "producer", *IDLE_WITHOUT_CHALLENGER}, out
    assert all(acked > 0 for name, acked in rows.items() if name not in IDLE_WITHOUT_CHALLENGER)
    assert all(rows[name] == 0 for name in IDLE_WITHOUT_CHALLENGER), out
    # Every botscore.storm.* metric the dashboards graph arrived, with the tags they group by.
    assert wanted, "no dashboard graphs Nimbus's figures"
    for name, keys in wanted.items():
        tag_keys = {tag.split(":", 1)[0] for tag in received.get(name, set())}
        assert {"component", *keys} <= tag_keys, (name, received.get(name))


# Components that get no tuple while no challenger is published (none is, here).
IDLE_WITHOUT_CHALLENGER = {"shadow_producer"}


def _unacked_components(name: str) -> str | None:
    """None once Nimbus shows topology ``name`` on 2 workers with acks in every busy
    component; else what it shows."""
    stats = read_cluster(nimbus_client("127.0.0.1:6627"))
    topology = next((t for t in stats.topologies if t.name == name), None)
    if topology is None:
        return f"no {name} among {[t.name for t in stats.topologies]}"
    acked = {c.name: c.acked for c in topology.components}
    busy = [n for n in acked if n not in IDLE_WITHOUT_CHALLENGER]
    if topology.workers == 2 and all(acked[n] > 0 for n in busy):
        return None
    return f"{topology.workers} workers, up {topology.uptime_s} s, acked {acked}"


LOOP_REDIS_DB = 8  # the stack's Redis, a database of this test's own


def test_the_whole_loop_runs_on_the_cluster(scoring: Submitted, tmp_path, report_figure):
    """The edge simulator and the enforcer around both topologies on the cluster: the
    aggregation topology (submitted here) publishes features to the scoring topology's
    topic, and the edge blocks bots. Last in the module: it adds to that topic."""
    run = new_run_id()
    web_logs = f"cl-web-logs-{run}"
    ensure_topics(scoring.settings, [web_logs])
    settings = Settings(
        kafka=scoring.settings,
        aggregation=AggregationSettings(web_logs_topic=web_logs, consumer_group=f"cl-agg-{run}"),
        redis=stack_redis_db(LOOP_REDIS_DB),
    )
    spec, skew_ms = LOOP_SPEC, LOOP_SKEW_MS
    name = f"aggregation-{run}"
    with empty_redis_db(LOOP_REDIS_DB) as client:
        sparse(
            "submit",
            "-n",
            "aggregation",
            "-N",
            name,
            *submit_options(
                scoring.settings,
                aggregation__web_logs_topic=web_logs,
                aggregation__consumer_group=settings.aggregation.consumer_group,
                aggregation__max_event_skew_ms=skew_ms,
                enforcement__max_clock_skew_ms=skew_ms,
                redis__db=LOOP_REDIS_DB,
            ),
        )
        enforcer = None
        try:
            wait_reading(name, timeout_s=180)
            enforcer = subprocess.Popen(
                ["botscore", "enforce"],
                cwd=ROOT,
                env=stack_env(
                    BOTSCORE_KAFKA_SCORES_TOPIC=scoring.settings.scores_topic,
                    BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=scoring.settings.dead_letter_topic,
                    BOTSCORE_REDIS_DB=str(LOOP_REDIS_DB),
                    BOTSCORE_ENFORCEMENT_CONSUMER_GROUP=f"cl-edge-{run}",
                    BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS=str(skew_ms),
                ),
                stdout=(tmp_path / "enforce.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            stats = simulate(
                settings, spec, tmp_path / "labels.csv", edge=EdgeDecisions(client, 1000)
            )
            assert enforcer.poll() is None, (tmp_path / "enforce.log").read_text()
        finally:
            if enforcer is not None:
                enforcer.terminate()
                enforcer.wait(30)
            sparse("kill", "-n", name, "--wait", "1")
            delete_topics(scoring.settings, [web_logs])
    # Every feature message the aggregation topology published was scored too.
    scoring.fed = sum(end_offsets(scoring.settings, scoring.settings.features_topic).values())
    scoring.scores.wait_for(
        lambda: scoring.scores.distinct() == scoring.fed, 240, "the loop's features scored"
    )
    assert set(scoring.scores.counts) == scoring.sources()
    report_figure(
        f"cluster, whole loop ({spec.duration_s} simulated s at {SPEEDUP}x, {spec.users} "
        f"users): first scores at the edge at {stats.first_scores_s or 0:.0f} s, first block "
        f"or challenge at {stats.first_enforced_s or 0:.0f} s (simulated), bots blocked "
        f"{len(stats.bots_blocked)}, "
        f"humans challenged {len(stats.humans_challenged)}"
    )
    assert stats.first_enforced_s is not None, "the edge never blocked or challenged anyone"
    assert stats.bots_blocked, "no bot was blocked"
