"""The producer bolt base: a tuple is acked once Kafka confirmed it, failed when it did not."""

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

from bolts import kafka_producer
from bolts.kafka_producer import KafkaProducerBolt
from botscore.vocabulary import Component
from tests.unit.storm_fakes import start, storm_tuple
from tests.unit.transport.kafka_fakes import FakeProducer


class _PlainBolt(KafkaProducerBolt):
    """Writes (key, value) string pairs to the scores topic."""

    component = Component.SCORE_PRODUCER

    def target(self, settings):
        return settings.kafka.scores_topic

    def encode(self, values):
        key, value = values
        return key.encode(), value.encode()


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


def test_tuples_are_acked_only_once_kafka_confirmed_them(bolt, producer):
    component, link = bolt
    component.process(storm_tuple("t1", ["u1", "first"]))
    component.process(storm_tuple("t2", ["u2", "second"]))
    assert producer.sent == [
        ("scores-under-test", b"u1", b"first"),
        ("scores-under-test", b"u2", b"second"),
    ]
    assert link.commands() == [], "acked before Kafka answered"

    producer.flush()
    assert link.commands() == [("ack", "t1"), ("ack", "t2")]


def test_a_write_kafka_did_not_confirm_fails_its_tuple_alone(bolt, producer):
    component, link = bolt
    producer.fail[b"lost"] = KafkaTimeoutError("batch expired")
    for tup_id, value in [("t1", "kept"), ("t2", "lost"), ("t3", "also kept")]:
        component.process(storm_tuple(tup_id, ["u", value]))
    producer.flush()
    assert link.commands() == [("ack", "t1"), ("fail", "t2"), ("ack", "t3")]


def test_a_send_the_client_refuses_fails_the_tuple_at_once(bolt, producer):
    component, link = bolt
    producer.refuse[b"refused"] = NotLeaderForPartitionError("no leader")
    component.process(storm_tuple("t1", ["u", "refused"]))
    assert link.commands() == [("fail", "t1")]
    producer.flush()
    assert link.commands() == [("fail", "t1")], "a refused send was answered twice"
    assert producer.sent == []
