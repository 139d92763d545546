"""The aggregation's Kafka spout: request records out, and the WebLogs it turns away.

The consumer is ``FakeGroupMember`` with keyed records; dead letters go to ``FakeProducer``.
"""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import RequestRecord, SourceRef
from spouts import kafka_source, kafka_web_logs
from spouts.kafka_web_logs import KafkaWebLogsSpout
from tests.unit.storm_fakes import start
from tests.unit.transport.kafka_fakes import FakeGroupMember, FakeProducer, record

TOPIC = "web-logs-under-test"
P0 = TopicPartition(TOPIC, 0)
NOW = 1_790_000_000_000
SKEW = 60_000


def web_log(user_id: str, time_ms: int, request_id: str) -> bytes:
    return WebLog(
        time_unix_ms=time_ms,
        user_id=user_id,
        ip="192.0.2.1",
        status=200,
        request_id=request_id,
        schema_version=1,
    ).SerializeToString()


@pytest.fixture
def spout_on(monkeypatch):
    """A started spout reading ``records`` (key, value) from partition 0; its producer."""

    def _start(records: list[tuple[bytes | None, bytes]]):
        member = FakeGroupMember({P0: []}, committed={P0: 0}, max_per_poll=10)
        member.logs[P0] = [
            record(TOPIC, 0, offset, value, key) for offset, (key, value) in enumerate(records)
        ]
        producer = FakeProducer()
        monkeypatch.setattr(kafka_source, "create_consumer", lambda *a, **k: member)
        monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: producer)
        monkeypatch.setattr(kafka_web_logs, "now_ms", lambda: NOW)
        options = {
            "botscore.aggregation.web_logs_topic": TOPIC,
            "botscore.aggregation.max_event_skew_ms": SKEW,
        }
        spout, link = start(KafkaWebLogsSpout, options, monkeypatch)
        member.rebalance([P0])
        for _ in range(3):
            spout.next_tuple()
        producer.flush()
        letters = [decode_dead_letter(value) for _, _, value in producer.sent]
        emitted = [RequestRecord.from_values(e["tuple"]) for e in link.emitted()]
        return emitted, letters

    return _start


def test_a_web_log_keyed_by_its_user_becomes_a_request_record(spout_on):
    emitted, letters = spout_on([(b"u1", web_log("u1", NOW + SKEW, "r1"))])
    assert letters == []
    (made,) = emitted
    assert (made.user_id, made.time_ms, made.request_id) == ("u1", NOW + SKEW, "r1")
    assert (made.source, made.replay_floor) == (SourceRef(TOPIC, 0, 0), 0)


def test_web_logs_keyed_otherwise_or_from_the_future_are_dead_lettered(spout_on):
    emitted, letters = spout_on(
        [
            (b"u2", web_log("u1", NOW, "r1")),
            (None, web_log("u1", NOW, "r2")),
            (b"u1", web_log("u1", NOW + SKEW + 1, "r3")),
            (b"u1", web_log("u1", NOW, "r4")),
        ]
    )
    assert [r.request_id for r in emitted] == ["r4"]
    assert [(d.reason, d.source.offset, d.original_key) for d in letters] == [
        ("key_mismatch", 0, b"u2"),
        ("key_mismatch", 1, b""),
        ("time_in_future", 2, b"u1"),
    ]
