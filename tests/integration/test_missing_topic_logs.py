"""A consumer of a topic the broker does not have, against the real broker: kafka-python
says so on every metadata refresh (ten times a second); the log shows it once."""

from __future__ import annotations

import logging
import time

import pytest

from botscore.transport.kafka_clients import create_consumer

from .harness import new_run_id

pytestmark = pytest.mark.integration


def test_a_missing_topic_is_logged_once_not_on_every_retry(kafka_settings, caplog):
    topic = f"it-missing-{new_run_id()}"
    consumer = create_consumer(
        kafka_settings,
        client_id="it-missing",
        group_id=f"it-missing-{new_run_id()}",
        allow_auto_create_topics=False,
    )
    caplog.set_level(logging.INFO, logger="kafka")
    try:
        consumer.subscribe([topic])
        end = time.monotonic() + 5
        while time.monotonic() < end:
            consumer.poll(200)
    finally:
        consumer.close()
    missing = [
        r for r in caplog.records if topic in r.getMessage() and "not found" in r.getMessage()
    ]
    # Without the filter: dozens (one per metadata refresh, about every 100 ms).
    assert len(missing) == 1, [r.getMessage() for r in missing]
    assert missing[0].levelno == logging.ERROR
