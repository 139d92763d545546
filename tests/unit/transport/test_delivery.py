from botscore.transport.delivery import Backoff, InFlight

P = ("t", 0)


def _in_flight(max_attempts=3):
    return InFlight(Backoff(first_s=1.0, max_s=3.0, max_attempts=max_attempts))


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(first_s=0.5, max_s=3.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_acked_messages_become_committable():
    flight = _in_flight()
    flight.emitted("a", "A", P, 0)
    flight.emitted("b", "B", P, 1)
    flight.acked("b")
    assert flight.offsets.pending_commits() == {}
    flight.acked("a")
    assert flight.offsets.pending_commits() == {P: 2}
    assert len(flight) == 0


def test_failed_message_is_replayed_after_its_backoff_and_holds_the_commit():
    flight = _in_flight()
    flight.emitted("a", "A", P, 0)
    flight.emitted("b", "B", P, 1)
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


def test_exhausted_message_is_handed_back_and_finished_after_dead_lettering():
    flight = _in_flight(max_attempts=2)
    flight.emitted("a", "A", P, 7)
    assert flight.failed("a", now=0.0) is None
    assert flight.due_replays(now=1.0) == [("a", "A")]
    assert flight.failed("a", now=5.0) == "A"
    assert flight.attempts("a") == 2
    assert flight.due_replays(now=100.0) == []
    assert flight.offsets.pending_commits() == {}
    flight.finish("a")
    assert flight.offsets.pending_commits() == {P: 8}


def test_dead_lettered_reads_hold_their_offset_until_released():
    flight = _in_flight()
    flight.reserve(P, 0)
    flight.emitted("b", "B", P, 1)
    flight.acked("b")
    assert flight.offsets.pending_commits() == {}
    flight.release(P, 0)
    assert flight.offsets.pending_commits() == {P: 2}


def test_a_replay_scheduled_before_an_ack_is_dropped():
    flight = _in_flight()
    flight.emitted("a", "A", P, 0)
    flight.failed("a", now=0.0)
    flight.acked("a")  # e.g. a late ack after a timeout-triggered fail
    assert flight.due_replays(now=100.0) == []


def test_revoked_partitions_are_forgotten():
    flight = _in_flight()
    flight.emitted("a", "A", ("t", 0), 0)
    flight.emitted("b", "B", ("t", 1), 0)
    flight.failed("a", now=0.0)
    flight.forget_partitions({("t", 0)})
    assert flight.due_replays(now=100.0) == []
    assert len(flight) == 1
