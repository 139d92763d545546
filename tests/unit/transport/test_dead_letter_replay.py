"""Dead-letter listing and replay over fake clients: what is sent and what is committed."""

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from botscore.errors import TopicMissing
from botscore.settings import KafkaSettings, Secret
from botscore.transport import dead_letter_replay as replay
from botscore.transport.dead_letter_replay import (
    REPLAY_GROUP,
    ReplayResult,
    Truncated,
    Undecodable,
    list_dead_letters,
    read_dead_letters,
    replay_dead_letters,
    replay_letters,
)
from botscore.vocabulary import Component, DeadLetterReason
from botscore.wire.dead_letters import DeadLetterRecord, encode_dead_letter, fit_dead_letter
from botscore.wire.records import SourceRef

from .kafka_fakes import FakeConsumer, FakeProducer

DLT = "dead-letters"
SETTINGS = KafkaSettings(
    dead_letter_topic=DLT,
    features_topic="features",
    security_protocol="SASL_PLAINTEXT",
    sasl_username="replayer",
    sasl_password=Secret("hunter2"),
)


def letter(value: bytes, reason: str, key: bytes = b"", offset: int = 0) -> DeadLetterRecord:
    return DeadLetterRecord(
        original_value=value,
        original_key=key,
        reason=reason,
        detail=f"detail of {value!r}",
        component=Component.CLASSIFIER,
        source=SourceRef("features", 3, offset),
        dead_lettered_ms=1_790_000_000_000,
    )


UNDECODABLE = letter(b"v1", DeadLetterReason.UNDECODABLE, key=b"k1", offset=10)
MISSING = letter(b"v2", DeadLetterReason.MISSING_FEATURE, key=b"k2", offset=11)
UNKEYED = letter(b"v3", DeadLetterReason.UNDECODABLE, offset=12)
GARBAGE = b"\xff\xff not a dead letter"


def topic_with_letters(**kwargs) -> FakeConsumer:
    return FakeConsumer(
        {
            DLT: {
                0: [encode_dead_letter(UNDECODABLE), GARBAGE, encode_dead_letter(MISSING)],
                1: [encode_dead_letter(UNKEYED)],
            }
        },
        **kwargs,
    )


def test_read_gives_each_letter_and_says_which_records_are_not_letters():
    entries = list(read_dead_letters(topic_with_letters(), DLT))
    by_place = {(r.partition, r.offset): entry for r, entry in entries}
    assert set(by_place) == {(0, 0), (0, 1), (0, 2), (1, 0)}
    assert by_place[(0, 0)] == UNDECODABLE
    assert by_place[(0, 2)] == MISSING
    assert by_place[(1, 0)] == UNKEYED
    bad = by_place[(0, 1)]
    assert isinstance(bad, Undecodable)
    assert (bad.partition, bad.offset) == (0, 1)
    assert bad.error.reason == DeadLetterReason.UNDECODABLE


def test_replay_sends_the_originals_of_the_asked_reason_and_commits_after_the_flush():
    events: list = []
    consumer = topic_with_letters(events=events)
    producer = FakeProducer(events)
    result = replay_letters(consumer, producer, DLT, "target", DeadLetterReason.UNDECODABLE)

    assert sorted(producer.sent, key=lambda sent: sent[2]) == [
        ("target", b"k1", b"v1"),
        ("target", None, b"v3"),
    ]
    assert result == ReplayResult(
        target="target",
        replayed=2,
        skipped=1,
        undecodable=(result.undecodable[0],),
        topics=(("target", 2),),
    )
    assert (result.undecodable[0].partition, result.undecodable[0].offset) == (0, 1)
    kinds = [e[0] for e in events if e[0] in ("send", "flush", "commit")]
    assert kinds == ["send", "send", "flush", "commit"]
    # Letters skipped for their reason are committed past too: the next run starts after.
    assert events[-1] == ("commit", {TopicPartition(DLT, 0): 3, TopicPartition(DLT, 1): 1})


def test_replay_without_a_reason_sends_every_letter():
    producer = FakeProducer()
    result = replay_letters(topic_with_letters(), producer, DLT, "target")
    assert sorted(value for _, _, value in producer.sent) == [b"v1", b"v2", b"v3"]
    assert (result.replayed, result.skipped) == (3, 0)


def test_a_second_replay_starts_where_the_first_committed():
    consumer = topic_with_letters()
    replay_letters(consumer, FakeProducer(), DLT, "target")
    consumer.append(DLT, 1, encode_dead_letter(MISSING))
    producer = FakeProducer()
    result = replay_letters(consumer, producer, DLT, "target")
    assert producer.sent == [("target", b"k2", b"v2")]
    assert result.replayed == 1
    assert consumer.committed[TopicPartition(DLT, 1)] == 2


