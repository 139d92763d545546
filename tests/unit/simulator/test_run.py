"""``simulate``: the traffic paced onto Kafka (a fake producer here), keyed, confirmed.

Pacing runs on a fake wall clock that moves only when the run sleeps, so the tests say
when each request was sent without waiting for it; the fake broker can be down for a while
on that clock, and answers as kafka-python does then.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

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
        self.on_sleep: list = []  # called after each sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in self.on_sleep:
            hook()


# The producer's delivery timeout of ``Settings()``: the fake broker expires sends after it.
DELIVERY_TIMEOUT_S = Settings().kafka.producer_delivery_timeout_ms / 1000


class _FakeProducer:
    """Records each send and the wall time (of ``wall``) it was made at, and answers as
    kafka-python does: a send is confirmed at once while the broker is up; one made while it
    is down (wall seconds after the start in ``down``: [from, until)) is confirmed when the
    broker is back, or fails with KafkaTimeoutError ``DELIVERY_TIMEOUT_S`` after it was made
    if that comes first. ``flush`` blocks: the wall clock moves on until all are answered.

    ``confirmed`` holds the values Kafka took, in order; ``most_out`` the most distinct values
    ever sent and not yet confirmed at once. A send within ``refuse`` (as ``down``) raises
    KafkaTimeoutError after blocking for max_block_ms (5 s), as when the producer lost the
    topic's metadata; ``refusals`` counts them.
    """

    def __init__(self, wall, down=(math.inf, math.inf), refuse=(math.inf, math.inf)):
        self.wall, self.flushed, self.refusals = wall, False, 0
        self.down_from, self.down_until = (WALL_START_S + at for at in down)
        self.refuse_from, self.refuse_until = (WALL_START_S + at for at in refuse)
        self.sent, self.sent_at, self.confirmed = [], [], []
        self._pending = []  # (answered at, confirmed?, value, future)
        self._out, self.most_out = set(), 0
        wall.on_sleep.append(self.settle)

    def send(self, topic, key, value):
        at = self.wall()
        if self.refuse_from <= at < self.refuse_until:
            self.refusals += 1
            self.wall.now += 5.0
            raise KafkaTimeoutError("Failed to update metadata after 5.0 secs.")
        self.sent.append((topic, key, value))
        self.sent_at.append(at)
        self._out.add(value)
        self.most_out = max(self.most_out, len(self._out))
        future = Future()
        if self.down_from <= at < self.down_until:
            expires = at + DELIVERY_TIMEOUT_S
            self._pending.append(
                (min(self.down_until, expires), self.down_until <= expires, value, future)
            )
        else:
            self._answer(True, value, future)
        return future

    def _answer(self, confirmed, value, future):
        if confirmed:
            self.confirmed.append(value)
            self._out.discard(value)
            future.success(None)
        else:
            future.failure(KafkaTimeoutError("1 record(s) expired: delivery timeout elapsed"))

    def settle(self):
        due = sorted((p for p in self._pending if p[0] <= self.wall()), key=lambda p: p[0])
        self._pending = [p for p in self._pending if p[0] > self.wall()]
        for _, confirmed, value, future in due:
            self._answer(confirmed, value, future)

    def flush(self, timeout=None):
        self.flushed = True
        last = max((p[0] for p in self._pending), default=self.wall())
        if timeout is not None and last > self.wall() + timeout:
            self.wall.now += timeout
            self.settle()
            raise KafkaTimeoutError("Timeout waiting for future")
        self.wall.now = max(self.wall.now, last)
        self.settle()

    def close(self, timeout=None):
        pass


def _patch_kafka(monkeypatch, producer):
    monkeypatch.setattr(run, "create_producer", lambda settings, client_id: producer)
    monkeypatch.setattr(run, "ensure_topics", lambda settings, topics: [])


def _simulate(
    monkeypatch,
    tmp_path,
    spec,
    down=(math.inf, math.inf),
    refuse=(math.inf, math.inf),
    sleep=None,
    **kwargs,
):
    wall = _WallClock()
    producer = _FakeProducer(wall, down, refuse)
    _patch_kafka(monkeypatch, producer)
    stats = run.simulate(
        Settings(),
        spec,
        tmp_path / "labels.csv",
        start_unix_ms=START_MS,
        clock=wall,
        sleep=sleep or wall.sleep,
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
    assert stats.confirmed == stats.sent == len(producer.sent) == len(producer.confirmed) > 100
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
    assert 0 < stats.confirmed == stats.sent == len(producer.sent) < 150 * 0.75
    assert all(sim_s <= 0.5 + SLACK_S for sim_s, _ in _wall_offsets(producer))


def _request_ids(values):
    return Counter(WebLog.FromString(value).request_id for value in values)


def _first_sends(producer):
    """(simulated second, wall seconds after the start) of each WebLog's first send."""
    seen, firsts = set(), []
    for (_, _, value), at in zip(producer.sent, producer.sent_at, strict=True):
        if value not in seen:
            seen.add(value)
            sim_s = (WebLog.FromString(value).time_unix_ms - START_MS) / 1000
            firsts.append((sim_s, at - WALL_START_S))
    return firsts


