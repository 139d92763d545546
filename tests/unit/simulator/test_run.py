"""``simulate``: the traffic paced onto Kafka (a fake producer here), keyed, confirmed.

Pacing runs on a fake wall clock that moves only when the run sleeps, so the tests say
when each request was sent without waiting for it.
"""

from __future__ import annotations

import pytest

from botscore.enforcement.edge import NewDecision
from botscore.errors import BotscoreError
from botscore.settings import Settings
from botscore.simulator import run
from botscore.simulator.labels import read_labels
from botscore.simulator.spec import SimulationSpec
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Component, Decision
from tests.unit.metrics_fakes import RecordingMetrics

START_MS = 1_790_000_000_000
# Where the fake wall clock starts: any value, monotonic clocks have no epoch.
WALL_START_S = 1000.0
# The run does not sleep for less than _MIN_SLEEP_S, and event times are whole ms.
SLACK_S = 0.002 + 0.001


class _WallClock:
    """A monotonic clock that advances only by what the run sleeps."""

    def __init__(self) -> None:
        self.now = WALL_START_S
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class _FakeFuture:
    def __init__(self, error):
        self.error = error

    def add_errback(self, callback):
        if self.error:
            callback(self.error)


class _FakeProducer:
    """Records each send and the wall time (of ``wall``) it was made at."""

    def __init__(self, wall, error=None):
        self.wall, self.error, self.flushed = wall, error, False
        self.sent, self.sent_at = [], []

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))
        self.sent_at.append(self.wall())
        return _FakeFuture(self.error)

    def flush(self):
        self.flushed = True

    def close(self, timeout=None):
        pass


def _patch_kafka(monkeypatch, producer):
    monkeypatch.setattr(run, "create_producer", lambda settings, client_id: producer)
    monkeypatch.setattr(run, "ensure_topics", lambda settings, topics: [])


def _simulate(monkeypatch, tmp_path, spec, error=None, **kwargs):
    wall = _WallClock()
    producer = _FakeProducer(wall, error)
    _patch_kafka(monkeypatch, producer)
    stats = run.simulate(
        Settings(),
        spec,
        tmp_path / "labels.csv",
        start_unix_ms=START_MS,
        clock=wall,
        sleep=wall.sleep,
        **kwargs,
    )
    return stats, producer, wall


def _wall_offsets(producer):
    """Each request's (simulated second, wall seconds after the start it was sent at)."""
    return [
        ((WebLog.FromString(value).time_unix_ms - START_MS) / 1000, at - WALL_START_S)
        for (_, _, value), at in zip(producer.sent, producer.sent_at, strict=True)
    ]


def test_simulate_sends_keyed_weblogs_each_at_its_simulated_second(monkeypatch, tmp_path):
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=1.0, seed=9)
    stats, producer, wall = _simulate(monkeypatch, tmp_path, spec, topic="t")
    assert producer.flushed and stats.sent == len(producer.sent) > 100
    # Simulated second s goes out at wall second s: not earlier, and not as fast as possible.
    for sim_s, wall_s in _wall_offsets(producer):
        assert sim_s - SLACK_S <= wall_s <= sim_s + SLACK_S
    assert 0.9 < wall.now - WALL_START_S <= 1.0
    assert all(s > 0.002 for s in wall.sleeps)
    labels = read_labels(tmp_path / "labels.csv")
    for topic, key, value in producer.sent:
        event = WebLog.FromString(value)
        assert topic == "t" and key == event.user_id.encode() and event.user_id in labels
    assert sum(stats.sent_by_kind.values()) == stats.sent


def test_simulate_fails_loudly_when_kafka_rejects(monkeypatch, tmp_path):
    spec = SimulationSpec(users=300, bot_share=0.3, rate=50, duration_s=0.2, seed=9)
    with pytest.raises(BotscoreError, match="not confirmed"):
        _simulate(monkeypatch, tmp_path, spec, error=RuntimeError("broker down"))


def test_speedup_runs_simulated_time_faster_than_the_wall(monkeypatch, tmp_path):
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=10.0, seed=9, speedup=10)
    stats, producer, wall = _simulate(monkeypatch, tmp_path, spec)
    offsets = _wall_offsets(producer)
    assert stats.sent == len(offsets) == pytest.approx(1500, rel=0.15)
    # Ten simulated seconds in one wall second: simulated second s at wall second s / 10.
    for sim_s, wall_s in offsets:
        assert sim_s / 10 - SLACK_S <= wall_s <= sim_s / 10 + SLACK_S
    assert 0.99 < wall.now - WALL_START_S <= 1.0
    assert 9.0 < offsets[-1][0] - offsets[0][0] < 10.0  # event times stay simulated time
    assert {topic for topic, _, _ in producer.sent} == {Settings().aggregation.web_logs_topic}


