"""In-flight tuples, replays with backoff, and a backoff that stays bounded."""

import sys

import pytest

from botscore.errors import ConfigError
from botscore.transport.delivery import Backoff, InFlight

P = ("t", 0)


def _in_flight(max_attempts=3):
    """In flight for partitions ``("t", 0)`` and ``("t", 1)``, both read from offset 0."""
    flight = InFlight(Backoff(first_s=1.0, max_s=3.0, max_attempts=max_attempts))
    for partition in (("t", 0), ("t", 1)):
        flight.offsets.assigned(partition, 0)
    return flight


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(first_s=0.5, max_s=3.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_acked_messages_become_committable():
    flight = _in_flight()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    assert flight.offsets.pending_commits() == {}
    flight.acked("a")
    assert flight.offsets.pending_commits() == {P: 2}
    assert len(flight) == 0


def test_failed_message_is_replayed_after_its_backoff_and_holds_the_commit():
    flight = _in_flight()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    assert flight.failed("a", now=10.0) is None
    assert flight.due_replays(now=10.5) == []
    assert flight.due_replays(now=11.0) == [("a", "A")]
    assert flight.failed("a", now=11.0) is None
    assert flight.due_replays(now=12.9) == []
    assert flight.due_replays(now=13.0) == [("a", "A")]
    assert flight.offsets.pending_commits() == {}
    flight.acked("a")
    assert flight.offsets.pending_commits() == {P: 2}


def test_an_ack_finishes_every_offset_of_a_batch():
    flight = _in_flight()
    flight.emitted("t/0/0-2", "ABC", P, [0, 1, 2], size=30)
    flight.emitted("t/0/3-4", "DE", P, [3, 4], size=20)
    assert len(flight) == 5  # messages, not tuples
    flight.acked("t/0/3-4")
    assert flight.offsets.pending_commits() == {}
    flight.acked("t/0/0-2")
    assert flight.offsets.pending_commits() == {P: 5}
    assert (len(flight), flight.held_bytes) == (0, 0)


def test_exhausted_batch_becomes_reserved_offsets_released_one_by_one():
    flight = _in_flight(max_attempts=2)
    flight.offsets.assigned(P, 7)
    flight.emitted("t/0/7-9", "ABC", P, [7, 8, 9], size=60)
    flight.emitted("t/0/10-10", "D", P, [10], size=5)
    assert flight.failed("t/0/7-9", now=0.0) is None
    assert flight.due_replays(now=1.0) == [("t/0/7-9", "ABC")]
    flight.acked("t/0/10-10")
    assert flight.failed("t/0/7-9", now=5.0) == "ABC"
    assert flight.attempts("t/0/7-9") == 2
    assert flight.due_replays(now=100.0) == []
    flight.retire("t/0/7-9", [10, 20, 30])
    assert (len(flight), flight.held_bytes) == (4, 60)  # 10 waits behind them
    flight.acked("t/0/7-9")  # late: the batch is no longer a tuple
    assert flight.failed("t/0/7-9", now=200.0) is None
    flight.release(P, 8)
    assert flight.offsets.pending_commits() == {}
    assert flight.held_bytes == 40
    flight.release(P, 7)
    assert flight.offsets.pending_commits() == {P: 9}
    flight.release(P, 9)
    assert flight.offsets.pending_commits() == {P: 11}
    assert (len(flight), flight.held_bytes) == (0, 0)


def test_a_last_attempt_counts_only_if_another_tuple_was_acked_since_the_one_before():
    flight = _in_flight(max_attempts=2)
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")  # before a's first failure: no evidence about its last attempt
    assert flight.failed("a", now=0.0) is None
    for now in (1.0, 3.0, 5.0):  # every failure past the last attempt waits, replayed
        assert flight.due_replays(now=now) == [("a", "A")]
        assert flight.failed("a", now=now) is None
    assert (flight.attempts("a"), flight.last_attempts_deferred) == (1, 3)
    flight.emitted("c", "C", P, [2])
    flight.acked("c")
    assert flight.due_replays(now=6.0) == [("a", "A")]
    assert flight.failed("a", now=6.0) == "A"


def _exhausted_batch(flight: InFlight) -> None:
    """``t/0/0-3`` ("ABCD", 40 bytes) used up its two attempts while ``t/0/4-4`` was acked."""
    flight.emitted("t/0/0-3", "ABCD", P, [0, 1, 2, 3], size=40)
    flight.emitted("t/0/4-4", "E", P, [4], size=10)
    assert flight.failed("t/0/0-3", now=0.0) is None
    assert flight.due_replays(now=1.0) == [("t/0/0-3", "ABCD")]
    flight.acked("t/0/4-4")
    assert flight.failed("t/0/0-3", now=2.0) == "ABCD"


def test_a_split_batchs_parts_are_replayed_at_once_in_order_and_hold_its_offsets():
    flight = _in_flight(max_attempts=2)
    _exhausted_batch(flight)
    flight.split("t/0/0-3", [("t/0/0-1", "AB", [0, 1], 15), ("t/0/2-3", "CD", [2, 3], 25)])
    assert (len(flight), flight.held_bytes) == (5, 40)  # 4 waits behind them
    assert flight.due_replays(now=2.0) == [("t/0/0-1", "AB"), ("t/0/2-3", "CD")]
    flight.acked("t/0/0-3")  # late: the batch is no longer a tuple
    flight.acked("t/0/2-3")
    assert flight.offsets.pending_commits() == {}  # 0-1 still out
    flight.acked("t/0/0-1")
    assert flight.offsets.pending_commits() == {P: 5}
    assert (len(flight), flight.held_bytes) == (0, 0)


def test_a_part_is_exhausted_by_its_first_failure_even_with_nothing_acked_since():
    flight = _in_flight(max_attempts=2)
    _exhausted_batch(flight)
    flight.split("t/0/0-3", [("t/0/0-1", "AB", [0, 1], 15), ("t/0/2-3", "CD", [2, 3], 25)])
    assert not flight.was_split("t/0/0-3") and flight.was_split("t/0/0-1")
    flight.due_replays(now=2.0)
    assert flight.failed("t/0/2-3", now=3.0) == "CD"
    assert flight.attempts("t/0/2-3") == 3  # two in the batch, one alone
    flight.split("t/0/2-3", [("t/0/2-2", "C", [2], 10), ("t/0/3-3", "D", [3], 15)])
    assert flight.due_replays(now=3.0) == [("t/0/2-2", "C"), ("t/0/3-3", "D")]
    assert flight.failed("t/0/3-3", now=4.0) == "D"
    assert (flight.attempts("t/0/3-3"), flight.last_attempts_deferred) == (4, 0)
    assert flight.due_replays(now=100.0) == []  # exhausted parts wait for their caller


def test_parts_must_carry_exactly_the_batchs_offsets_in_order():
    flight = _in_flight(max_attempts=2)
    _exhausted_batch(flight)
    for parts in (
        [("t/0/0-1", "AB", [0, 1], 1), ("t/0/2-2", "C", [2], 1)],  # 3 missing
        [("t/0/2-3", "CD", [2, 3], 1), ("t/0/0-1", "AB", [0, 1], 1)],  # out of order
        [("t/0/0-3", "ABCD", [0, 1, 2, 3], 1)],  # not split
    ):
        with pytest.raises(ValueError, match="must carry its offsets"):
            flight.split("t/0/0-3", parts)
    assert flight.attempts("t/0/0-3") == 2  # left as it was


def test_retiring_wants_one_size_per_message():
    flight = _in_flight(max_attempts=1)
    flight.emitted("t/0/0-1", "AB", P, [0, 1])
    with pytest.raises(ValueError):
        flight.retire("t/0/0-1", [1])


def test_dead_lettered_reads_hold_their_offset_until_released():
    flight = _in_flight()
    flight.reserve(P, 0)
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    assert flight.offsets.pending_commits() == {}
    flight.release(P, 0)
    assert flight.offsets.pending_commits() == {P: 2}


def test_a_replay_scheduled_before_an_ack_is_dropped():
    flight = _in_flight()
    flight.emitted("a", "A", P, [0])
    flight.failed("a", now=0.0)
    flight.acked("a")  # e.g. a late ack after a timeout-triggered fail
    assert flight.due_replays(now=100.0) == []


def test_revoked_partitions_are_forgotten():
    flight = _in_flight()
    flight.emitted("a", "A", ("t", 0), [0])
    flight.emitted("b", "B", ("t", 1), [0])
    flight.failed("a", now=0.0)
    flight.failed("b", now=0.0)
    flight.forget_partitions({("t", 0)})
    assert flight.due_replays(now=100.0) == [("b", "B")]
    assert len(flight) == 1


def test_late_acks_fails_and_retirements_of_a_forgotten_partition_are_ignored():
    flight = _in_flight(max_attempts=1)
    flight.emitted("a", "A", P, [0])
    flight.forget_partitions({P})
    flight.acked("a")
    assert flight.failed("a", now=0.0) is None  # would have been its last attempt
    flight.retire("a", [0])
    assert flight.attempts("a") == 0
    assert flight.offsets.pending_commits() == {}


def test_an_unknown_or_already_acked_id_is_ignored():
    flight = _in_flight()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("a")
    flight.acked("a")
    flight.acked("nope")
    assert flight.failed("nope", now=0.0) is None
    assert flight.attempts("nope") == 0
    assert flight.offsets.pending_commits() == {P: 1}
    assert len(flight) == 1


def test_a_tuple_read_again_after_a_revocation_is_not_replayed_by_its_old_failure():
    flight = _in_flight()
    flight.emitted("t/0/0", "A", P, [0])
    flight.failed("t/0/0", now=0.0)  # replay due at 1.0
    flight.forget_partitions({P})
    flight.offsets.assigned(P, 0)
    flight.emitted("t/0/0", "A again", P, [0])  # read again: same id
    assert flight.due_replays(now=100.0) == []
    assert flight.attempts("t/0/0") == 0


def test_backoff_stays_exact_and_bounded_for_any_attempt_count():
    backoff = Backoff(first_s=0.2, max_s=30.0)
    delays = [backoff.delay(n) for n in range(1, 5001)]
    assert delays[:4] == [0.2, 0.4, 0.8, 1.6]
    assert all(0.2 <= d <= 30.0 for d in delays)
    assert delays[-1] == 30.0
    assert backoff.delay(10**9) == 30.0
    assert backoff.delay(10**30) == 30.0


@pytest.mark.parametrize(
    ("first_s", "max_s"),
    [
        (0.0, 5.0),
        (5e-324, 1.0),
        (1e-300, 1e300),
        (3.0, 1.0),
        (0.25, 0.0),
        # the cap at the largest float: one doubling past the shortcut would overflow
        (0.5, sys.float_info.max),
        (5e-324, sys.float_info.max),
    ],
)
def test_backoff_extremes_never_raise_and_never_pass_the_cap(first_s, max_s):
    backoff = Backoff(first_s=first_s, max_s=max_s)
    for attempt in range(-2, 1000):  # where a float power of two is still exact
        assert backoff.delay(attempt) == min(max_s, first_s * 2.0 ** (attempt - 1))
    for attempt in (*range(1000, 2200), 10**9):
        assert 0.0 <= backoff.delay(attempt) <= max_s
    assert backoff.delay(10**9) == (0.0 if first_s == 0.0 else max_s)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"first_s": -1.0}, "first_s"),
        ({"max_s": float("inf")}, "max_s"),
        ({"first_s": float("nan")}, "first_s"),
    ],
)
def test_backoff_refuses_negative_or_infinite_times_naming_them(bad, name):
    with pytest.raises(ConfigError, match=f"^backoff {name} must be finite"):
        Backoff(**bad)