def test_a_trailing_non_letter_is_not_committed_past():
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(MISSING), GARBAGE]}})
    result = replay_letters(consumer, FakeProducer(), DLT, "target")
    assert consumer.committed == {TopicPartition(DLT, 0): 1}
    assert len(result.undecodable) == 1


def test_replaying_nothing_flushes_and_commits_nothing():
    events: list = []
    consumer = FakeConsumer({DLT: {0: []}}, events=events)
    producer = FakeProducer(events)
    result = replay_letters(consumer, producer, DLT, "target")
    assert result == ReplayResult("target", 0, 0, ())
    assert producer.flushes == 1
    assert not [e for e in events if e[0] == "commit"]


class Clients:
    """Replaces the module's client constructors; keeps what they were given."""

    def __init__(self, monkeypatch, consumer: FakeConsumer) -> None:
        self.consumer = consumer
        self.producer = FakeProducer()
        self.consumer_config: dict = {}
        self.producer_args: tuple = ()

        def make_consumer(**config):
            self.consumer_config = config
            return self.consumer

        def make_producer(settings, client_id, **overrides):
            self.producer_args = (settings, client_id, overrides)
            return self.producer

        monkeypatch.setattr(replay, "KafkaConsumer", make_consumer)
        monkeypatch.setattr(replay, "create_producer", make_producer)


def test_replay_uses_its_own_group_and_the_shared_connection_settings(monkeypatch):
    clients = Clients(monkeypatch, topic_with_letters())
    result = replay_dead_letters(SETTINGS, DeadLetterReason.MISSING_FEATURE)

    config = clients.consumer_config
    assert config["group_id"] == REPLAY_GROUP == "botscore-dead-letter-replay"
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"
    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["sasl_plain_password"] == "hunter2"
    assert clients.producer_args == (SETTINGS, "botscore-dead_letter_replay", {})
    # By default a letter goes back where it came from: MISSING came from "features".
    assert result.target is None
    assert clients.producer.sent == [("features", b"k2", b"v2")]
    assert clients.consumer.closed and clients.producer.closed


def test_replay_goes_to_the_topic_asked_for(monkeypatch):
    clients = Clients(monkeypatch, topic_with_letters())
    result = replay_dead_letters(SETTINGS, to_topic="elsewhere")
    assert result.target == "elsewhere"
    assert {topic for topic, _, _ in clients.producer.sent} == {"elsewhere"}


def test_replay_closes_its_clients_when_the_topic_is_missing(monkeypatch):
    clients = Clients(monkeypatch, FakeConsumer())
    with pytest.raises(TopicMissing):
        replay_dead_letters(SETTINGS)
    assert clients.consumer.closed and clients.producer.closed
    assert clients.producer.sent == []


def test_list_filters_by_reason_but_shows_every_non_letter(monkeypatch):
    clients = Clients(monkeypatch, topic_with_letters())
    entries = list(list_dead_letters(SETTINGS, DeadLetterReason.MISSING_FEATURE))
    letters = [e for e in entries if not isinstance(e, Undecodable)]
    assert letters == [MISSING]
    assert [(e.partition, e.offset) for e in entries if isinstance(e, Undecodable)] == [(0, 1)]
    assert "group_id" not in clients.consumer_config
    assert clients.consumer_config["enable_auto_commit"] is False
    assert clients.consumer_config["sasl_plain_username"] == "replayer"
    assert clients.consumer.committed == {}
    assert clients.consumer.closed


def test_list_without_a_reason_gives_every_letter(monkeypatch):
    Clients(monkeypatch, topic_with_letters())
    letters = [e for e in list_dead_letters(SETTINGS) if not isinstance(e, Undecodable)]
    assert sorted(letters, key=lambda x: x.original_value) == [UNDECODABLE, MISSING, UNKEYED]


def sourced(value: bytes, topic: str, offset: int, key: bytes = b"u") -> DeadLetterRecord:
    return DeadLetterRecord(
        original_value=value,
        original_key=key,
        reason=DeadLetterReason.RETRIES_EXHAUSTED,
        detail="failed downstream 10 times",
        component=Component.FEATURES_SPOUT,
        source=SourceRef(topic, 0, offset),
        dead_lettered_ms=1_790_000_000_000,
    )


def test_a_failed_send_in_the_middle_stops_the_commit_before_it():
    consumer = FakeConsumer(
        {
            DLT: {
                0: [
                    encode_dead_letter(letter(v, DeadLetterReason.UNDECODABLE))
                    for v in (b"a", b"b", b"c")
                ],
                1: [encode_dead_letter(letter(b"d", DeadLetterReason.UNDECODABLE))],
            }
        }
    )
    producer = FakeProducer()
    producer.fail[b"b"] = KafkaTimeoutError("Expiring 1 record(s)")
    result = replay_letters(consumer, producer, DLT)

    assert consumer.committed == {TopicPartition(DLT, 0): 1, TopicPartition(DLT, 1): 1}
    assert (result.replayed, result.failed) == (3, 1)
    assert "KafkaTimeoutError" in result.first_error
    # The next run resends from the failed letter on.
    producer = FakeProducer()
    again = replay_letters(consumer, producer, DLT)
    assert [value for _, _, value in producer.sent] == [b"b", b"c"]
    assert (again.replayed, again.failed) == (2, 0)
    assert consumer.committed[TopicPartition(DLT, 0)] == 3


