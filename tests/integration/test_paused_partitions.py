"""A partition paused mid-way that kafka-python never reads again, provoked on the real broker.

The spouts pause every partition while they are full. A partition paused while part of its
fetched records is still unreturned has them parked; if another partition's records pass
through the fetcher before the resume, kafka-python 3.0 keeps the parked records for good
and stops fetching that partition (see ``botscore.transport.kafka_clients.poll_group``). A
rebalance that hands a full spout new, unpaused partitions is one way to get there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import (
    connection_config,
    create_consumer,
    poll_group,
    wait_for_topic,
)

pytestmark = pytest.mark.integration

PER_PARTITION = 1_000
PER_POLL = 100  # far fewer than one fetch brings back, so a poll leaves records unreturned


@pytest.fixture
def topic(kafka_settings: KafkaSettings) -> Iterator[str]:
    admin = KafkaAdminClient(**connection_config(kafka_settings), client_id="it-paused")
    name = f"it-paused-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(**connection_config(kafka_settings))
    for n in range(PER_PARTITION):
        for partition in (0, 1):
            producer.send(name, f"{partition}-{n}".encode().ljust(100), partition=partition)
    producer.flush()
    producer.close()
    yield name
    admin.delete_topics([name])
    admin.close()


class _Reader:
    """A group consumer and the records it has read per partition."""

    def __init__(self, kafka_settings: KafkaSettings, topic: str) -> None:
        self.consumer: KafkaConsumer = create_consumer(
            kafka_settings, client_id="it-paused", group_id=topic, max_poll_records=PER_POLL
        )
        assert wait_for_topic(self.consumer, topic, lambda: False)
        self.consumer.subscribe([topic])
        self.read: dict[int, int] = {0: 0, 1: 0}

    def take(self, polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in polled.items():
            self.read[tp.partition] += len(records)

    def park_one_partition(self) -> int:
        """Pause the partition a poll left half-returned; read the other to its end."""
        deadline = time.monotonic() + 30
        first: dict[TopicPartition, list[Any]] = {}
        while not first:
            assert time.monotonic() < deadline, "no record read in 30 s"
            first = self.consumer.poll(timeout_ms=200)
        self.take(first)
        assert len(first) == 1 and sum(self.read.values()) == PER_POLL, self.read
        (parked,) = first
        self.consumer.pause(parked)
        other = 1 - parked.partition
        while self.read[other] < PER_PARTITION:
            assert time.monotonic() < deadline, f"partition {other} not read in 30 s: {self.read}"
            self.take(self.consumer.poll(timeout_ms=200))
        self.consumer.resume(parked)
        return parked.partition

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def test_plain_poll_never_reads_the_parked_partition_again(
    kafka_settings: KafkaSettings, topic: str
) -> None:
    """Shows the scenario really stalls kafka-python; if this fails, the client was fixed."""
    reader = _Reader(kafka_settings, topic)
    try:
        parked = reader.park_one_partition()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reader.take(reader.consumer.poll(timeout_ms=200))
        assert reader.read[parked] == PER_POLL, (
            f"kafka-python read the resumed partition on ({reader.read}): "
            "poll_group's parked-records workaround may no longer be needed"
        )
    finally:
        reader.close()


def test_poll_group_reads_the_resumed_partition_to_its_end(
    kafka_settings: KafkaSettings, topic: str, report_figure
) -> None:
    reader = _Reader(kafka_settings, topic)
    try:
        parked = reader.park_one_partition()
        resumed = time.monotonic()
        deadline = resumed + 30
        while reader.read[parked] < PER_PARTITION:
            assert time.monotonic() < deadline, f"resumed partition stalled: {reader.read}"
            reader.take(poll_group(reader.consumer, timeout_ms=200))
        assert reader.read == {0: PER_PARTITION, 1: PER_PARTITION}
        report_figure(
            f"partition paused mid-fetch: read to its end {time.monotonic() - resumed:.2f} s "
            "after the resume"
        )
    finally:
        reader.close()
