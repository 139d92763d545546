"""``simulate``: the traffic paced onto Kafka (a fake producer here), keyed, confirmed."""

from __future__ import annotations

import time

import pytest

from botscore.errors import BotscoreError
from botscore.settings import Settings
from botscore.simulator import run
from botscore.simulator.labels import read_labels
from botscore.simulator.spec import SimulationSpec
from botscore.v1.web_log_pb2 import WebLog


class _FakeFuture:
    def __init__(self, error):
        self.error = error

    def add_errback(self, callback):
        if self.error:
            callback(self.error)


class _FakeProducer:
    def __init__(self, error=None):
        self.sent, self.error, self.flushed = [], error, False

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))
        return _FakeFuture(self.error)

    def flush(self):
        self.flushed = True

    def close(self, timeout=None):
        pass


def _patch_kafka(monkeypatch, producer):
    monkeypatch.setattr(run, "create_producer", lambda settings, client_id: producer)
    monkeypatch.setattr(run, "ensure_topics", lambda settings, topics: [])


def test_simulate_sends_keyed_weblogs_paced_to_the_rate(monkeypatch, tmp_path):
    producer = _FakeProducer()
    _patch_kafka(monkeypatch, producer)
    started = time.monotonic()
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=1.0, seed=9)
    stats = run.simulate(Settings(), spec, tmp_path / "labels.csv", topic="t")
    elapsed = time.monotonic() - started
    assert producer.flushed and stats.sent == len(producer.sent) > 100
    assert elapsed > 0.8  # paced in real time, not as fast as possible
    labels = read_labels(tmp_path / "labels.csv")
    for topic, key, value in producer.sent:
        event = WebLog.FromString(value)
        assert topic == "t" and key == event.user_id.encode() and event.user_id in labels
    assert sum(stats.sent_by_kind.values()) == stats.sent


def test_simulate_fails_loudly_when_kafka_rejects(monkeypatch, tmp_path):
    _patch_kafka(monkeypatch, _FakeProducer(error=RuntimeError("broker down")))
    with pytest.raises(BotscoreError, match="not confirmed"):
        run.simulate(
            Settings(),
            SimulationSpec(users=300, bot_share=0.3, rate=50, duration_s=0.2, seed=9),
            tmp_path / "labels.csv",
        )


def test_speedup_runs_simulated_time_faster_than_the_wall(monkeypatch, tmp_path):
    producer = _FakeProducer()
    _patch_kafka(monkeypatch, producer)
    started = time.monotonic()
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=10.0, seed=9, speedup=10)
    stats = run.simulate(Settings(), spec, tmp_path / "labels.csv")
    elapsed = time.monotonic() - started
    times = [WebLog.FromString(value).time_unix_ms for _, _, value in producer.sent]
    assert stats.sent == len(times) == pytest.approx(1500, rel=0.15)
    assert 0.8 < elapsed < 3.0  # ten simulated seconds in one wall second, plus set-up
    assert 9_000 < times[-1] - times[0] < 10_000  # event times stay simulated time
    assert {topic for topic, _, _ in producer.sent} == {Settings().aggregation.web_logs_topic}


class _ScoredCounts:
    """The edge's ``stats()`` answering from a list: a count, or None while unreachable."""

    def __init__(self, answers):
        self.answers = list(answers)

    def stats(self):
        scored = self.answers.pop(0)
        return None if scored is None else {"users_scored": scored}


def test_first_scores_are_bracketed_by_the_samples_around_them():
    # 5 scored before the run; then none new, unreachable, 3 new, 7 new.
    stats = run.SimulationStats()
    live = run._Live(stats, 20, _ScoredCounts([5, 5, None, 8, 12]), None)  # type: ignore[arg-type]
    for sim_s in (20.0, 40.0, 60.0, 80.0):
        live._sim_s = sim_s
        live.tick(time.monotonic())
    # an unreachable sample proves nothing, so no score before 20 s is all that is known
    assert stats.unscored_until_s == 20.0
    assert stats.first_scores_s == 60.0