def _kafka_lines(caplog):
    return [r.getMessage() for r in caplog.records if "Kafka" in r.getMessage()]


def test_weblogs_kafka_did_not_confirm_are_sent_again_and_none_is_lost(
    monkeypatch, tmp_path, caplog
):
    """The broker down from wall second 20 to 80, past the 30 s delivery timeout: the sends
    expire from second 50 on; they are sent again until confirmed, and meanwhile the run
    makes no request (simulated time stands still), so every visitor's figures are those of
    a run without the outage."""
    caplog.set_level(logging.INFO, logger="botscore.simulator.sends")
    spec = SimulationSpec(users=600, bot_share=0.3, rate=50, duration_s=120.0, seed=9)
    calm, calm_producer, _ = _simulate(monkeypatch, tmp_path, spec)
    stats, producer, wall = _simulate(monkeypatch, tmp_path, spec, down=(20, 80))

    assert _request_ids(producer.confirmed) == _request_ids(v for *_, v in calm_producer.sent)
    assert set(_request_ids(producer.confirmed).values()) == {1}  # none lost, none twice
    assert stats.confirmed == stats.sent == calm.sent
    assert len(producer.sent) > stats.sent  # some were sent again
    assert stats.visits == calm.visits
    lines = _kafka_lines(caplog)
    assert re.fullmatch(
        r"Kafka did not confirm a batch of \d+ WebLogs \(KafkaTimeoutError: .*\): "
        r"sending it again in 0\.5 s",
        lines[0],
    )
    assert lines[-1] == "Kafka confirms sends again"
    assert lines.count("Kafka confirms sends again") == 1
    # Paced as before the outage up to the first expiry, then not one new request until
    # Kafka confirms again, and paced again after it, later by the stop: no rush.
    shifts = [wall_s - sim_s for sim_s, wall_s in _first_sends(producer)]
    resumed = next(i for i, shift in enumerate(shifts) if shift > 1)
    stood_still = shifts[resumed]
    assert all(abs(shift) <= SLACK_S for shift in shifts[:resumed])
    assert all(abs(shift - stood_still) <= SLACK_S for shift in shifts[resumed:])
    assert shifts[resumed - 1] + _first_sends(producer)[resumed - 1][0] >= 50 - SLACK_S
    assert 80 - 50 <= stood_still < 80 - 50 + 11  # until all were confirmed, the last
    # resend at most one longest backoff (10 s) after the broker came back
    assert wall.now - WALL_START_S == pytest.approx(120 + stood_still, abs=1.0)


def test_too_many_unconfirmed_weblogs_hold_new_requests(monkeypatch, tmp_path):
    """Memory stays bounded: with the broker down, no more than ``MAX_UNCONFIRMED`` WebLogs
    are ever out, even before the first of them expires."""
    monkeypatch.setattr(run, "MAX_UNCONFIRMED", 200, raising=False)
    spec = SimulationSpec(users=600, bot_share=0.3, rate=50, duration_s=20.0, seed=9)
    stats, producer, _ = _simulate(monkeypatch, tmp_path, spec, down=(5, 60))
    assert producer.most_out == 200
    assert stats.confirmed == stats.sent == len(_request_ids(producer.confirmed)) > 900


def test_sends_the_producer_refuses_at_once_are_sent_again_one_at_a_time(
    monkeypatch, tmp_path, caplog
):
    """The broker down from wall second 20 to 200, and from 45 on the producer refuses sends
    (each blocks 5 s first): that holds the run like a failed send, and each attempt at
    sending the thousand or so expired from 50 on stops at its first refusal."""
    caplog.set_level(logging.INFO, logger="botscore.simulator.sends")
    spec = SimulationSpec(users=600, bot_share=0.3, rate=50, duration_s=60.0, seed=9)
    stats, producer, _ = _simulate(monkeypatch, tmp_path, spec, down=(20, 200), refuse=(45, 200))
    assert stats.confirmed == stats.sent == len(_request_ids(producer.confirmed)) > 2500
    attempts = sum("did not confirm" in line for line in _kafka_lines(caplog))
    assert 5 < producer.refusals <= attempts


def test_weblogs_kafka_takes_in_the_last_wait_end_the_run_without_error(
    monkeypatch, tmp_path, caplog
):
    """Down from wall second 5 to 45 in a 10 s run: the last sends expire after the run,
    and the last wait (a delivery timeout and a margin) sends them again until taken."""
    caplog.set_level(logging.INFO, logger="botscore.simulator.sends")
    spec = SimulationSpec(users=600, bot_share=0.3, rate=50, duration_s=10.0, seed=9)
    stats, producer, wall = _simulate(monkeypatch, tmp_path, spec, down=(5, 45))
    assert stats.confirmed == stats.sent == len(_request_ids(producer.confirmed))
    assert wall.now - WALL_START_S == pytest.approx(45)
    assert _kafka_lines(caplog)[-1] == "Kafka confirms sends again"


