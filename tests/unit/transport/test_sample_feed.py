"""The sample feed: what it produces and how it paces."""

from botscore.clock import now_ms
from botscore.model.sample_users import sample_users
from botscore.transport.sample_feed import feed_sample_users
from botscore.wire.codec import decode_user_features
from botscore.wire.records import SourceRef

from .kafka_fakes import FakeProducer


def test_sends_the_seeded_population_keyed_by_user_then_flushes():
    events: list = []
    producer = FakeProducer(events)
    sent = feed_sample_users(producer, "features", 5, seed=3)

    assert sent == 5
    expected = list(sample_users(5, 3))
    assert [key for _, key, _ in producer.sent] == [u.user_id.encode() for u in expected]
    assert {topic for topic, _, _ in producer.sent} == {"features"}
    _, key, value = producer.sent[0]
    first = decode_user_features(value, key, SourceRef("features", 0, 0), now_ms(), 0)
    assert first.user_id == expected[0].user_id
    assert first.features == expected[0].features
    assert events[-1] == ("flush",)
    assert producer.flushes == 1


def test_a_rate_paces_sends_from_the_start_of_the_call():
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    feed_sample_users(
        FakeProducer(), "features", 4, seed=1, rate=4, clock=lambda: now[0], sleep=sleep
    )
    assert sleeps == [0.25, 0.25, 0.25, 0.25]
    assert now[0] == 101.0


def test_a_slow_send_is_not_made_up_by_sleeping_a_negative_time():
    now = [0.0]
    sleeps: list[float] = []

    def clock() -> float:
        now[0] += 1.0  # every look at the clock is a second later
        return now[0]

    feed_sample_users(
        FakeProducer(), "features", 2, seed=1, rate=10, clock=clock, sleep=sleeps.append
    )
    assert sleeps == [0.0, 0.0]


def test_no_rate_means_no_sleeping():
    sleeps: list[float] = []
    feed_sample_users(FakeProducer(), "features", 3, seed=1, sleep=sleeps.append)
    assert sleeps == []