def test_a_send_refused_at_once_holds_back_the_rest_of_its_partition():
    values = [b"a", b"b", b"c"]
    consumer = FakeConsumer(
        {DLT: {0: [encode_dead_letter(letter(v, DeadLetterReason.UNDECODABLE)) for v in values]}}
    )
    producer = FakeProducer()
    producer.refuse[b"b"] = KafkaTimeoutError("Failed to update metadata after 5.0 secs")
    result = replay_letters(consumer, producer, DLT)
    assert [value for _, _, value in producer.sent] == [b"a"]
    assert consumer.committed == {TopicPartition(DLT, 0): 1}
    assert (result.replayed, result.failed, result.held_back) == (1, 1, 1)
    assert "Failed to update metadata" in result.first_error


def test_a_partition_whose_first_letter_fails_is_not_committed():
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(MISSING)]}})
    producer = FakeProducer()
    producer.fail[b"v2"] = MessageSizeTooLargeError()
    result = replay_letters(consumer, producer, DLT)
    assert consumer.committed == {}
    assert result.failed == 1


def test_each_letter_goes_back_to_the_topic_it_came_from():
    web_log = sourced(b"weblog", "web-logs", 5)
    features = sourced(b"features", "user-features", 6)
    consumer = FakeConsumer(
        {DLT: {0: [encode_dead_letter(web_log)], 1: [encode_dead_letter(features)]}}
    )
    producer = FakeProducer()
    result = replay_letters(consumer, producer, DLT)
    assert sorted(producer.sent) == [
        ("user-features", b"u", b"features"),
        ("web-logs", b"u", b"weblog"),
    ]
    assert result.target is None
    assert result.topics == (("user-features", 1), ("web-logs", 1))


def test_a_target_overrides_every_letter_s_source():
    consumer = FakeConsumer(
        {DLT: {0: [encode_dead_letter(sourced(b"w", "web-logs", 5)), encode_dead_letter(MISSING)]}}
    )
    producer = FakeProducer()
    result = replay_letters(consumer, producer, DLT, "elsewhere")
    assert [topic for topic, _, _ in producer.sent] == ["elsewhere", "elsewhere"]
    assert result.topics == (("elsewhere", 2),)


def test_a_letter_without_a_source_topic_is_a_failure_without_a_target():
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(sourced(b"w", "", 5))]}})
    producer = FakeProducer()
    result = replay_letters(consumer, producer, DLT)
    assert producer.sent == []
    assert result.failed == 1 and "--to" in result.first_error
    assert consumer.committed == {}


def test_a_truncated_letter_is_reported_and_not_replayed():
    original = b"x" * 2_000_000
    cut = fit_dead_letter(sourced(original, "web-logs", 5), 100_000)
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(cut), encode_dead_letter(MISSING)]}})
    producer = FakeProducer()
    result = replay_letters(consumer, producer, DLT)
    assert producer.sent == [("features", b"k2", b"v2")]
    assert result.truncated == (Truncated(0, 0, SourceRef("web-logs", 0, 5)),)
    assert (result.replayed, result.failed) == (1, 0)
    assert consumer.committed == {TopicPartition(DLT, 0): 2}


def test_replay_sends_web_logs_and_features_home_and_waits_out_the_delivery_timeout(monkeypatch):
    web_log = sourced(b"weblog", "web-logs", 5)
    features = sourced(b"features", "user-features", 6)
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(web_log), encode_dead_letter(features)]}})
    clients = Clients(monkeypatch, consumer)
    result = replay_dead_letters(SETTINGS)
    assert clients.producer.sent == [
        ("web-logs", b"u", b"weblog"),
        ("user-features", b"u", b"features"),
    ]
    assert result.complete
    assert clients.producer.flush_timeouts == [SETTINGS.producer_delivery_timeout_ms / 1000 + 10]
    assert consumer.committed == {TopicPartition(DLT, 0): 2}


def test_replay_to_a_topic_sends_every_letter_there(monkeypatch):
    consumer = FakeConsumer({DLT: {0: [encode_dead_letter(sourced(b"weblog", "web-logs", 5))]}})
    clients = Clients(monkeypatch, consumer)
    result = replay_dead_letters(SETTINGS, to_topic="web-logs-fixed")
    assert clients.producer.sent == [("web-logs-fixed", b"u", b"weblog")]
    assert result.target == "web-logs-fixed"