def test_held_bytes_count_what_is_kept_until_acked_released_or_forgotten():
    flight = _in_flight(max_attempts=1)
    flight.emitted("a", "A", ("t", 0), [0], size=100)
    flight.emitted("b", "B", ("t", 0), [1], size=20)
    flight.reserve(("t", 0), 2, size=3)
    flight.emitted("c", "C", ("t", 1), [0], size=4000)
    assert flight.held_bytes == 4123
    flight.acked("b")
    flight.release(("t", 0), 2)
    assert flight.held_bytes == 4100
    assert flight.failed("a", 0.0) == "A"  # exhausted: still held until its letter is out
    assert flight.held_bytes == 4100
    flight.retire("a", [100])  # its letter on its way: still held, as a reserved offset
    assert flight.held_bytes == 4100
    flight.release(("t", 0), 0)
    flight.reserve(("t", 1), 1, size=7)
    assert flight.held_bytes == 4007
    flight.forget_partitions({("t", 1)})
    assert flight.held_bytes == 0
    flight.release(("t", 1), 1)  # a letter of a forgotten partition confirmed late
    flight.acked("c")
    assert flight.held_bytes == 0


def test_held_bytes_survive_forgetting_other_partitions_and_default_to_nothing():
    flight = _in_flight()
    flight.emitted("a", "A", ("t", 0), [0])
    flight.reserve(("t", 0), 1)
    assert flight.held_bytes == 0  # callers that do not say a size hold nothing countable
    flight.emitted("b", "B", ("t", 0), [2], size=5)
    flight.reserve(("t", 0), 3, size=7)
    flight.emitted("c", "C", ("t", 1), [0], size=11)
    flight.forget_partitions({("t", 1)})
    assert flight.held_bytes == 12


