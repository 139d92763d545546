"""Which offsets are safe to commit when acks come out of order."""

import pytest

from botscore.transport.offsets import OffsetTracker

P = ("t", 0)


def test_commit_moves_only_past_contiguous_done_offsets():
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.emitted(P, offset)
    tracker.done(P, 12)
    assert tracker.pending_commits() == {}
    tracker.done(P, 10)
    assert tracker.pending_commits() == {P: 11}
    tracker.done(P, 11)
    assert tracker.pending_commits() == {P: 13}
    tracker.done(P, 13)
    assert tracker.pending_commits() == {P: 14}
    assert tracker.in_flight() == 0


def test_gaps_in_offsets_do_not_stall_the_partition():
    tracker = OffsetTracker()
    tracker.emitted(P, 5)
    tracker.emitted(P, 9)  # 6-8 were transaction markers or compacted away
    tracker.done(P, 9)
    tracker.done(P, 5)
    assert tracker.pending_commits() == {P: 10}


def test_committed_positions_are_not_reported_again():
    tracker = OffsetTracker()
    tracker.emitted(P, 0)
    tracker.done(P, 0)
    tracker.committed(tracker.pending_commits())
    assert tracker.pending_commits() == {}


def test_partitions_are_independent_and_forgettable():
    tracker = OffsetTracker()
    tracker.emitted(("t", 0), 1)
    tracker.emitted(("t", 1), 1)
    tracker.done(("t", 1), 1)
    assert tracker.pending_commits() == {("t", 1): 2}
    tracker.forget(("t", 0))
    tracker.done(("t", 0), 1)  # late ack after a rebalance: ignored
    assert tracker.in_flight() == 0


def test_out_of_order_emission_is_a_bug():
    tracker = OffsetTracker()
    tracker.emitted(P, 3)
    with pytest.raises(ValueError):
        tracker.emitted(P, 3)
