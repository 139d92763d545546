"""The Kafka spout base's ``initialize``: the clients it creates and its wait for the topic.

``create_consumer`` and ``create_producer`` are replaced by fakes that keep what they were
asked for; the consumer is ``FakeGroupMember``. Time moves only when the spout sleeps.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kafka import TopicPartition

from botscore.errors import ConfigError
from botscore.transport import kafka_clients
from botscore.vocabulary import Component
from spouts import kafka_source
from tests.unit.spouts.test_kafka_source import TOPIC, _Clock, _LinesSpout
from tests.unit.storm_fakes import start
from tests.unit.transport.kafka_fakes import FakeGroupMember, FakeProducer

P0 = TopicPartition(TOPIC, 0)


class _Clients:
    """Replaces the spout's client factories; keeps each call's arguments."""

    def __init__(self, monkeypatch, logs: dict[TopicPartition, list[bytes]]) -> None:
        self.consumers: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.producers: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.members: list[FakeGroupMember] = []

        def consumer(*args: Any, **kwargs: Any) -> FakeGroupMember:
            self.consumers.append((args, kwargs))
            self.members.append(FakeGroupMember(logs, committed={}))
            return self.members[-1]

        def producer(*args: Any, **kwargs: Any) -> FakeProducer:
            self.producers.append((args, kwargs))
            return FakeProducer()

        monkeypatch.setattr(kafka_source, "create_consumer", consumer)
        monkeypatch.setattr(kafka_source, "create_producer", producer)


def test_the_consumer_reads_as_the_spouts_group_with_the_spouts_settings(monkeypatch):
    """The consumer group is ``source()``'s; a position outside the log goes to its start
    even where new groups start at the end (``auto_offset_reset`` is only that choice)."""
    clients = _Clients(monkeypatch, {P0: [b"a"]})
    spout, _ = start(_LinesSpout, {"botscore.kafka.auto_offset_reset": "latest"}, monkeypatch)
    [(args, kwargs)] = clients.consumers
    assert args == (spout.kafka,)
    assert spout.kafka.auto_offset_reset == "latest"
    assert kwargs["group_id"] == "lines-group"
    assert kwargs["auto_offset_reset"] == "earliest"


def test_each_task_has_client_ids_of_its_own_for_its_consumer_and_its_producer(monkeypatch):
    """Brokers' logs, metrics and quotas tell the clients apart by client id."""
    clients = _Clients(monkeypatch, {P0: [b"a"]})
    spouts = [start(_LinesSpout, {}, monkeypatch, task_id=task)[0] for task in (7, 8)]
    consumer_ids = [kwargs["client_id"] for _, kwargs in clients.consumers]
    producer_ids = [kwargs["client_id"] for _, kwargs in clients.producers]
    assert [args for args, _ in clients.producers] == [(spout.kafka,) for spout in spouts]
    assert len(set(consumer_ids + producer_ids)) == 4
    for client_id, task in zip(consumer_ids + producer_ids, (7, 8, 7, 8), strict=True):
        assert Component.FEATURES_SPOUT in client_id and client_id.endswith(f"-{task}")


def test_without_a_storm_id_the_static_member_name_comes_from_the_topology_name(monkeypatch):
    """Two topologies (named, without ``storm.id``) reading one group never share a name;
    the same topology's restarted task keeps its own."""
    clients = _Clients(monkeypatch, {P0: [b"a"]})
    for name in ("lines-a", "lines-a", "lines-b"):
        start(_LinesSpout, {"topology.name": name}, monkeypatch)
    first, restarted, other = (kwargs["instance"] for _, kwargs in clients.consumers)
    assert first == restarted
    assert first != other


def _wait_on_fake_time(monkeypatch) -> _Clock:
    """The spout's clock, and ``wait_for_topic`` sleeping on it; a wait that never gives up
    fails the test instead of hanging it."""
    clock = _Clock()
    monkeypatch.setattr(kafka_source, "time", clock)
    wait_for_topic = kafka_clients.wait_for_topic
    began = clock.now

    def pause(seconds: float) -> None:
        if clock.now - began > 100:
            raise AssertionError("still waiting for the topic after 100 s")
        clock.sleep(seconds)

    monkeypatch.setattr(
        kafka_source,
        "wait_for_topic",
        lambda consumer, topic, give_up: wait_for_topic(consumer, topic, give_up, pause=pause),
    )
    return clock


def test_a_missing_topic_is_waited_for_30_s_then_reported_and_subscribed_to_anyway(
    monkeypatch, caplog
):
    clients = _Clients(monkeypatch, {})
    clock = _wait_on_fake_time(monkeypatch)
    began = clock.now
    with caplog.at_level(logging.ERROR):
        start(_LinesSpout, {}, monkeypatch)
    assert 30 < clock.now - began <= 31
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert TOPIC in error
    assert clients.members[0].subscription.subscription == {TOPIC}


def test_a_topic_that_exists_is_subscribed_to_at_once(monkeypatch, caplog):
    clients = _Clients(monkeypatch, {P0: [b"a"]})
    clock = _wait_on_fake_time(monkeypatch)
    began = clock.now
    with caplog.at_level(logging.ERROR):
        start(_LinesSpout, {}, monkeypatch)
    assert clock.now == began
    assert [r for r in caplog.records if r.levelno == logging.ERROR] == []
    assert clients.members[0].subscription.subscription == {TOPIC}


@pytest.mark.parametrize("per_tuple", [0])
def test_a_spout_needs_at_least_one_message_per_tuple(monkeypatch, per_tuple):
    _Clients(monkeypatch, {P0: [b"a"]})
    spout_class = type("_Lines", (_LinesSpout,), {"lines_per_tuple": per_tuple})
    with pytest.raises(ConfigError):
        start(spout_class, {}, monkeypatch)
