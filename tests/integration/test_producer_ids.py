"""Our idempotent producers against a broker that stalls or refuses a record: a batch that
expires after it was sent, or that the broker refuses for good, costs the producer its id, and
it must ask for a new one and send on (``botscore.transport.producer_ids``; kafka-python 3.0.12
alone never sent again after the first, and failed every later send after the second)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import create_producer, ensure_topics

from .harness import ROOT, delete_topics, limit_message_bytes, new_run_id, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.faults]

STATE = os.environ.get("BOTSCORE_STATE", str(ROOT / ".stack"))


def _broker_pid() -> int:
    """The stack's broker (`make up`), from the pid file kafka.sh keeps."""
    pid_file = os.path.join(STATE, "kafka", "kafka.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError) as exc:
        pytest.fail(f"no broker pid in {pid_file} ({exc}): start the stack with `make up`")
    return pid


def _wait_stopped(pid: int) -> None:
    """Until every thread of ``pid`` has stopped: a signal reaches them one by one."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = set()
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.add(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                continue  # a thread that ended meanwhile
        if states == {"T"}:
            return
        time.sleep(0.05)
    pytest.fail(f"the broker ({pid}) did not stop within 10 s of SIGSTOP")


def test_a_batch_expired_in_flight_leaves_the_producer_sending(
    kafka_settings: KafkaSettings, report_figure
):
    topic = f"it-producer-ids-{new_run_id()}"
    ensure_topics(kafka_settings, [topic])
    producer = create_producer(
        kafka_settings,
        client_id="it-producer-ids",
        linger_ms=0,
        request_timeout_ms=1000,
        delivery_timeout_ms=3000,
    )
    manager = producer._transaction_manager
    try:
        producer.send(topic, key=b"user", value=b"before").get(timeout=30)
        first_id = manager.producer_id_and_epoch.producer_id
        assert first_id >= 0, "the producer is not idempotent"

        broker = _broker_pid()
        os.kill(broker, signal.SIGSTOP)  # alive, holding connections, answering nothing
        try:
            _wait_stopped(broker)
            stalled = producer.send(topic, key=b"user", value=b"stalled")
            # Sent, unanswered past the request timeout (so retried), then expired.
            with pytest.raises(KafkaTimeoutError):
                stalled.get(timeout=30)
            lost_id = manager.producer_id_and_epoch.producer_id
        finally:
            os.kill(broker, signal.SIGCONT)
        assert lost_id < 0, "the expired batch did not cost the producer its id"

        started = time.monotonic()
        producer.send(topic, key=b"user", value=b"after").get(timeout=60)
        resumed_s = time.monotonic() - started
        assert manager.producer_id_and_epoch.producer_id >= 0
        values = [record.value for record in read_topic(kafka_settings, topic)]
    finally:
        producer.close(timeout=5)
        delete_topics(kafka_settings, [topic])
    assert values[0] == b"before" and values[-1] == b"after", values
    # The stalled batch may have been written after all (the broker read it before it
    # stopped): once at most.
    assert values.count(b"stalled") <= 1, values
    report_figure(
        f"broker stalled with a send in flight: producer id {first_id} lost, "
        f"a new one and the next send {resumed_s:.1f} s after the stall"
    )


def test_a_record_the_broker_refuses_fails_alone(kafka_settings: KafkaSettings):
    """A record over its topic's limit is refused (a dead letter carrying a large message):
    that send fails, the producer's next sends to the topic and to others arrive."""
    topic, other = (f"it-producer-refused-{new_run_id()}" for _ in range(2))
    ensure_topics(kafka_settings, [topic, other])
    limit = 10_000
    limit_message_bytes(kafka_settings, topic, limit)
    producer = create_producer(kafka_settings, client_id="it-producer-refused", linger_ms=0)
    manager = producer._transaction_manager
    try:
        producer.send(topic, key=b"user", value=b"before").get(timeout=30)
        refused = producer.send(topic, key=b"user", value=os.urandom(2 * limit))
        with pytest.raises(MessageSizeTooLargeError):
            refused.get(timeout=30)
        assert not manager.has_fatal_error(), manager.last_error
        producer.send(topic, key=b"user", value=b"after").get(timeout=30)
        producer.send(other, key=b"user", value=b"elsewhere").get(timeout=30)
        values = [record.value for record in read_topic(kafka_settings, topic)]
        elsewhere = [record.value for record in read_topic(kafka_settings, other)]
    finally:
        producer.close(timeout=5)
        delete_topics(kafka_settings, [topic, other])
    assert values == [b"before", b"after"]
    assert elsewhere == [b"elsewhere"]