def _lossy(after_s=5.0):
    """In flight for partitions ``("t", 0)`` and ``("t", 1)`` that presumes an ack lost
    ``after_s`` after a later tuple of its partition was seen acked."""
    flight = InFlight(Backoff(first_s=1.0, max_s=3.0, max_attempts=3), lost_ack_after_s=after_s)
    for partition in (("t", 0), ("t", 1)):
        flight.offsets.assigned(partition, 0)
    return flight


def test_a_tuple_overtaken_by_an_ack_is_emitted_again_once_its_wait_is_over():
    flight = _lossy()
    for n in range(3):
        flight.emitted(f"t/0/{n}-{n}", n, P, [n])
    assert flight.lost_acks(now=100.0) == []
    flight.acked("t/0/2-2")  # overtakes both before it
    assert flight.lost_acks(now=101.0) == []  # seen overtaken here
    flight.acked("t/0/1-1")  # late, but within the wait: not lost
    assert flight.lost_acks(now=105.9) == []
    assert flight.lost_acks(now=106.0) == [("t/0/0-0", 0)]
    assert flight.lost_acks(now=200.0) == []  # sent again: out, and nothing acked since
    flight.acked("t/0/0-0")
    assert flight.offsets.pending_commits() == {P: 3}


def test_an_old_tuple_nothing_overtook_is_never_presumed_lost():
    """A stalled downstream acks nothing: its tuples wait for Storm's timeout (a fail)."""
    flight = _lossy()
    flight.emitted("t/0/0-0", "A", P, [0])
    flight.emitted("t/1/0-0", "B", ("t", 1), [0])
    flight.acked("t/1/0-0")  # another partition's ack overtakes nothing here
    assert flight.lost_acks(now=100.0) == []
    assert flight.lost_acks(now=10_000.0) == []


