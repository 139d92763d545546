"""Which offsets are safe to commit when acks come out of order, and the replay floor."""

import pytest

from botscore.transport.offsets import OffsetTracker

P = ("t", 0)


def _tracker(committed=10):
    tracker = OffsetTracker()
    tracker.assigned(P, committed)
    return tracker


def test_commit_moves_only_past_contiguous_done_offsets():
    tracker = _tracker()
    for offset in (10, 11, 12, 13):
        tracker.emitted(P, offset)
    tracker.done(P, 12)
    assert tracker.pending_commits() == {}
    tracker.done(P, 10)
    assert tracker.pending_commits() == {P: 11}
    tracker.done(P, 11)
    assert tracker.pending_commits() == {P: 13}
    assert tracker.in_flight() == 1
    tracker.done(P, 13)
    assert tracker.pending_commits() == {P: 14}
    assert tracker.in_flight() == 0


def test_done_offsets_behind_an_unfinished_one_still_count_as_in_flight():
    tracker = _tracker()
    for offset in (10, 11, 12):
        tracker.emitted(P, offset)
    tracker.done(P, 11)
    tracker.done(P, 12)
    assert tracker.in_flight() == 3  # the window a restart would replay
    tracker.done(P, 10)
    assert tracker.in_flight() == 0


def test_gaps_in_offsets_do_not_stall_the_partition():
    tracker = _tracker(5)
    tracker.emitted(P, 5)
    tracker.emitted(P, 9)  # 6-8 were transaction markers or compacted away
    tracker.done(P, 9)
    tracker.done(P, 5)
    assert tracker.pending_commits() == {P: 10}


def test_committed_positions_are_not_reported_again():
    tracker = _tracker(0)
    tracker.emitted(P, 0)
    tracker.done(P, 0)
    tracker.committed(tracker.pending_commits())
    assert tracker.pending_commits() == {}


@pytest.mark.parametrize("first", [10, 12])  # 10 and 11 may be compacted away
def test_the_groups_commit_is_not_committed_again(first):
    tracker = _tracker(10)
    tracker.emitted(P, first)
    assert tracker.pending_commits() == {}
    assert tracker.replay_floor(P) == 10


def test_without_a_group_commit_where_reading_began_is_committed():
    """The reset policy's offset moves on (``latest``): resume where this spout began."""
    tracker = OffsetTracker()
    tracker.assigned(P, None)
    assert tracker.pending_commits() == {}
    tracker.emitted(P, 42)
    tracker.emitted(P, 43)
    assert tracker.pending_commits() == {P: 42}
    tracker.done(P, 43)
    assert tracker.pending_commits() == {P: 42}
    tracker.done(P, 42)
    assert tracker.pending_commits() == {P: 44}


def test_an_offset_not_in_flight_is_ignored():
    tracker = _tracker(0)
    tracker.emitted(P, 0)
    tracker.done(P, 0)
    tracker.done(P, 0)  # a second ack of the same offset
    tracker.done(P, 1)  # before it was read: must not count once it is
    tracker.emitted(P, 1)
    assert tracker.pending_commits() == {P: 1}
    assert tracker.in_flight() == 1


def test_partitions_are_independent_and_forgettable():
    tracker = OffsetTracker()
    tracker.assigned(("t", 0), 1)
    tracker.assigned(("t", 1), 1)
    tracker.emitted(("t", 0), 1)
    tracker.emitted(("t", 1), 1)
    tracker.done(("t", 1), 1)
    assert tracker.pending_commits() == {("t", 1): 2}
    tracker.forget(("t", 0))
    tracker.done(("t", 0), 1)  # late ack after a rebalance: ignored
    assert tracker.pending_commits() == {("t", 1): 2}
    assert tracker.in_flight() == 0
    tracker.forget(("t", 9))  # never seen: nothing to do


def test_a_forgotten_partition_forgets_its_commit_too():
    tracker = _tracker(0)
    tracker.emitted(P, 0)
    tracker.done(P, 0)
    tracker.committed({P: 1})
    tracker.forget(P)
    assert tracker.replay_floor(P) == 0
    tracker.emitted(P, 0)  # read again by whoever owns it next
    tracker.done(P, 0)
    assert tracker.pending_commits() == {P: 1}


def test_reassignment_starts_over_from_the_groups_commit():
    tracker = _tracker(0)
    for offset in (0, 1, 2):
        tracker.emitted(P, offset)
    tracker.done(P, 0)
    tracker.committed({P: 1})
    tracker.assigned(P, 1)
    assert tracker.in_flight() == 0
    tracker.emitted(P, 1)  # read again: not out of order
    tracker.done(P, 2)  # from before the reassignment, for an offset not read again yet
    tracker.emitted(P, 2)
    tracker.done(P, 1)
    assert tracker.pending_commits() == {P: 2}


@pytest.mark.parametrize("offsets", [(3, 3), (3, 2)])
def test_out_of_order_emission_is_a_bug(offsets):
    tracker = _tracker(0)
    tracker.emitted(P, offsets[0])
    with pytest.raises(ValueError, match="out of order"):
        tracker.emitted(P, offsets[1])


def test_emission_below_the_commit_position_is_a_bug():
    tracker = _tracker(5)
    with pytest.raises(ValueError, match="out of order"):
        tracker.emitted(P, 4)
    tracker.emitted(P, 5)
    tracker.done(P, 5)  # nothing left in flight, the position is 6
    with pytest.raises(ValueError, match="out of order"):
        tracker.emitted(P, 5)


def test_replay_floor_is_the_groups_commit_until_this_spout_commits():
    tracker = OffsetTracker()
    assert tracker.replay_floor(P) == 0  # nothing known: forget no marks
    tracker.assigned(P, 7)
    assert tracker.replay_floor(P) == 7
    tracker.emitted(P, 7)
    tracker.emitted(P, 8)
    tracker.done(P, 7)
    assert tracker.replay_floor(P) == 7  # 8 done but not committed: a restart reads 7 on
    tracker.committed(tracker.pending_commits())
    assert tracker.replay_floor(P) == 8
    assert tracker.replay_floor(("t", 1)) == 0  # per partition


def test_replay_floor_without_a_group_commit_is_where_reading_began():
    tracker = OffsetTracker()
    tracker.committed({P: 5})  # the group's commit has expired since
    tracker.assigned(P, None)
    assert tracker.replay_floor(P) == 0
    tracker.emitted(P, 40)
    tracker.emitted(P, 41)
    assert tracker.replay_floor(P) == 40


def test_replay_floor_follows_a_reassignment_down_to_the_groups_commit():
    """Issue 11: the floor must not stay at (or move to) a position past the commit."""
    tracker = _tracker(0)
    for offset in range(5):
        tracker.emitted(P, offset)
    tracker.done(P, 0)
    tracker.committed({P: 1})
    tracker.forget(P)
    tracker.assigned(P, 1)
    tracker.emitted(P, 1)
    assert tracker.replay_floor(P) == 1