def test_weblogs_never_confirmed_fail_the_run_after_a_last_wait(monkeypatch, tmp_path, caplog):
    """The broker goes at wall second 5 for good; the run holds its requests until Ctrl-C
    at wall second 100, waits a delivery timeout and a margin, and then says what Kafka
    never confirmed."""
    caplog.set_level(logging.INFO, logger="botscore.simulator.sends")
    wall = _WallClock()
    producer = _FakeProducer(wall, down=(5, math.inf))
    _patch_kafka(monkeypatch, producer)
    interrupted = []

    def sleep(seconds):
        wall.sleep(seconds)
        if wall.now - WALL_START_S >= 100 and not interrupted:
            interrupted.append(wall.now)
            raise KeyboardInterrupt

    spec = SimulationSpec(users=600, bot_share=0.3, rate=50, duration_s=60.0, seed=9)
    with pytest.raises(BotscoreError) as raised:
        run.simulate(
            Settings(),
            spec,
            tmp_path / "labels.csv",
            start_unix_ms=START_MS,
            clock=wall,
            sleep=sleep,
        )
    never = len(
        set(_request_ids(v for _, _, v in producer.sent)) - set(_request_ids(producer.confirmed))
    )
    assert re.match(
        rf"{never} of \d+ WebLogs not confirmed by Kafka, the last 40 s ", str(raised.value)
    )
    assert never > 0 and all(
        at - WALL_START_S < 5 for at in producer.sent_at[: len(producer.confirmed)]
    )
    assert wall.now - interrupted[0] == pytest.approx(DELIVERY_TIMEOUT_S + 10, abs=0.5)
    assert "Kafka confirms sends again" not in _kafka_lines(caplog)


class _HeldSends:
    """Holds the run while the wall clock is within [``from_s``, ``until_s``) after the start."""

    def __init__(self, wall, from_s, until_s, resending):
        self.wall, self.from_s, self.until_s, self.resending = wall, from_s, until_s, resending

    def update(self, now):
        pass

    @property
    def holding(self):
        return self.from_s <= self.wall.now - WALL_START_S < self.until_s


class _Edge:
    """The edge's figures: no user scored, and each decision once the wall clock is past
    when it was seen."""

    def __init__(self, wall, decisions):
        self.wall, self.decisions = wall, list(decisions)

    def stats(self):
        return {"users_scored": 0}

    def take_new_decisions(self):
        seen = [d for d in self.decisions if d.seen_at <= self.wall.now]
        self.decisions = [d for d in self.decisions if d.seen_at > self.wall.now]
        return seen


def test_simulated_time_stands_still_while_sends_hold_and_latencies_count_the_stop():
    """Held from wall second 10 to 40 (to the next look at Kafka's answers, every 0.1 s) at
    the request of simulated second 12 (due at 12): 28 s stood still, so simulated second 13
    goes at wall second 41, not at once; a decision on a request of second 10 (sent at 10)
    and one on second 13 (sent at 41), both seen at wall second 45, took 35 s and 4 s."""
    wall = _WallClock()
    seen_at = WALL_START_S + 45
    edge = _Edge(
        wall,
        [
            NewDecision("u1", Decision.BLOCK, START_MS + 10_000, seen_at),
            NewDecision("u2", Decision.BLOCK, START_MS + 13_000, seen_at),
        ],
    )
    stats, status = run.SimulationStats(), _Status()
    sends = _HeldSends(wall, 10, 40, resending=7)
    live = run._Live(  # type: ignore[arg-type]
        stats, 1.0, edge, status, wall, wall.sleep, start_ms=START_MS, sends=sends
    )
    live.wait_until(10.0)
    assert wall.now - WALL_START_S == 10
    live.wait_until(12.0)
    assert wall.now - WALL_START_S == pytest.approx(40, abs=0.1)
    live.wait_until(13.0)
    assert wall.now - WALL_START_S == pytest.approx(41, abs=0.1)
    for sim_s in (14.0, 15.0, 16.0, 17.0, 18.0):
        live.wait_until(sim_s)
    assert wall.now - WALL_START_S == pytest.approx(46, abs=0.1)
    assert stats.decision_latencies_s == [pytest.approx(35), pytest.approx(4, abs=0.1)]
    held = [line for line in status.lines if "to send again" in line]
    assert len(held) >= 29 and all(" 0 req/s " in line for line in held[1:])
    assert held[0].endswith("sent 0 (7 to send again, Kafka did not confirm them)")
