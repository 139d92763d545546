import logging
import threading
from unittest import mock

import redis
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from botscore.enforcement import consumer
from botscore.enforcement.decisions import Written
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.transport.kafka_fakes import FakeCoordinator, FakeFetcher, FakeProducer

FAILURES = 5_000


class _InstantStop(threading.Event):
    """A stop event whose waits return at once, remembering what was asked."""

    def __init__(self):
        super().__init__()
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


def _failing(times):
    calls = []

    def action():
        calls.append(None)
        if len(calls) <= times:
            raise redis.RedisError("connection refused")

    return action, calls


def test_the_retry_loop_survives_five_thousand_failures_and_logs_sparingly(caplog):
    caplog.set_level(logging.INFO, logger=consumer.__name__)
    stop = _InstantStop()
    action, calls = _failing(FAILURES)
    assert consumer._until_done(stop, "writing decisions", action) is True
    assert len(calls) == FAILURES + 1
    assert len(stop.waits) == FAILURES
    # Backing off up to 5 s between attempts.
    assert all(0 < wait <= 5.0 for wait in stop.waits)
    assert stop.waits[-1] == 5.0

    # Only the enforcer's: a client thread left by another test may log meanwhile.
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name == consumer.__name__
    ]
    logged_attempts = [r.args[1] for r in errors]
    powers_of_two = [2**n for n in range(2, 13)]  # 4 .. 4096
    every_120th = list(range(120, FAILURES + 1, 120))
    assert logged_attempts == sorted({1, 2, 3, *powers_of_two, *every_120th})
    assert len(errors) == 55
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == consumer.__name__
    ]
    assert len(warnings) == 1
    assert f"after {FAILURES} failed attempts" in warnings[0].getMessage()


def test_the_retry_loop_gives_up_when_stopped():
    stop = _InstantStop()
    action, calls = _failing(10)
    stop.set()
    assert consumer._until_done(stop, "writing decisions", action) is False
    assert calls == []


def _score_record():
    return ScoreRecord("c-1", 0.9, "block", "baseline", "2", 1_000, 1_010, SourceRef("f", 0, 1))


def _record(offset, value):
    return ConsumerRecord(
        topic="threat-scores",
        partition=0,
        leader_epoch=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"c-1",
        value=value,
        headers=[],
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=len(value),
        serialized_header_size=-1,
    )


class _Writer:
    """Fails ``failures`` times, then answers each score's outcome; records the clock."""

    def __init__(self, failures, outcomes, replaced=(), lost=False):
        self.failures = failures
        self.outcomes = outcomes
        self.replaced = list(replaced)
        self.lost = lost
        self.clocks = []

    def write(self, scores, now_ms):
        self.clocks.append(now_ms)
        if len(self.clocks) <= self.failures:
            raise redis.ConnectionError("down")
        return Written(self.outcomes[: len(scores)], self.replaced, self.lost)


class _Letters:
    def add(self, letter, token):
        raise AssertionError(f"unexpected dead letter {letter}")

    def flush_and_confirm(self, timeout_s):
        return None


def test_a_retried_batch_is_judged_by_the_clock_when_it_is_written(monkeypatch):
    clock = iter([1_000, 2_000, 3_000])
    monkeypatch.setattr(consumer, "now_ms", lambda: next(clock))
    score = _score_record()
    polled = {
        TopicPartition("threat-scores", 0): [
            _record(offset, encode_threat_score(score)) for offset in range(3)
        ]
    }
    writer = _Writer(failures=1, outcomes=["stale", "stale", "block"])
    metrics = RecordingMetrics(Component.ENFORCER)
    assert consumer._apply_batch(polled, writer, _Letters(), _InstantStop(), metrics) is True
    assert writer.clocks == [1_000, 2_000]
    counts = [(what, value, tags) for kind, what, value, tags in metrics.sent if kind == "count"]
    assert sorted(counts) == [
        ("redis_failed", 1, ()),  # the first attempt
        ("scores", 1, ("outcome:block",)),
        ("scores", 2, ("outcome:stale",)),
    ]
    [(_, _, seconds, _)] = [m for m in metrics.sent if m[1] == "redis_seconds"]
    assert seconds >= 0  # the write that succeeded, timed


def test_keys_the_merge_replaced_are_logged_and_counted(caplog):
    polled = {
        TopicPartition("threat-scores", 0): [_record(0, encode_threat_score(_score_record()))]
    }
    replaced = ["bs:edge:latest:u-1", "bs:edge:scored_users"]
    writer = _Writer(failures=0, outcomes=["block"], replaced=replaced)
    metrics = RecordingMetrics(Component.ENFORCER)
    assert consumer._apply_batch(polled, writer, _Letters(), _InstantStop(), metrics) is True
    assert metrics.counted("keys_replaced") == 2
    assert "bs:edge:latest:u-1, bs:edge:scored_users" in caplog.text


def test_decisions_redis_lost_are_logged_counted_and_reported_to_the_loop(caplog):
    polled = {
        TopicPartition("threat-scores", 0): [_record(0, encode_threat_score(_score_record()))]
    }
    metrics = RecordingMetrics(Component.ENFORCER)
    reported = []
    writer = _Writer(failures=0, outcomes=["block"], lost=True)
    assert consumer._apply_batch(
        polled, writer, _Letters(), _InstantStop(), metrics, lost=lambda: reported.append(1)
    )
    assert reported == [1] and metrics.counted("decisions_lost") == 1
    assert "Redis lost the decisions" in caplog.text


