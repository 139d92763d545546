"""A group rejoin that kafka-python abandons, provoked on the real broker.

The group's only member leads it, so it rejoins when its topic grows. Polling without
waiting and pausing between polls makes that JoinGroup/SyncGroup end between two polls:
the moment at which kafka-python 3.0 stops collecting the new assignment (see
``botscore.transport.kafka_clients.poll_group``). The spouts and the enforcer hit the same moment
by chance, at start-up, when the machine is busy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic

from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import (
    connection_config,
    create_consumer,
    poll_group,
    wait_for_topic,
)

pytestmark = pytest.mark.integration

PER_PARTITION = 10


class _Events(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, list[int]]] = []

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.events.append(("revoked", sorted(tp.partition for tp in revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.events.append(("assigned", sorted(tp.partition for tp in assigned)))


@pytest.fixture
def admin(kafka_settings: KafkaSettings) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(**connection_config(kafka_settings), client_id="it-rejoin")
    yield client
    client.close()


def _until(condition: Callable[[], bool], timeout_s: float, step: Callable[[], object]) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        step()
    return True


def _stranded(
    kafka_settings: KafkaSettings, admin: KafkaAdminClient
) -> tuple[KafkaConsumer, _Events, str]:
    """A consumer whose rejoin after the topic grew from 2 to 4 partitions was abandoned."""
    topic = f"it-rejoin-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    consumer = create_consumer(
        kafka_settings, client_id="it-rejoin", group_id=topic, metadata_max_age_ms=1000
    )
    assert wait_for_topic(consumer, topic, lambda: False)
    listener = _Events()
    consumer.subscribe([topic], listener=listener)
    assert _until(
        lambda: ("assigned", [0, 1]) in listener.events,
        30,
        lambda: poll_group(consumer, timeout_ms=100),
    ), f"never joined: {listener.events}"
    joined = len(listener.events)

    admin.create_partitions({topic: NewPartitions(total_count=4)})

    def poll_then_pause() -> None:
        consumer.poll(timeout_ms=0)
        time.sleep(1)

    assert _until(lambda: ("revoked", [0, 1]) in listener.events[joined:], 30, poll_then_pause), (
        f"the grown topic did not start a rejoin: {listener.events}"
    )
    poll_then_pause()  # the rejoin ended during this pause; the next poll ignores it
    return consumer, listener, topic


def _produce(kafka_settings: KafkaSettings, topic: str) -> None:
    producer = KafkaProducer(**connection_config(kafka_settings))
    for partition in range(4):
        for n in range(PER_PARTITION):
            producer.send(topic, f"{partition}-{n}".encode(), partition=partition)
    producer.flush()
    producer.close()


def test_plain_poll_never_collects_the_abandoned_rejoin(
    kafka_settings: KafkaSettings, admin: KafkaAdminClient
) -> None:
    """Shows the scenario really strands kafka-python; if this fails, the client was fixed."""
    consumer, listener, topic = _stranded(kafka_settings, admin)
    try:
        _produce(kafka_settings, topic)
        received = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            received += sum(len(r) for r in consumer.poll(timeout_ms=100).values())
        assert listener.events[-1][0] == "revoked", (
            f"kafka-python completed the rejoin by itself ({listener.events}): "
            "poll_group's workaround may no longer be needed"
        )
        assert received == 0
    finally:
        consumer.close(autocommit=False)
        admin.delete_topics([topic])


def test_poll_group_rejoins_and_reads_every_partition(
    kafka_settings: KafkaSettings, admin: KafkaAdminClient, report_figure
) -> None:
    consumer, listener, topic = _stranded(kafka_settings, admin)
    try:
        _produce(kafka_settings, topic)
        seen: set[bytes] = set()
        started = time.monotonic()

        def read() -> None:
            for records in poll_group(consumer, timeout_ms=100).values():
                seen.update(r.value for r in records)

        assert _until(lambda: len(seen) == 4 * PER_PARTITION, 60, read), (
            f"read {len(seen)} of {4 * PER_PARTITION}; rebalance events {listener.events}"
        )
        assert listener.events[-1] == ("assigned", [0, 1, 2, 3])
        report_figure(
            f"abandoned group rejoin: all {len(seen)} messages read "
            f"{time.monotonic() - started:.2f} s after it"
        )
    finally:
        consumer.close(autocommit=False)
        admin.delete_topics([topic])
