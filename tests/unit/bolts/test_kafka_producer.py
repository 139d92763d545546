"""The producer bolt base: a tuple is acked once Kafka confirmed all its messages, failed
once at the first that failed, never both."""

import threading

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

from bolts import kafka_producer
from bolts.kafka_producer import KafkaProducerBolt
from botscore.vocabulary import Component
from tests.unit.storm_fakes import start, storm_tuple
from tests.unit.transport.kafka_fakes import FakeProducer


class _PlainBolt(KafkaProducerBolt):
    """Writes a key and its string values, one message each, to the scores topic; a
    partition number as third value names the partition."""

    component = Component.SCORE_PRODUCER

    def target(self, settings):
        return settings.kafka.scores_topic

    def encode(self, values):
        key, messages, *_ = values
        return [(key.encode(), value.encode()) for value in messages]

    def partition(self, values):
        return values[2] if len(values) > 2 else None


@pytest.fixture
def producer():
    return FakeProducer()


@pytest.fixture
def producers_made(producer, monkeypatch):
    """(bootstrap servers, client id) of each producer the bolt asked for."""
    made = []

    def create_producer(settings, client_id):
        made.append((settings.bootstrap_servers, client_id))
        return producer

    monkeypatch.setattr(kafka_producer, "create_producer", create_producer)
    return made


@pytest.fixture
def bolt(producers_made, monkeypatch):
    options = {
        "botscore.kafka.scores_topic": "scores-under-test",
        "botscore.kafka.bootstrap_servers": "broker-under-test:9092",
    }
    return start(_PlainBolt, options, monkeypatch, task_id=3)


def test_the_producer_comes_from_the_settings_and_names_the_task(bolt, producers_made):
    assert producers_made == [("broker-under-test:9092", "botscore-score_producer-3")]


def test_a_tuple_is_acked_once_kafka_confirmed_every_one_of_its_messages(bolt, producer):
    component, link = bolt
    component.process(storm_tuple("t1", ["u1", ["a", "b", "c"]]))
    component.process(storm_tuple("t2", ["u2", ["d"]]))
    assert producer.sent == [
        ("scores-under-test", b"u1", b"a"),
        ("scores-under-test", b"u1", b"b"),
        ("scores-under-test", b"u1", b"c"),
        ("scores-under-test", b"u2", b"d"),
    ]
    assert producer.sent_partitions == [None] * 4  # the keys decide
    producer.settle(2)
    assert link.commands() == [], "acked before Kafka confirmed every message"
    producer.settle(1)
    assert link.commands() == [("ack", "t1")]
    producer.flush()
    assert link.commands() == [("ack", "t1"), ("ack", "t2")]


def test_the_partition_hook_names_the_partition_of_every_message(bolt, producer):
    component, _ = bolt
    component.process(storm_tuple("t1", ["u1", ["a", "b"], 3]))
    assert producer.sent_partitions == [3, 3]


@pytest.mark.parametrize("lost", ["a", "b", "c"])
def test_a_tuple_is_failed_once_at_its_first_lost_message_and_never_acked(bolt, producer, lost):
    component, link = bolt
    producer.fail[lost.encode()] = KafkaTimeoutError("batch expired")
    component.process(storm_tuple("t1", ["u", ["a", "b", "c"]]))
    component.process(storm_tuple("t2", ["u", ["kept"]]))
    producer.flush()
    assert link.commands() == [("fail", "t1"), ("ack", "t2")]


def test_two_lost_messages_fail_their_tuple_once(bolt, producer):
    component, link = bolt
    producer.fail[b"a"] = producer.fail[b"c"] = KafkaTimeoutError("batch expired")
    component.process(storm_tuple("t1", ["u", ["a", "b", "c"]]))
    producer.flush()
    assert link.commands() == [("fail", "t1")]


def test_a_send_the_client_refuses_fails_the_tuple_at_once_and_sends_no_more(bolt, producer):
    component, link = bolt
    producer.refuse[b"refused"] = NotLeaderForPartitionError("no leader")
    component.process(storm_tuple("t1", ["u", ["sent", "refused", "never"]]))
    assert link.commands() == [("fail", "t1")]
    assert producer.sent == [("scores-under-test", b"u", b"sent")]
    producer.flush()
    assert link.commands() == [("fail", "t1")], "a refused tuple was answered twice"


def test_a_tuple_that_cannot_be_encoded_is_failed(bolt, producer):
    component, link = bolt
    component.process(storm_tuple("t1", ["only-a-key"]))
    assert link.commands() == [("fail", "t1")]
    assert producer.sent == []


def test_a_tuple_without_messages_is_acked_at_once(bolt, producer):
    component, link = bolt
    component.process(storm_tuple("t1", ["u", []]))
    assert link.commands() == [("ack", "t1")]


def test_confirmations_from_many_threads_ack_the_tuple_exactly_once(bolt, producer):
    component, link = bolt
    values = [str(i) for i in range(2000)]
    component.process(storm_tuple("t1", ["u", values]))
    futures = [future for _, future in producer._unsettled]
    chunks = [futures[i::4] for i in range(4)]
    threads = [
        threading.Thread(target=lambda c=c: [f.success("metadata") for f in c]) for c in chunks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert link.commands() == [("ack", "t1")]