def test_a_batch_commit_waits_at_most_2_s():
    """README: commits 2 s; the enforcer waits no longer for the group coordinator."""

    class _Consumer:
        def __init__(self):
            self.commits = []

        def commit(self, offsets, timeout_ms=None):
            self.commits.append(
                ({tp: (m.offset, m.metadata) for tp, m in offsets.items()}, timeout_ms)
            )

    tp = TopicPartition("threat-scores", 0)
    kafka_consumer = _Consumer()
    committed = consumer._commit(kafka_consumer, {tp: [_record(4, b""), _record(5, b"")]}, "g7")
    assert kafka_consumer.commits == [({tp: (6, "g7")}, 2000)]  # under the generation
    assert committed == {("threat-scores", 0): 6}  # what the lag gauges measure from


def test_a_failed_commit_leaves_the_lag_measured_from_the_last_good_one():
    class _Refusing:
        def commit(self, offsets, timeout_ms=None):
            raise KafkaTimeoutError("coordinator gone")

    tp = TopicPartition("threat-scores", 0)
    assert consumer._commit(_Refusing(), {tp: [_record(4, b"")]}, "g1") == {}


def test_the_lag_forgets_partitions_the_enforcer_no_longer_owns():
    class _Owner:
        def assignment(self):
            return {TopicPartition("threat-scores", 1)}

    commits = {("threat-scores", 0): 10, ("threat-scores", 1): 20}
    assert consumer._owned(commits, _Owner()) == {("threat-scores", 1): 20}
    assert commits == {("threat-scores", 1): 20}


def test_the_retry_loop_keeps_the_lag_gauges_going_through_an_outage():
    stop = _InstantStop()
    action, calls = _failing(3)
    ticks = []
    assert consumer._until_done(stop, "writing decisions", action, lambda: ticks.append(1))
    assert len(ticks) == len(calls) == 4


def test_the_enforcer_rejoins_a_group_rejoin_the_client_abandoned(monkeypatch):
    stop = threading.Event()
    coordinator = FakeCoordinator(rejoining=True, need_rejoin=False)

    class _Consumer:
        _coordinator = coordinator
        _fetcher = FakeFetcher()

        def partitions_for_topic(self, topic):
            return {0}

        def subscribe(self, topics):
            pass

        def poll(self, timeout_ms):
            stop.set()  # one poll is enough
            return {}

        def assignment(self):
            return set()

        def close(self, autocommit):
            pass

    monkeypatch.setattr(consumer, "create_consumer", lambda *a, **k: _Consumer())
    monkeypatch.setattr(consumer, "create_producer", lambda *a, **k: FakeProducer())
    monkeypatch.setattr(consumer, "create_redis", lambda settings: mock.MagicMock())
    settings = Settings.from_options({"botscore.metrics.enabled": False}, environ={})
    consumer.run_enforcer(settings, stop)
    assert coordinator.rejoins_requested == 1


class _Assigned:
    """A consumer with ``assignment`` and the group's commits (offset, metadata), some of
    which the coordinator does not answer."""

    def __init__(self, commits, unanswered=()):
        self.commits = commits
        self.unanswered = set(unanswered)

    def assignment(self):
        return set(self.commits)

    def committed(self, tp, metadata=False, timeout_ms=None):
        assert metadata and timeout_ms == 2000
        if tp in self.unanswered:
            raise KafkaTimeoutError("coordinator gone")
        found = self.commits[tp]
        return None if found is None else OffsetAndMetadata(*found, -1)


def test_partitions_committed_under_another_generation_are_found_once_each(caplog):
    p = [TopicPartition("threat-scores", n) for n in range(5)]
    commits = {p[0]: (5, "g1"), p[1]: (5, ""), p[2]: (5, "g0"), p[3]: None, p[4]: (9, "g0")}
    kafka_consumer = _Assigned(commits, unanswered=[p[4]])
    checked = set()
    stale = consumer._committed_under_another_generation(kafka_consumer, "g1", checked)
    assert stale == {p[2]}
    assert checked == {p[0], p[1], p[2], p[3]}  # p[4] is asked again next time
    assert "committed under generation g0, now g1" in caplog.text
    kafka_consumer.unanswered.clear()
    assert consumer._committed_under_another_generation(kafka_consumer, "g1", checked) == {p[4]}
    assert consumer._committed_under_another_generation(kafka_consumer, "g1", checked) == set()


class _Seeking:
    """A consumer that owns ``owned`` partitions and records its seeks."""

    def __init__(self, owned):
        self.owned = set(owned)
        self.seeks = []

    def assignment(self):
        return set(self.owned)

    def seek(self, tp, offset):
        assert tp in self.owned, "kafka-python refuses to seek an unassigned partition"
        self.seeks.append((tp.partition, offset))


def test_records_of_partitions_not_checked_are_polled_again_not_applied():
    """A partition whose commit was not compared with the decisions' generation yet (or was
    stale) keeps its records for a later poll: applying and committing them under the
    generation first would hide a loss while no enforcer ran."""
    p = [TopicPartition("threat-scores", n) for n in range(3)]
    polled = {tp: [_record(10 + tp.partition, b""), _record(20, b"")] for tp in p}
    kafka_consumer = _Seeking(owned=p[:2])  # p[2] was revoked since the poll
    kept = consumer._checked_only(kafka_consumer, polled, {p[0]})
    assert kept == {p[0]: polled[p[0]]}
    assert kafka_consumer.seeks == [(1, 11)]