def test_a_request_due_later_is_slept_for_and_one_due_now_is_not():
    wall = _WallClock()
    live = run._Live(run.SimulationStats(), 2.0, None, None, wall, wall.sleep)
    live.wait_until(3.0)  # at speedup 2, due 1.5 wall seconds after the start
    assert wall.sleeps == [1.5]
    wall.now += 0.4  # the sends took 0.4 s
    live.wait_until(4.0)  # due at 2.0: 0.1 s left
    assert wall.sleeps == [1.5, pytest.approx(0.1)]
    wall.now += 1.0  # behind: due at 2.5, now 3.0
    live.wait_until(5.0)
    wall.now = WALL_START_S + 3.5 - 0.0015  # due in 1.5 ms: not worth a sleep
    live.wait_until(7.0)
    assert len(wall.sleeps) == 2
    live.wait_until(7.01)  # due in 6.5 ms
    assert wall.sleeps[2:] == [pytest.approx(0.0065)]


class _ScoredCounts:
    """The edge's ``stats()`` answering from a list: a count, or None while unreachable;
    and the decisions it saw change (``take_new_decisions``), given up front."""

    def __init__(self, answers, new_decisions=()):
        self.answers = list(answers)
        self.asked = 0
        self.new = list(new_decisions)

    def take_new_decisions(self):
        taken, self.new = self.new, []
        return taken

    def stats(self):
        self.asked += 1
        scored = self.answers.pop(0)
        return None if scored is None else {"users_scored": scored}


class _Status:
    def __init__(self):
        self.lines = []

    def show(self, text):
        self.lines.append(text)


def test_the_status_is_refreshed_once_a_wall_second_with_that_second_s_rate():
    stats = run.SimulationStats()
    edge, status = _ScoredCounts([0] * 10), _Status()
    wall = _WallClock()
    live = run._Live(stats, 1.0, edge, status, wall, wall.sleep)  # type: ignore[arg-type]
    # 3.5 wall seconds in eighths (exact in binary): 200 requests/s, 400/s from 2 s on.
    for eighth in range(1, 29):
        stats.sent += 25 if eighth <= 16 else 50
        live.wait_until(eighth / 8)
    assert edge.asked == 1 + 3  # the count before the run, then one a wall second
    rates = [line.split("  ")[1] for line in status.lines]
    assert rates == ["200 req/s", "200 req/s", "400 req/s"]


def test_first_scores_are_bracketed_by_the_samples_around_them():
    # 5 scored before the run; then none new, unreachable, 3 new, 7 new.
    stats = run.SimulationStats()
    wall = _WallClock()
    edge = _ScoredCounts([5, 5, None, 8, 12])
    live = run._Live(stats, 20, edge, None, wall, wall.sleep)  # type: ignore[arg-type]
    for sim_s in (20.0, 40.0, 60.0, 80.0):
        live.wait_until(sim_s)  # one wall second apart at speedup 20: one sample each
    assert edge.asked == 5
    # an unreachable sample proves nothing, so no score before 20 s is all that is known
    assert stats.unscored_until_s == 20.0
    assert stats.first_scores_s == 60.0


def test_new_decisions_are_timed_from_their_last_counted_request_in_wall_seconds():
    """At speedup 20, a request stamped simulated second 40 was sent at wall second 2; its
    decision seen at wall second 3.5 took 1.5 s, whatever the simulated clock says."""
    stats, wall = run.SimulationStats(), _WallClock()
    metrics = RecordingMetrics(Component.EDGE)
    seen = [
        NewDecision("u1", Decision.BLOCK, START_MS + 40_000, WALL_START_S + 3.5),
        NewDecision("u2", Decision.CHALLENGE, START_MS + 10_000, WALL_START_S + 0.75),
    ]
    edge = _ScoredCounts([0] * 10, seen)
    live = run._Live(  # type: ignore[arg-type]
        stats, 20, edge, None, wall, wall.sleep, start_ms=START_MS, metrics=metrics
    )
    live.wait_until(80.0)  # wall second 4: the once-a-second refresh takes them
    assert stats.decision_latencies_s == [pytest.approx(1.5), pytest.approx(0.25)]
    assert [(kind, what, tags) for kind, what, _, tags in metrics.sent] == [
        ("histogram", "decision_latency_seconds", ("decision:block",)),
        ("histogram", "decision_latency_seconds", ("decision:challenge",)),
    ]
    assert [value for *_, value, _ in metrics.sent] == stats.decision_latencies_s


def test_ctrl_c_ends_the_run_with_what_was_sent_flushed_and_counted(monkeypatch, tmp_path):
    wall = _WallClock()
    producer = _FakeProducer(wall)
    _patch_kafka(monkeypatch, producer)

    def sleep(seconds):
        wall.sleep(seconds)
        if wall.now - WALL_START_S > 0.5:
            raise KeyboardInterrupt  # Ctrl-C half-way through a one-second run

    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=1.0, seed=9)
    stats = run.simulate(
        Settings(), spec, tmp_path / "labels.csv", start_unix_ms=START_MS, clock=wall, sleep=sleep
    )
    assert producer.flushed
    assert 0 < stats.sent == len(producer.sent) < 150 * 0.75
    assert all(sim_s <= 0.5 + SLACK_S for sim_s, _ in _wall_offsets(producer))
