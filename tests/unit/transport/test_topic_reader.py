"""Assigning a whole topic and reading it to its end."""

import pytest
from kafka import TopicPartition

from botscore.errors import BotscoreError, TopicMissing
from botscore.transport.topic_reader import StartAt, assign_topic, read_to_end

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
