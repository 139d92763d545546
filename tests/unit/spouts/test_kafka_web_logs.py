"""The aggregation's Kafka spout: batches of request records out, the WebLogs it turns away.

The consumer is ``FakeGroupMember`` with keyed records; dead letters go to ``FakeProducer``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis
from kafka import TopicPartition

from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import RequestBatch, SourceRef
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
    """What a started spout reading ``records`` (key, value) from partition 0 emitted (tuple
    ids and batches) and dead-lettered."""

    def _start(records: list[tuple[bytes | None, bytes]], batch_size: int = 256):
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
            "botscore.aggregation.batch_size": batch_size,
        }
        spout, link = start(KafkaWebLogsSpout, options, monkeypatch)
        member.rebalance([P0])
        for _ in range(3):
            spout.next_tuple()
        producer.flush()
        letters = [decode_dead_letter(value) for _, _, value in producer.sent]
        emitted = [(e["id"], RequestBatch.from_values(e["tuple"])) for e in link.emitted()]
        return emitted, letters

    return _start


def test_a_web_log_keyed_by_its_user_becomes_a_request_record(spout_on):
    emitted, letters = spout_on([(b"u1", web_log("u1", NOW + SKEW, "r1"))])
    assert letters == []
    [(tup_id, batch)] = emitted
    [made] = batch.records()
    assert (made.user_id, made.time_ms, made.request_id) == ("u1", NOW + SKEW, "r1")
    assert (made.source, made.replay_floor) == (SourceRef(TOPIC, 0, 0), 0)
    assert tup_id == f"{TOPIC}/0/0-0"


def test_web_logs_of_a_poll_go_out_in_batches_of_the_batch_size(spout_on):
    logs = [(b"u%d" % (i % 3), web_log(f"u{i % 3}", NOW, f"r{i}")) for i in range(5)]
    emitted, letters = spout_on(logs, batch_size=2)
    assert letters == []
    assert [(tup_id, batch.request_ids) for tup_id, batch in emitted] == [
        (f"{TOPIC}/0/0-1", ["r0", "r1"]),
        (f"{TOPIC}/0/2-3", ["r2", "r3"]),
        (f"{TOPIC}/0/4-4", ["r4"]),
    ]
    assert [batch.offsets for _, batch in emitted] == [[0, 1], [2, 3], [4]]


def test_web_logs_keyed_otherwise_from_the_future_or_too_old_are_dead_lettered(spout_on):
    day = 86_400_000  # aggregation.max_event_age_ms's default
    emitted, letters = spout_on(
        [
            (b"u2", web_log("u1", NOW, "r1")),
            (None, web_log("u1", NOW, "r2")),
            (b"u1", web_log("u1", NOW + SKEW + 1, "r3")),
            (b"u1", web_log("u1", NOW - day - 1, "r4")),
            (b"u1", web_log("u1", 1, "r5")),
            (b"u1", web_log("u1", NOW - day, "r6")),
        ]
    )
    assert [batch.request_ids for _, batch in emitted] == [["r6"]]
    assert [(d.reason, d.source.offset, d.original_key) for d in letters] == [
        ("key_mismatch", 0, b"u2"),
        ("key_mismatch", 1, b""),
        ("time_in_future", 2, b"u1"),
        ("time_too_old", 3, b"u1"),
        ("time_too_old", 4, b"u1"),
    ]


def test_an_invalid_web_log_ends_the_batch_before_it_and_is_dead_lettered_alone(spout_on):
    emitted, letters = spout_on(
        [
            (b"u1", web_log("u1", NOW, "r0")),
            (b"u1", web_log("u1", NOW, "r1")),
            (b"u2", web_log("u1", NOW, "r2")),
            (b"u1", web_log("u1", NOW, "r3")),
        ]
    )
    assert [(tup_id, batch.request_ids) for tup_id, batch in emitted] == [
        (f"{TOPIC}/0/0-1", ["r0", "r1"]),
        (f"{TOPIC}/0/3-3", ["r3"]),
    ]
    assert [(d.reason, d.source.offset) for d in letters] == [("key_mismatch", 2)]


def generations(*replies: object) -> Callable[[], object]:
    """The feature store's generation as read: ``replies`` in turn, an exception raised."""
    waiting = list(replies)

    def read() -> object:
        reply = waiting.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return read


@pytest.fixture
def member():
    return FakeGroupMember({P0: []}, committed={P0: 0})


@pytest.fixture
def started(monkeypatch, member):
    monkeypatch.setattr(kafka_source, "create_consumer", lambda *a, **k: member)
    monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: FakeProducer())
    monkeypatch.setattr(kafka_web_logs, "now_ms", lambda: NOW)
    options = {
        "botscore.aggregation.web_logs_topic": TOPIC,
        "botscore.aggregation.max_event_skew_ms": SKEW,
        "botscore.aggregation.state_ttl_s": 3600,
        "botscore.aggregation.state_check_ms": 250,
        "botscore.redis.db": 5,
    }
    spout, link = start(KafkaWebLogsSpout, options, monkeypatch)
    spout.storm_link = link  # what it emitted, for the tests that read it
    return spout


def test_the_feature_state_is_checked_in_its_redis_and_rebuilt_from_its_ttl_and_skew_back(
    started,
):
    assert started.state_check_s == 0.25
    assert started.store.client.connection_pool.connection_kwargs["db"] == 5
    assert started.store.layout.generation_keys()[0].startswith("bs:agg:{")
    assert started.store.layout.count == 16
    assert started.rebuild_since_ms() == NOW - 3600 * 1000 - SKEW


def test_an_unreachable_redis_leaves_the_generation_unknown_and_is_logged_once(started, caplog):
    started.store.read_generation = generations(
        "g1", redis.ConnectionError("refused"), redis.ConnectionError("refused"), "g1"
    )
    with caplog.at_level(logging.WARNING):
        assert started.state_generation() == "g1"
        assert started.state_generation() is None
        assert started.state_generation() is None
        assert started.state_generation() == "g1"
    assert caplog.text.count("cannot check the feature state in Redis: refused") == 1


def test_batches_carry_the_generation_of_the_state_they_were_read_under(started, member):
    started.store.read_generation = generations("g9")
    member.logs[P0] = [record(TOPIC, 0, 0, web_log("u1", NOW, "r1"), b"u1")]
    member.rebalance([P0])
    for _ in range(3):
        started.next_tuple()
    [emitted] = started.storm_link.emitted()
    assert RequestBatch.from_values(emitted["tuple"]).generation == "g9"
