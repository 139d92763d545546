"""Assigning a whole topic and reading it to its end."""

import pytest
from kafka import TopicPartition

from botscore.errors import BotscoreError, TopicMissing
from botscore.transport.topic_reader import (
    IDLE_POLLS,
    StartAt,
    assign_topic,
    read_between,
    read_to_end,
)

from .kafka_fakes import FakeConsumer

T = "scores"


def three_partitions() -> FakeConsumer:
    return FakeConsumer({T: {2: [b"c0"], 0: [b"a0", b"a1", b"a2"], 1: []}, "other": {0: [b"x"]}})


def test_assign_takes_every_partition_in_order_and_seeks_to_the_beginning():
    consumer = three_partitions()
    assigned = assign_topic(consumer, T, start=StartAt.BEGINNING)
    expected = [TopicPartition(T, 0), TopicPartition(T, 1), TopicPartition(T, 2)]
    assert assigned == expected
    assert consumer.events == [("assign", expected), ("seek_to_beginning", expected)]
    assert [consumer.position(tp) for tp in expected] == [0, 0, 0]


def test_assign_can_start_at_the_end():
    consumer = three_partitions()
    assigned = assign_topic(consumer, T, start=StartAt.END)
    assert consumer.events[-1] == ("seek_to_end", assigned)
    assert [consumer.position(tp) for tp in assigned] == [3, 0, 1]


def test_assign_from_committed_does_not_seek():
    consumer = three_partitions()
    consumer.committed = {TopicPartition(T, 0): 2}
    assigned = assign_topic(consumer, T, start=StartAt.COMMITTED)
    assert [e[0] for e in consumer.events] == ["assign"]
    assert consumer.position(assigned[0]) == 2


def test_a_topic_without_partitions_is_missing():
    consumer = three_partitions()
    with pytest.raises(TopicMissing) as raised:
        assign_topic(consumer, "nope", start=StartAt.BEGINNING)
    assert raised.value.topic == "nope"
    assert isinstance(raised.value, BotscoreError)
    assert "botscore topics" in str(raised.value)
    assert consumer.assigned == []


def test_read_to_end_yields_every_record_once_then_stops():
    consumer = three_partitions()
    records = list(read_to_end(consumer, T))
    by_partition = {
        p: [(r.offset, r.value) for r in records if r.partition == p] for p in (0, 1, 2)
    }
    assert by_partition == {0: [(0, b"a0"), (1, b"a1"), (2, b"a2")], 1: [], 2: [(0, b"c0")]}
    assert all(r.topic == T for r in records)


def test_read_to_end_stops_at_the_end_it_saw_when_it_started():
    def write_more(consumer: FakeConsumer) -> None:
        consumer.append(T, 0, b"late")

    consumer = FakeConsumer({T: {0: [b"a0", b"a1", b"a2"]}}, max_per_poll=2, on_poll=write_more)
    values = [r.value for r in read_to_end(consumer, T)]
    assert values == [b"a0", b"a1", b"a2"]
    assert len(consumer.logs[TopicPartition(T, 0)]) > 3


def test_read_to_end_can_start_at_the_committed_position():
    committed = {TopicPartition(T, 0): 2, TopicPartition(T, 2): 1}
    consumer = FakeConsumer({T: {0: [b"a0", b"a1", b"a2"], 2: [b"c0"]}}, committed=committed)
    values = [r.value for r in read_to_end(consumer, T, from_committed=True)]
    assert values == [b"a2"]


def test_read_to_end_of_an_empty_topic_does_not_poll():
    consumer = FakeConsumer({T: {0: [], 1: []}})
    assert list(read_to_end(consumer, T)) == []
    assert consumer.polls == 0


def test_read_to_end_of_a_missing_topic_raises():
    with pytest.raises(TopicMissing):
        list(read_to_end(FakeConsumer(), T))


def test_read_to_end_can_take_only_the_last_records_of_each_partition():
    consumer = three_partitions()
    records = list(read_to_end(consumer, T, last=2))
    assert sorted((r.partition, r.offset) for r in records) == [(0, 1), (0, 2), (2, 0)]


def test_a_partition_ending_in_offsets_no_poll_returns_is_done_when_its_position_is():
    consumer = FakeConsumer({T: {0: [b"a", b"b", b"marker"]}}, max_per_poll=10)
    p0 = TopicPartition(T, 0)
    consumer.logs[p0] = consumer.logs[p0][:2]  # offset 2: a transaction marker
    consumer.end_offsets = lambda partitions: {tp: 3 for tp in partitions}
    original_poll = consumer.poll

    def poll(timeout_ms=0):
        polled = original_poll(timeout_ms)
        if not polled:  # the fetch that finds only the marker moves past it
            consumer.positions[p0] = 3
        return polled

    consumer.poll = poll
    assert [r.value for r in read_to_end(consumer, T)] == [b"a", b"b"]
    assert consumer.polls == 2


def test_a_log_that_moved_back_under_the_reader_ends_the_read_at_its_new_end():
    consumer = FakeConsumer({T: {0: [b"a", b"b", b"c", b"d"]}}, max_per_poll=2)
    p0 = TopicPartition(T, 0)

    def recreate(c):
        if c.polls == 2:  # after a and b: the topic is recreated with one record
            c.logs[p0] = c.logs[p0][:1]
            c.positions[p0] = 1

    consumer.on_poll = recreate
    assert [r.value for r in read_to_end(consumer, T)] == [b"a", b"b"]
    assert consumer.polls == 1 + IDLE_POLLS


def test_read_between_takes_each_partition_from_since_to_before_until():
    """From a partition's first record at or after ``since`` to before its first at or after
    ``until``: none when all are older, to its end when none is as late as ``until``."""
    consumer = FakeConsumer({T: {3: []}})
    times = {0: [100, 200, 300, 400], 1: [50, 60], 2: [250, 500], 4: [300, 350]}
    for partition, stamps in times.items():
        for stamp in stamps:
            consumer.append(T, partition, b"v", timestamp=stamp)
    read = [(r.partition, r.timestamp) for r in read_between(consumer, T, 200, 400)]
    assert sorted(read) == [(0, 200), (0, 300), (2, 250), (4, 300), (4, 350)]
