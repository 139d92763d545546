"""Our idempotent producers against a broker that stalls: a batch that expires after it was
sent costs the producer its id, and it must ask for a new one and send on
(``botscore.transport.producer_ids``; kafka-python 3.0.12 alone never sent again)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from kafka.errors import KafkaTimeoutError

from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import create_producer, ensure_topics

from .harness import ROOT, delete_topics, new_run_id, read_topic

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
