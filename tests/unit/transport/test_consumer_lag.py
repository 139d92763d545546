"""Lag gauges: end offset minus the consumer's commit, read once per interval, never fatal."""

from __future__ import annotations

import logging

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from botscore.transport.consumer_lag import LagGauges
from botscore.vocabulary import Component
from tests.unit.metrics_fakes import RecordingMetrics

TOPIC = "scores"
INTERVAL_S = 5.0


class _Consumer:
    """Answers ``end_offsets`` from ``ends``, or raises ``error``; counts the round trips."""

    def __init__(self, ends: dict[int, int]) -> None:
        self.ends = ends
        self.error: Exception | None = None
        self.reads: list[tuple[list[TopicPartition], int | None]] = []

    def end_offsets(self, partitions, timeout_ms=None):
        self.reads.append((list(partitions), timeout_ms))
        if self.error is not None:
            raise self.error
        return {tp: self.ends[tp.partition] for tp in partitions}


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts():
    consumer = _Consumer({0: 120, 1: 7})
    metrics = RecordingMetrics(Component.ENFORCER)
    clock = _Clock()
    lag = LagGauges(consumer, metrics, INTERVAL_S, logging.getLogger("test"), clock=clock)
    return consumer, metrics, clock, lag


def _tags(partition: int) -> tuple[str, ...]:
    return (f"topic:{TOPIC}", f"partition:{partition}")


def test_sends_end_offset_minus_commit_and_the_commit_per_partition(parts):
    consumer, metrics, clock, lag = parts
    clock.now += INTERVAL_S
    lag.report(lambda: {(TOPIC, 0): 100, (TOPIC, 1): 7})
    assert metrics.gauges("lag") == {_tags(0): 20, _tags(1): 0}
    assert metrics.gauges("committed_offset") == {_tags(0): 100, _tags(1): 7}
    [(partitions, timeout_ms)] = consumer.reads
    assert partitions == [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    assert timeout_ms is not None and timeout_ms <= 1000  # a spout must answer Storm


def test_reads_the_broker_at_most_once_per_interval_and_asks_for_commits_only_then(parts):
    consumer, _, clock, lag = parts
    asked = []

    def committed():
        asked.append(clock.now)
        return {(TOPIC, 0): 100}

    for _ in range(4):  # many calls per interval, as a spout's next_tuple makes
        clock.now += 1.0
        lag.report(committed)
    assert consumer.reads == [] and asked == []
    clock.now += 1.0
    lag.report(committed)
    lag.report(committed)
    assert len(consumer.reads) == 1 and len(asked) == 1
    clock.now += INTERVAL_S
    lag.report(committed)
    assert len(consumer.reads) == 2


def test_a_commit_ahead_of_the_end_offset_is_no_negative_lag(parts):
    _, metrics, clock, lag = parts
    clock.now += INTERVAL_S
    lag.report(lambda: {(TOPIC, 1): 9})
    assert metrics.gauges("lag") == {_tags(1): 0}


def test_no_partitions_committed_means_no_round_trip(parts):
    consumer, metrics, clock, lag = parts
    clock.now += INTERVAL_S
    lag.report(dict)
    assert consumer.reads == [] and metrics.sent == []


def test_a_broker_error_is_logged_and_counted_then_the_next_interval_reads_again(parts, caplog):
    consumer, metrics, clock, lag = parts
    consumer.error = KafkaTimeoutError("Failed to get offsets by timestamps in 1000 ms")
    clock.now += INTERVAL_S
    with caplog.at_level(logging.WARNING):
        lag.report(lambda: {(TOPIC, 0): 100})  # does not raise
    assert metrics.counted("lag_read_failed") == 1
    assert metrics.gauges("lag") == {}
    assert "end offsets unknown" in caplog.text
    lag.report(lambda: {(TOPIC, 0): 100})
    assert len(consumer.reads) == 1  # not retried at once: the cadence holds
    consumer.error = None
    clock.now += INTERVAL_S
    lag.report(lambda: {(TOPIC, 0): 100})
    assert metrics.gauges("lag") == {_tags(0): 20}
