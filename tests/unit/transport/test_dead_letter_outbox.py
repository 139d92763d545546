"""DeadLetterOutbox: a token comes back only once Kafka confirmed its letter; failures resend."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from kafka.future import Future
from kafka.record.default_records import DefaultRecordBatchBuilder

from botscore.errors import ConfigError, SendNotConfirmed
from botscore.transport.dead_letter_outbox import LETTER_MARGIN_BYTES, DeadLetterOutbox
from botscore.transport.delivery import Backoff
from botscore.wire.dead_letters import (
    MIN_LETTER_BYTES,
    DeadLetterRecord,
    decode_dead_letter,
    truncations,
)
from botscore.wire.records import SourceRef

TOPIC = "dead-letters"


class FakeProducer:
    """Records every send; each returns a future the test settles by hand.

    Given ``config``, it refuses records over ``max_request_size`` as KafkaProducer.send
    does: with the size kafka-python estimates, raising its own error before sending.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        if config is not None:
            self.config = config
        self.sent: list[tuple[str, bytes | None, bytes, Future]] = []
        self.refuse: Exception | None = None  # raised by send() while set
        self.on_flush: list[Any] = []  # callables run by flush(), as Kafka answering
        self.flush_timeouts: list[float | None] = []  # one per flush() call

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> Future:
        if self.refuse is not None:
            raise self.refuse
        config = getattr(self, "config", None)
        if config is not None:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            if size > config["max_request_size"]:
                raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        future = Future()
        self.sent.append((topic, key, value, future))
        return future

    def flush(self, timeout: float | None = None) -> None:
        self.flush_timeouts.append(timeout)
        for answer in self.on_flush:
            answer()

    def future(self, n: int = -1) -> Future:
        return self.sent[n][3]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _letter(offset: int, key: bytes = b"user-1") -> DeadLetterRecord:
    return DeadLetterRecord(
        b"\xff bad", key, "undecodable", "garbage", "spout", SourceRef("t", 0, offset), 1
    )


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(producer: FakeProducer, clock: Clock) -> DeadLetterOutbox[str]:
    return DeadLetterOutbox(producer, TOPIC, Backoff(first_s=1.0, max_s=4.0), clock=clock)


def test_a_letter_is_sent_keyed_as_the_original_to_the_topic(outbox, producer):
    outbox.add(_letter(7), "a")
    [(topic, key, value, _)] = producer.sent
    assert (topic, key) == (TOPIC, b"user-1")
    assert decode_dead_letter(value) == _letter(7)
    outbox.add(_letter(8, key=b""), "b")
    assert producer.sent[1][1] is None  # no key rather than an empty one


def test_nothing_is_confirmed_before_kafka_confirms_it(outbox, producer):
    outbox.add(_letter(0), "a")
    outbox.add(_letter(1), "b")
    assert outbox.confirmed() == []
    assert outbox.pending == 2
    producer.future(1).success("metadata")
    assert outbox.confirmed() == ["b"]
    assert outbox.pending == 1


def test_a_confirmed_letter_comes_back_once(outbox, producer):
    outbox.add(_letter(0), "a")
    producer.future().success("metadata")
    assert outbox.confirmed() == ["a"]
    assert outbox.confirmed() == []
    assert outbox.pending == 0


def test_a_failed_letter_is_not_confirmed_and_is_resent_after_its_backoff(
    outbox, producer, clock, caplog
):
    outbox.add(_letter(3), "a")
    producer.future().failure(NotLeaderForPartitionError())
    assert outbox.confirmed() == []  # failed at 100.0: due at 101.0
    assert "dead letter for" in caplog.text and "offset=3" in caplog.text
    assert outbox.pending == 1
    clock.now = 100.99
    assert outbox.confirmed() == []
    assert len(producer.sent) == 1, "resent before its backoff"
    clock.now = 101.0
    assert outbox.confirmed() == []
    assert len(producer.sent) == 2, "not resent after its backoff"
    assert producer.sent[1][2] == producer.sent[0][2]
    producer.future().success("metadata")
    assert outbox.confirmed() == ["a"]
    assert outbox.pending == 0


def test_repeated_failures_back_off_further(outbox, producer, clock):
    outbox.add(_letter(0), "a")
    for expected_delay in (1.0, 2.0, 4.0, 4.0):
        producer.future().failure(KafkaTimeoutError())
        outbox.confirmed()
        sends = len(producer.sent)
        clock.now += expected_delay - 0.01
        outbox.confirmed()
        assert len(producer.sent) == sends
        clock.now += 0.01
        outbox.confirmed()
        assert len(producer.sent) == sends + 1
    assert outbox.pending == 1