def test_a_tuple_sent_again_is_overtaken_only_by_tuples_emitted_after_that():
    flight = _lossy()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    flight.lost_acks(now=0.0)
    assert flight.lost_acks(now=5.0) == [("a", "A")]
    flight.emitted("c", "C", P, [2])
    flight.acked("c")
    assert flight.lost_acks(now=6.0) == []
    assert flight.lost_acks(now=11.0) == [("a", "A")]  # lost again: sent again


def test_a_failed_tuple_waits_for_its_backoff_not_for_a_lost_ack():
    flight = _lossy(after_s=0.5)
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    assert flight.failed("a", now=10.0) is None
    flight.acked("b")
    flight.lost_acks(now=10.0)
    assert flight.lost_acks(now=10.9) == []  # not out: its replay is due at 11
    assert flight.due_replays(now=11.0) == [("a", "A")]


def test_a_tuple_sent_again_as_lost_is_not_replayed_twice_by_a_late_failure():
    """Its first emission times out later: one replay at the backoff, none for the second."""
    flight = _lossy()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    flight.lost_acks(now=0.0)
    assert flight.lost_acks(now=5.0) == [("a", "A")]
    assert flight.failed("a", now=60.0) is None  # the first emission timed out
    assert flight.failed("a", now=61.5) is None  # and the second: its replay is due later
    assert flight.due_replays(now=70.0) == [("a", "A")]
    assert flight.due_replays(now=80.0) == []
    assert flight.attempts("a") == 2


def test_forgotten_partitions_have_no_lost_acks():
    flight = _lossy()
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    flight.lost_acks(now=0.0)
    flight.forget_partitions({P})
    assert flight.lost_acks(now=100.0) == []
    flight.offsets.assigned(P, 0)
    flight.emitted("a", "A", P, [0])  # read again by the new owner's commit
    assert flight.lost_acks(now=200.0) == []


@pytest.mark.parametrize("after_s", [0.0, -1.0, float("nan")])
def test_a_lost_ack_wait_that_is_not_positive_is_refused(after_s):
    with pytest.raises(ConfigError, match="lost_ack_after_s"):
        _lossy(after_s)


def test_without_a_wait_no_ack_is_ever_presumed_lost():
    flight = InFlight(Backoff())
    flight.offsets.assigned(P, 0)
    flight.emitted("a", "A", P, [0])
    flight.emitted("b", "B", P, [1])
    flight.acked("b")
    flight.lost_acks(now=0.0)
    assert flight.lost_acks(now=1e12) == []