def test_send_refused_by_the_producer_is_resent_later(outbox, producer, clock, caplog):
    producer.refuse = KafkaTimeoutError("broker unknown")
    outbox.add(_letter(5), "a")
    assert outbox.confirmed() == []
    assert "broker unknown" in caplog.text
    assert outbox.pending == 1
    producer.refuse = None
    clock.now += 0.5
    assert outbox.confirmed() == []
    assert producer.sent == []
    clock.now += 0.5
    assert outbox.confirmed() == []
    assert len(producer.sent) == 1
    producer.future().success("metadata")
    assert outbox.confirmed() == ["a"]


def test_an_old_success_does_not_confirm_a_later_failure(outbox, producer, clock):
    outbox.add(_letter(0), "a")
    outbox.add(_letter(1), "b")
    producer.future(0).success("metadata")
    producer.future(1).failure(KafkaTimeoutError())
    assert outbox.confirmed() == ["a"]
    clock.now += 10
    assert outbox.confirmed() == []
    assert outbox.pending == 1


def test_flush_and_confirm_raises_while_any_letter_is_out(outbox, producer, clock):
    outbox.add(_letter(0), None)
    outbox.add(_letter(1), None)
    producer.future(0).success("metadata")
    with pytest.raises(SendNotConfirmed, match="1 dead letters"):
        outbox.flush_and_confirm(timeout_s=2)
    assert producer.flush_timeouts == [2]  # bounded: an unbounded flush could hang the caller
    producer.future(1).failure(KafkaTimeoutError())
    with pytest.raises(SendNotConfirmed):
        outbox.flush_and_confirm(timeout_s=2)  # failed, and not yet due for a resend
    assert len(producer.sent) == 2
    clock.now += 1.0
    producer.on_flush = [lambda: producer.future().success("metadata")]
    assert outbox.flush_and_confirm(timeout_s=2) == [None, None]
    assert len(producer.sent) == 3
    assert outbox.pending == 0


def test_flush_and_confirm_keeps_confirmed_tokens_when_it_raises(outbox, producer):
    outbox.add(_letter(0), "a")
    outbox.add(_letter(1), "b")
    producer.on_flush = [lambda: producer.future(0).success("metadata")]
    with pytest.raises(SendNotConfirmed):
        outbox.flush_and_confirm(timeout_s=2)
    producer.on_flush = [lambda: producer.future(1).success("metadata")]
    assert outbox.flush_and_confirm(timeout_s=2) == ["a", "b"]


def test_flush_and_confirm_counts_a_refused_send_as_out(outbox, producer, clock):
    producer.refuse = KafkaTimeoutError("broker unknown")
    outbox.add(_letter(0), None)
    with pytest.raises(SendNotConfirmed):
        outbox.flush_and_confirm(timeout_s=2)
    producer.refuse = None
    clock.now += 1.0
    producer.on_flush = [lambda: producer.future().success("metadata")]
    assert outbox.flush_and_confirm(timeout_s=2) == [None]


def test_a_flush_that_times_out_is_not_fatal(outbox, producer):
    outbox.add(_letter(0), None)

    def time_out() -> None:
        raise KafkaTimeoutError("flush timed out")

    producer.on_flush = [time_out]
    with pytest.raises(SendNotConfirmed):
        outbox.flush_and_confirm(timeout_s=2)


def test_flush_and_confirm_with_nothing_out_does_not_flush(outbox, producer):
    assert outbox.flush_and_confirm(timeout_s=2) == []
    assert producer.flush_timeouts == []


def test_a_letter_confirmed_at_once_comes_back(outbox, producer):
    # A future may already be settled when the callbacks are added.
    def send_settled(topic: str, key: bytes | None = None, value: bytes = b"") -> Future:
        return Future().success("metadata")

    producer.send = send_settled
    outbox.add(_letter(0), "a")
    assert outbox.confirmed() == ["a"]


def _huge_letter(offset: int, size: int = 1_048_000) -> DeadLetterRecord:
    return DeadLetterRecord(
        (bytes(range(256)) * (size // 256 + 1))[:size],
        b"user-1",
        "undecodable",
        "garbage",
        "spout",
        SourceRef("t", 0, offset),
        1,
    )


def test_a_letter_too_large_for_the_producer_is_cut_to_fit_and_sent(clock, caplog):
    # kafka-python's default max_request_size; a 1,048,000-byte original plus the
    # envelope is over it, and KafkaProducer.send raises MessageSizeTooLargeError.
    producer = FakeProducer(config={"max_request_size": 1_048_576})
    outbox = DeadLetterOutbox(producer, TOPIC, Backoff(first_s=1.0, max_s=4.0), clock=clock)
    outbox.add(_huge_letter(9), "a")
    [(_, key, value, future)] = producer.sent
    assert key == b"user-1"
    letter = decode_dead_letter(value)
    assert _huge_letter(9).original_value.startswith(letter.original_value)
    [truncation] = truncations(letter)
    assert truncation.original_size == 1_048_000
    assert "truncated: original 1048000 bytes, sha256" in letter.detail
    assert "truncated" in caplog.text and "offset=9" in caplog.text
    future.success("metadata")
    assert outbox.confirmed() == ["a"]
    assert outbox.abandoned == 0


def test_the_limit_follows_the_producer_s_max_request_size(clock):
    producer = FakeProducer(config={"max_request_size": 200_000})
    outbox = DeadLetterOutbox(producer, TOPIC, Backoff(first_s=1.0, max_s=4.0), clock=clock)
    outbox.add(_huge_letter(0, size=300_000), "a")
    [(_, key, value, _)] = producer.sent
    assert len(value) + len(key) <= 200_000 - 16 * 1024
    assert truncations(decode_dead_letter(value))[0].original_size == 300_000


def test_a_letter_kafka_refuses_for_good_is_logged_once_counted_and_finished(
    outbox, producer, clock, caplog
):
    producer.refuse = MessageSizeTooLargeError("The message is 2000000 bytes")
    outbox.add(_letter(5), "a")
    outbox.add(_letter(6), "b")
    assert outbox.confirmed() == ["a", "b"]
    assert outbox.abandoned == 2
    assert outbox.pending == 0
    for _ in range(5):
        clock.now += 100
        assert outbox.confirmed() == []
    assert producer.sent == []
    abandoned = [r for r in caplog.records if "offset=5" in r.getMessage()]
    assert len(abandoned) == 1, caplog.text
    assert abandoned[0].levelname == "ERROR"
    assert "MessageSizeTooLargeError" in abandoned[0].getMessage()
    assert "reason undecodable" in abandoned[0].getMessage()  # what was lost, for the operator


def test_a_missing_acl_is_retried_not_given_up(outbox, producer, clock):
    # Not retriable to Kafka, but an operator can fix it: the letter must wait, not vanish.
    outbox.add(_letter(1), "a")
    producer.future().failure(TopicAuthorizationFailedError("dead-letters"))
    assert outbox.confirmed() == []
    assert outbox.abandoned == 0
    clock.now += 100
    assert outbox.confirmed() == []
    assert len(producer.sent) == 2
    producer.future().success(None)
    assert outbox.confirmed() == ["a"]


def test_a_broker_that_refuses_the_size_gives_the_letter_up(outbox, producer):
    # The topic's max.message.bytes may be below what the producer allows.
    outbox.add(_letter(1), None)
    producer.future().failure(MessageSizeTooLargeError())
    assert outbox.flush_and_confirm(timeout_s=2) == [None]
    assert outbox.abandoned == 1


def test_flush_and_confirm_finishes_a_letter_that_can_never_be_sent(outbox, producer):
    # The enforcer commits a batch only after flush_and_confirm: it must not stall.
    producer.refuse = MessageSizeTooLargeError()
    outbox.add(_letter(0), None)
    assert outbox.flush_and_confirm(timeout_s=2) == [None]
    assert outbox.abandoned == 1


def test_a_retriable_failure_is_never_given_up(outbox, producer, clock):
    outbox.add(_letter(0), "a")
    for _ in range(50):
        producer.future().failure(NotLeaderForPartitionError())
        assert outbox.confirmed() == []
        clock.now += 4.0
    assert outbox.abandoned == 0
    assert outbox.pending == 1
    outbox.confirmed()
    producer.future().success("metadata")
    assert outbox.confirmed() == ["a"]


def test_a_max_request_size_too_small_for_any_letter_is_refused_at_once(clock):
    with pytest.raises(ConfigError, match="max_request_size"):
        DeadLetterOutbox(FakeProducer(config={"max_request_size": 20_000}), TOPIC, Backoff())


def test_a_max_request_size_leaving_exactly_the_minimum_letter_is_accepted(clock):
    smallest = MIN_LETTER_BYTES + LETTER_MARGIN_BYTES
    with pytest.raises(ConfigError, match="max_request_size"):
        DeadLetterOutbox(FakeProducer(config={"max_request_size": smallest - 1}), TOPIC, Backoff())
    producer = FakeProducer(config={"max_request_size": smallest})
    outbox = DeadLetterOutbox(producer, TOPIC, Backoff(), clock=clock)
    assert outbox.max_letter_bytes == MIN_LETTER_BYTES
    outbox.add(_huge_letter(0, size=100_000), "a")
    [(_, key, value, _)] = producer.sent
    assert len(key) + len(value) <= MIN_LETTER_BYTES
    assert truncations(decode_dead_letter(value))[0].original_size == 100_000
