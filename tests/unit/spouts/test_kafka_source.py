"""The Kafka spout base: commit on ack, replays, dead letters, and rebalances lose nothing.

The consumer is ``FakeGroupMember``, whose assignment and fetch positions are kafka-python
3.0.12's own ``SubscriptionState`` and whose rebalances call the spout's listener as
kafka-python does (eager: everything revoked, then assigned; a partition handed back keeps
its fetch position). Storm is the spout's output stream (``StormLink``) and the acks and
fails a test sends; the dead-letter producer is ``FakeProducer``, whose ``flush`` is Kafka
confirming. Time moves only when a test says so.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from botscore.errors import InvalidMessage
from botscore.vocabulary import Component, DeadLetterReason
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import SourceRef
from spouts import kafka_source
from spouts.kafka_source import KafkaSourceSpout
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.storm_fakes import StormLink, start
from tests.unit.transport.kafka_fakes import FakeCoordinator, FakeGroupMember, FakeProducer, record

TOPIC = "lines"
P0 = TopicPartition(TOPIC, 0)
P1 = TopicPartition(TOPIC, 1)
BACKOFF_S = 1.0
INTERVAL_S = 1.0
# Under a millisecond, and exact in binary: the clock lands on a deadline, not near it.
TICK_S = 2**-10


class _LinesSpout(KafkaSourceSpout):
    """Emits ``lines_per_tuple`` lines joined by commas, with the replay floor they were
    read under; ``bad`` and a message without a value are invalid."""

    component = Component.FEATURES_SPOUT
    outputs = ["lines", "replay_floor"]
    lines_per_tuple = 1

    def source(self, settings):
        return TOPIC, "lines-group"

    def messages_per_tuple(self, settings):
        return self.lines_per_tuple

    def decode(self, value, key, source):
        if value is None or value == b"bad":
            raise InvalidMessage(DeadLetterReason.UNDECODABLE, "not a line")
        return value.decode()

    def tuple_values(self, rows, sources):
        assert len({(s.topic, s.partition) for s in sources}) == 1
        floor = self.in_flight.offsets.replay_floor((TOPIC, sources[0].partition))
        return [",".join(rows), floor]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Run:
    """One spout, its group member, its Storm link and its clock, and a record of acks.

    ``finished`` holds the offsets some emission of which was acked, or whose dead letter
    Kafka confirmed: every commit must stay at or below the first offset not in it.
    """

    def __init__(self, spout: _LinesSpout, link: StormLink, member, producer, clock) -> None:
        self.spout = spout
        self.link = link
        self.member = member
        self.producer = producer
        self.clock = clock
        self.seen = 0  # emits already handed out by new_emits()
        self.finished: dict[TopicPartition, set[int]] = {}

    def step(self, times: int = 1) -> list[tuple[str, list[Any]]]:
        """``next_tuple`` ``times`` times; the (id, values) emitted meanwhile."""
        for _ in range(times):
            self.spout.next_tuple()
        return self.new_emits()

    def new_emits(self) -> list[tuple[str, list[Any]]]:
        emits = self.link.emitted()[self.seen :]
        self.seen += len(emits)
        return [(e["id"], e["tuple"]) for e in emits]

    def ack(self, *tup_ids: str) -> None:
        for tup_id in tup_ids:
            _, partition, offsets = tup_id.split("/")
            first, last = map(int, offsets.split("-"))
            done = self.finished.setdefault(TopicPartition(TOPIC, int(partition)), set())
            done.update(range(first, last + 1))
            self.spout.ack(tup_id)

    def fail(self, *tup_ids: str) -> None:
        for tup_id in tup_ids:
            self.spout.fail(tup_id)

    def confirm_letters(self) -> list[Any]:
        """Kafka confirms every dead letter sent so far; the letters, decoded."""
        self.producer.flush()
        letters = [decode_dead_letter(value) for _, _, value in self.producer.sent]
        for letter in letters:
            self.finished.setdefault(
                TopicPartition(letter.source.topic, letter.source.partition), set()
            ).add(letter.source.offset)
        return letters

    def commit_now(self) -> list[dict[TopicPartition, int]]:
        """Let a commit interval pass and run the spout once; the commits it made."""
        before = len(self.member.commits)
        self.clock.now += INTERVAL_S
        self.spout.next_tuple()
        return self.member.commits[before:]

    def check_commits(self) -> None:
        for commit in self.member.commits:
            for tp, position in commit.items():
                done = self.finished.get(tp, set())
                unfinished = [o for o in range(position) if o not in done]
                assert not unfinished, f"{tp} committed at {position} past {unfinished}"


def _ids(*offsets: int, partition: int = 0) -> list[str]:
    """Ids of one-message tuples."""
    return [f"{TOPIC}/{partition}/{o}-{o}" for o in offsets]


@pytest.fixture
def run(monkeypatch):
    """Start a spout on ``logs`` (partition -> values), assigned ``assigned``, in a group
    that committed ``committed`` (default: 0 for every partition)."""

    def _start(
        logs: dict[TopicPartition, list[bytes]],
        assigned: list[TopicPartition] | None = None,
        *,
        committed: dict[TopicPartition, int] | None = None,
        max_per_poll: int = 10,
        lines_per_tuple: int = 1,
        **options: Any,
    ) -> _Run:
        clock = _Clock()
        monkeypatch.setattr(kafka_source, "time", clock)
        member = FakeGroupMember(
            logs,
            committed={tp: 0 for tp in logs} if committed is None else committed,
            max_per_poll=max_per_poll,
        )
        producer = FakeProducer()
        monkeypatch.setattr(kafka_source, "create_consumer", lambda *a, **k: member)
        monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: producer)
        settings = {
            "botscore.kafka.replay_backoff_first_ms": int(BACKOFF_S * 1000),
            "botscore.kafka.replay_backoff_max_ms": int(BACKOFF_S * 1000),
            "botscore.kafka.commit_interval_ms": int(INTERVAL_S * 1000),
            **{f"botscore.kafka.{k}": v for k, v in options.items()},
        }
        spout_class = type("_Lines", (_LinesSpout,), {"lines_per_tuple": lines_per_tuple})
        spout, link = start(spout_class, settings, monkeypatch)
        member.rebalance(list(logs) if assigned is None else assigned)
        return _Run(spout, link, member, producer, clock)

    return _start


def test_commits_only_up_to_the_first_offset_not_acked(run):
    r = run({P0: [b"a", b"b", b"c", b"d", b"e"]})
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1, 2, 3, 4)
    r.ack(*_ids(1, 2, 4))
    assert r.commit_now() == []
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 3}]
    assert r.commit_now() == []  # nothing moved: nothing committed again
    r.ack(*_ids(3))
    assert r.commit_now() == [{P0: 5}]
    r.check_commits()


def test_commits_wait_for_the_commit_interval(run):
    r = run({P0: [b"a"]})
    r.step()
    r.ack(*_ids(0))
    r.clock.now += INTERVAL_S - TICK_S
    r.step()
    assert r.member.commits == []
    r.clock.now += TICK_S
    r.step()
    assert r.member.commits == [{P0: 1}]


def test_a_failed_tuple_is_replayed_after_its_backoff_and_holds_the_commit(run):
    r = run({P0: [b"a", b"b"]})
    r.step()
    r.ack(*_ids(1))
    r.fail(*_ids(0))
    r.clock.now += BACKOFF_S * 0.99
    assert r.step() == []
    r.clock.now += BACKOFF_S * 0.01
    assert r.step() == [(_ids(0)[0], ["a", 0])]  # the same id and values as the first time
    assert r.commit_now() == []
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 2}]
    r.check_commits()


def test_the_last_allowed_failure_dead_letters_the_tuple_and_then_commits_it(run):
    r = run({P0: [b"a", b"b"]}, max_attempts=3)
    r.step()
    [tup_id] = _ids(0)
    for _ in range(2):
        r.fail(tup_id)
        r.clock.now += BACKOFF_S
        assert r.step() == [(tup_id, ["a", 0])]
    assert r.producer.sent == []
    r.ack(*_ids(1))  # another tuple gets through: the fault is a's own
    r.fail(tup_id)  # the third failure of three allowed
    r.clock.now += BACKOFF_S
    assert r.step() == []  # not replayed again
    assert len(r.producer.sent) == 1
    assert r.commit_now() == []  # the letter is not on Kafka yet
    [letter] = r.confirm_letters()
    assert letter.reason == DeadLetterReason.RETRIES_EXHAUSTED
    assert letter.detail == "failed downstream 3 times"
    assert (letter.original_value, letter.source) == (b"a", SourceRef(TOPIC, 0, 0))
    assert r.commit_now() == [{P0: 2}]
    r.check_commits()


def test_while_every_tuple_fails_none_is_dead_lettered_and_the_outage_is_logged(
    run, caplog, monkeypatch
):
    """Redis or a broker downstream away: every tuple fails, nothing is acked. The last
    attempt is no evidence against a tuple's messages then; it waits, replayed."""
    recorded = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b"]}, max_attempts=2)
    r.step()
    for _ in range(5):  # far past the attempts allowed
        r.fail(*_ids(0, 1))
        r.clock.now += BACKOFF_S
        assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1)
    assert r.producer.sent == [] and r.commit_now() == []
    assert recorded[0].counted("last_attempts_deferred") == 8  # 4 rounds past the 1st
    deferred = [m for m in caplog.messages if "not dead-lettered" in m]
    assert len(deferred) == 1 and deferred[0].startswith("1 tuple failures at their last")
    r.ack(*_ids(1))  # the outage is over for b
    r.fail(*_ids(0))  # a fails on: now that is a's own
    assert [letter.reason for letter in r.confirm_letters()] == [DeadLetterReason.RETRIES_EXHAUSTED]
    assert r.commit_now() == [{P0: 2}]
    r.check_commits()


def test_an_invalid_message_is_dead_lettered_and_holds_its_offset_until_kafka_has_it(run):
    r = run({P0: [b"a", b"bad", b"c"]})
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 2)
    r.ack(*_ids(0, 2))
    assert r.commit_now() == [{P0: 1}]
    [letter] = r.confirm_letters()
    assert (letter.reason, letter.original_value) == (DeadLetterReason.UNDECODABLE, b"bad")
    assert letter.source == SourceRef(TOPIC, 0, 1)
    assert r.commit_now() == [{P0: 3}]
    r.check_commits()


def test_a_partition_handed_back_goes_on_where_it_was_and_late_fails_still_count(run):
    """Issue 11: the client keeps the fetch position of a partition it is handed back; the
    spout had forgotten its tuples, so a late fail found nothing and the commit passed it."""
    r = run({P0: [b"a", b"b", b"c", b"d", b"e", b"f"]}, max_per_poll=4)
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1, 2, 3)
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]
    assert [tup_id for tup_id, _ in r.new_emits()] == _ids(4, 5)
    r.fail(*_ids(1))  # due for a replay
    r.member.rebalance([P0])  # eager: revoked, then assigned again
    assert r.member.position(P0) == 6  # kafka-python kept it
    r.fail(*_ids(2))  # late: from before the rebalance
    r.ack(*_ids(3))
    r.clock.now += BACKOFF_S
    # Only the replays: nothing is read twice, and the floor did not move.
    assert r.step(2) == [(_ids(1)[0], ["b", 0]), (_ids(2)[0], ["c", 0])]
    r.ack(*_ids(1, 4))
    assert r.commit_now() == [{P0: 2}]  # 2 failed late: its replay holds the commit
    r.ack(*_ids(2, 5))
    assert r.commit_now() == [{P0: 6}]
    r.check_commits()


def test_a_fail_after_a_rebalance_never_lets_the_commit_pass_its_offset(run):
    """Issue 11: a late fail found nothing, and the next commit passed the failed offset."""
    r = run({P0: [b"a", b"b", b"c", b"d", b"e", b"f"]}, max_per_poll=4)
    emitted = r.step()
    r.member.rebalance([P0])
    emitted += r.step()
    [failed] = _ids(1)
    r.fail(failed)
    r.ack(*[tup_id for tup_id, _ in emitted if tup_id != failed])
    r.commit_now()
    r.check_commits()
    assert r.member.group_committed[P0] == 1
    r.clock.now += BACKOFF_S
    r.ack(*[tup_id for tup_id, _ in r.step()])
    r.commit_now()
    r.check_commits()
    assert r.member.group_committed[P0] == 6


def test_rebalances_reported_together_are_applied_in_order(run):
    r = run({P0: [b"a"], P1: [b"x"]})
    r.step()
    r.member.rebalance([P1])
    r.member.rebalance([P0])
    assert r.step() == [(_ids(0)[0], ["a", 0])]
    r.ack(*_ids(0), *_ids(0, partition=1))
    assert r.commit_now() == [{P0: 1}]


def test_records_polled_across_a_rebalance_are_read_only_for_a_partition_handed_back(run):
    """A rebalance that ends inside poll() hands back records from the kept position: they
    go on the stream of a partition handed back, and are dropped for a new one."""
    r = run({P0: [b"a", b"b", b"c", b"d"], P1: [b"x", b"y"]}, [P0], max_per_poll=2)
    assert [tup_id for tup_id, _ in r.step(2)] == _ids(0, 1, 2, 3)
    r.member.logs[P0] += [record(TOPIC, 0, 4, b"e"), record(TOPIC, 0, 5, b"f")]
    r.member.on_poll = lambda member: member.rebalance([P0, P1])
    # e and f go on P0's stream; P1 is new here, and is read from its commit next time.
    assert [tup_id for tup_id, _ in r.step()] == _ids(4, 5)
    r.member.on_poll = None
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1, partition=1)


def test_a_partition_without_a_commit_is_read_again_from_the_reset_policy(run):
    r = run({P0: [b"a", b"b"]}, committed={})
    r.step()
    r.member.rebalance([])  # to another member, which commits nothing
    r.member.rebalance([P0])
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1)


def test_where_reading_began_is_committed_so_a_rebalance_resumes_there(run):
    """With ``latest`` and no commit, a rebalance would otherwise skip what was read."""
    r = run({P0: [b"old"]}, committed={}, auto_offset_reset="latest")
    r.step()  # joins at the end: offset 1
    r.member.logs[P0].append(record(TOPIC, 0, 1, b"new"))
    assert [tup_id for tup_id, _ in r.step()] == _ids(1)
    assert r.commit_now() == [{P0: 1}]
    r.member.rebalance([])
    r.member.rebalance([P0])
    assert [tup_id for tup_id, _ in r.step()] == _ids(1)


def test_late_acks_and_fails_of_a_partition_moved_away_are_ignored(run):
    r = run({P0: [b"a", b"b"], P1: [b"x"]}, max_attempts=1)
    r.step()
    r.member.rebalance([P1])  # P0 now belongs to another member; P1 is handed back
    r.ack(*_ids(0))
    r.fail(*_ids(1))  # would be its last allowed failure
    r.clock.now += BACKOFF_S
    assert r.step() == []  # P1 goes on where it was: nothing to read again
    assert r.producer.sent == []  # the new owner replays it; no dead letter here
    r.ack(*_ids(0, partition=1))
    assert r.commit_now() == [{P1: 1}]
    assert [tp for commit in r.member.commits for tp in commit] == [P1]


def test_no_commit_of_a_partition_revoked_while_in_flight_is_full(run):
    """Issue 11: at ``max_in_flight`` revocations were not applied, but commits ran."""
    r = run({P0: [b"a", b"b"], P1: [b"x", b"y"]}, max_in_flight=2)
    assert len(r.step()) == 4
    r.ack(*_ids(0))  # P0 could commit 1; three tuples still in flight
    r.member.rebalance([P1])
    assert r.commit_now() == []
    r.ack(*_ids(1))
    r.ack(*_ids(0, 1, partition=1))
    assert r.commit_now() == [{P1: 2}]


def test_a_commit_is_limited_to_the_assignment_even_before_the_revocation_is_reported(run):
    r = run({P0: [b"a"], P1: [b"x"]})
    r.step()
    r.ack(*_ids(0), *_ids(0, partition=1))
    # P0 moves away on the I/O thread after the spout applied what was reported: the
    # assignment has changed, the report is not read yet.
    r.member.subscription.assign_from_subscribed([P1])
    assert r.commit_now() == [{P1: 1}]


def test_a_partition_lost_to_an_eviction_and_assigned_back_goes_on_where_it_was(run):
    """Issue 15: a broker that stalled past the session timeout evicted the only spout; it
    got its partitions back and read again from its last commits, scoring 106 twice."""
    r = run({P0: [b"a", b"b", b"c"]}, max_per_poll=2)
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1)
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]
    r.member.lose()
    r.ack(*_ids(1))  # late: it still counts
    assert r.commit_now() == []  # not owned
    r.member.rebalance([P0])
    assert [tup_id for tup_id, _ in r.step()] == _ids(2)  # nothing read twice
    assert r.commit_now() == [{P0: 2}]
    r.check_commits()


def test_a_lost_partition_another_member_read_on_from_is_forgotten(run):
    r = run({P0: [b"a", b"b", b"c", b"d"]}, max_attempts=1)
    r.step()
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]
    r.member.lose()
    r.fail(*_ids(2))  # held while lost; c is the other member's now
    r.member.group_committed[P0] = 3  # its owner meanwhile finished up to here
    r.member.rebalance([P0])
    r.ack(*_ids(1))  # late, for what the other member finished: ignored
    assert [tup_id for tup_id, _ in r.step()] == _ids(3)
    assert len(r.spout.in_flight) == 1  # d, read again; b and c forgotten with the partition
    assert r.spout.deferred_fails == []  # c's failure too: no replay, no dead letter
    r.clock.now += BACKOFF_S
    assert r.step() == []
    assert r.producer.sent == []
    assert r.commit_now() == []  # nothing below the group's commit, nothing new finished
    r.ack(*_ids(3))
    assert r.commit_now() == [{P0: 4}]


def test_a_lost_partition_whose_commit_is_unknown_is_not_read_before_it_is(run):
    r = run({P0: [b"a", b"b", b"c"]}, max_per_poll=2)
    r.step()
    r.member.lose()
    r.member.refuse_committed = KafkaTimeoutError("no coordinator")
    r.member.rebalance([P0])
    r.ack(*_ids(0, 1))
    assert r.step(3) == []
    assert r.commit_now() == []  # not before the group's commit is known not to be past ours
    r.member.refuse_committed = None
    assert [tup_id for tup_id, _ in r.step()] == _ids(2)
    assert r.commit_now() == [{P0: 2}]


def _lost_then_revoked_and_back_before_its_commit_was_known(run):
    """Offsets 0 and 1 finished, then an eviction; back, revoked and back again while the
    group's commit cannot be read."""
    r = run({P0: [b"a", b"b", b"c"]}, max_per_poll=2)
    r.step()
    r.ack(*_ids(0, 1))
    r.member.lose()
    r.member.refuse_committed = KafkaTimeoutError("no coordinator")
    r.member.rebalance([P0])
    assert r.step() == []
    r.member.rebalance([P0])
    return r


def test_a_lost_partition_revoked_again_before_its_commit_was_known_is_checked_when_back(run):
    r = _lost_then_revoked_and_back_before_its_commit_was_known(run)
    r.member.group_committed[P0] = 3  # another member finished more meanwhile
    r.member.refuse_committed = None
    assert r.step() == []  # read from the group's commit: nothing left
    assert r.commit_now() == []


def test_a_partition_waits_for_its_committed_offset_when_the_coordinator_does_not_answer(run):
    r = run({P0: [b"a", b"b", b"c"]})
    r.step()
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]
    r.member.refuse_committed = KafkaTimeoutError("no coordinator")
    r.member.rebalance([])
    r.member.rebalance([P0])  # new again, and kafka-python kept no position for it
    r.member.logs[P0].append(record(TOPIC, 0, 3, b"d"))
    assert r.step(3) == []  # nothing is read before the committed offset is known
    r.member.refuse_committed = None
    assert [tup_id for tup_id, _ in r.step()] == _ids(1, 2, 3)


def test_reading_pauses_while_unfinished_messages_hold_the_byte_limit(run):
    """Issue 11: 5,000 messages near the broker's size limit held in memory are gigabytes."""
    r = run({P0: [b"x" * 600, b"y" * 600, b"z"]}, max_per_poll=1, max_in_flight_bytes=1000)
    assert len(r.step()) == 1
    assert len(r.step()) == 1  # 600 bytes held: below the limit, one more is read
    assert r.step(3) == []  # 1200 bytes held: no polling
    r.ack(*_ids(0))
    assert [values for _, values in r.step()] == [["z", 0]]


def test_a_full_spout_keeps_polling_with_its_partitions_paused_so_rebalances_proceed(run):
    """Issue 11: a full spout stopped polling, so a member joining the group waited for it
    (up to max.poll.interval.ms) while every write downstream failed."""
    r = run({P0: [b"a", b"b"], P1: [b"x"]}, max_in_flight=2, max_per_poll=1)
    assert len(r.step()) == 2  # a and x: full
    paused_at_poll: list[set[TopicPartition]] = []
    r.member.on_poll = lambda member: paused_at_poll.append(member.paused())
    assert r.step(2) == []
    assert paused_at_poll == [{P0, P1}, {P0, P1}]  # polled, fetching nothing

    def joined(member: FakeGroupMember) -> None:  # the rebalance completes inside poll()
        member.on_poll = None
        member.rebalance([P0])

    r.member.on_poll = joined
    assert r.step() == []  # P1 went to the new member: its tuple is forgotten, room again
    assert [values for _, values in r.step()] == [["b", 0]]  # P0 goes on where it was
    assert r.member.paused() == set()


def test_calls_to_the_group_coordinator_wait_at_most_2_s(run):
    """README: commits 2 s, so no spout call blocks past Storm's heartbeat timeout."""
    r = run({P0: [b"a"]})
    asked = []
    commit, committed = r.member.commit, r.member.committed

    def timed_commit(offsets, timeout_ms=None):
        asked.append(("commit", timeout_ms))
        commit(offsets, timeout_ms)

    def timed_committed(tp, metadata=False, timeout_ms=None):
        asked.append(("committed", timeout_ms))
        return committed(tp, metadata, timeout_ms)

    r.member.commit, r.member.committed = timed_commit, timed_committed
    r.step()
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]
    assert asked == [("committed", 2000), ("commit", 2000)]


def test_a_group_rejoin_the_client_abandoned_is_asked_for_again(run):
    r = run({P0: [b"a"]})
    r.member._coordinator = FakeCoordinator(rejoining=True, need_rejoin=False)
    r.step()
    assert r.member._coordinator.rejoins_requested == 1


def test_a_lost_partition_that_goes_elsewhere_is_forgotten_with_its_failures(run):
    """Its tuples are the next owner's: no replay, no dead letter, no room taken here."""
    r = run({P0: [b"a"], P1: [b"x"]}, max_attempts=1)
    r.step()
    r.member.lose()
    r.fail(*_ids(0))  # would be its last allowed failure
    r.clock.now += BACKOFF_S
    assert r.step() == []
    assert r.producer.sent == []  # held until the group says where P0 went
    r.member.rebalance([P1])
    r.clock.now += BACKOFF_S
    assert r.step() == []
    assert r.producer.sent == []
    assert len(r.spout.in_flight) == 1  # x, still out: P1 came back


def test_a_failure_held_while_its_partition_was_lost_counts_once_it_is_back(run):
    r = run({P0: [b"a", b"b"]}, max_attempts=1)
    r.step()
    r.ack(*_ids(1))
    r.member.lose()
    r.fail(*_ids(0))
    r.member.rebalance([P0])
    r.step()
    assert r.spout.deferred_fails == []  # applied, not held any more
    assert [letter.reason for letter in r.confirm_letters()] == [DeadLetterReason.RETRIES_EXHAUSTED]
    assert r.commit_now() == [{P0: 2}]


def test_a_partition_back_is_committed_again_where_the_group_lost_our_last_commit(run):
    """The group's commit, read when the partition comes back, is what a commit moves on
    from: one of ours the group no longer has is made again."""
    r = run({P0: [b"a", b"b", b"c"]})
    r.step()
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    r.member.lose()
    r.member.group_committed[P0] = 1  # our commit of 2 did not survive the eviction
    r.member.rebalance([P0])
    assert r.step() == []  # c is still ours, in flight: nothing read again
    assert r.commit_now() == [{P0: 2}]


def test_a_replay_due_while_its_partition_was_lost_waits_until_it_is_back(run):
    r = run({P0: [b"a"]}, max_attempts=3)
    r.step()
    r.fail(*_ids(0))
    r.member.lose()
    r.clock.now += BACKOFF_S
    assert r.step() == []
    r.member.rebalance([P0])
    assert [tup_id for tup_id, _ in r.step()] == _ids(0)


def _batch_ids(*ranges: tuple[int, int], partition: int = 0) -> list[str]:
    return [f"{TOPIC}/{partition}/{first}-{last}" for first, last in ranges]


def test_a_poll_is_emitted_in_batches_of_consecutive_offsets_per_partition(run):
    r = run(
        {P0: [b"a", b"b", b"c", b"d", b"e", b"f", b"g"], P1: [b"x", b"y"]},
        lines_per_tuple=3,
        max_per_poll=5,
    )
    assert sorted(r.step()) == sorted(
        [
            (_batch_ids((0, 2))[0], ["a,b,c", 0]),
            (_batch_ids((3, 4))[0], ["d,e", 0]),  # a batch never spans two polls
            (_batch_ids((0, 1), partition=1)[0], ["x,y", 0]),
        ]
    )
    assert r.step() == [(_batch_ids((5, 6))[0], ["f,g", 0])]
    r.ack(*_batch_ids((3, 4)))
    assert r.commit_now() == []
    r.ack(*_batch_ids((0, 2)), *_batch_ids((0, 1), partition=1))
    assert r.commit_now() == [{P0: 5, P1: 2}]
    r.check_commits()


def test_invalid_messages_are_dead_lettered_alone_and_split_batches(run):
    r = run({P0: [b"a", b"bad", b"c", b"d", b"bad", b"bad", b"e"]}, lines_per_tuple=10)
    assert r.step() == [
        (_batch_ids((0, 0))[0], ["a", 0]),
        (_batch_ids((2, 3))[0], ["c,d", 0]),
        (_batch_ids((6, 6))[0], ["e", 0]),
    ]
    r.ack(*_batch_ids((0, 0), (2, 3), (6, 6)))
    assert r.commit_now() == [{P0: 1}]  # the letters are not on Kafka yet
    letters = r.confirm_letters()
    assert [(d.source.offset, d.reason) for d in letters] == [
        (1, DeadLetterReason.UNDECODABLE),
        (4, DeadLetterReason.UNDECODABLE),
        (5, DeadLetterReason.UNDECODABLE),
    ]
    assert r.commit_now() == [{P0: 7}]
    r.check_commits()


def test_a_failed_batch_is_replayed_whole_under_its_id_and_holds_the_commit(run):
    r = run({P0: [b"a", b"b", b"c", b"d"]}, lines_per_tuple=2)
    first, second = _batch_ids((0, 1), (2, 3))
    assert [tup_id for tup_id, _ in r.step()] == [first, second]
    r.ack(second)
    r.fail(first)
    r.clock.now += BACKOFF_S
    assert r.step() == [(first, ["a,b", 0])]
    assert r.commit_now() == []
    r.ack(first)
    assert r.commit_now() == [{P0: 4}]
    r.check_commits()


def test_an_exhausted_batch_is_halved_until_the_message_at_fault_is_dead_lettered_alone(
    run, monkeypatch, caplog
):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c", b"d", b"e"]}, lines_per_tuple=4, max_attempts=2)
    batch, last = _batch_ids((0, 3), (4, 4))
    r.step()
    r.fail(batch)
    r.clock.now += BACKOFF_S
    assert r.step() == [(batch, ["a,b,c,d", 0])]
    r.ack(last)
    r.fail(batch)  # its second failure of two allowed, with another tuple acked between
    assert r.step() == [  # at once, no backoff
        (_batch_ids((0, 1))[0], ["a,b", 0]),
        (_batch_ids((2, 3))[0], ["c,d", 0]),
    ]
    assert "emitting it again as lines/0/0-1 and lines/0/2-3" in caplog.text
    r.ack(*_batch_ids((0, 1)))
    r.fail(*_batch_ids((2, 3)))  # one failure of a half is enough: it is halved again
    assert r.step() == [(_ids(2)[0], ["c", 0]), (_ids(3)[0], ["d", 0])]
    r.ack(*_ids(3))
    r.fail(*_ids(2))
    assert r.step() == []  # alone: dead-lettered, not replayed
    assert r.commit_now() == [{P0: 2}]  # c's letter is not on Kafka yet
    r.ack(batch)  # late: changes nothing
    [letter] = r.confirm_letters()
    assert (letter.original_value, letter.source) == (b"c", SourceRef(TOPIC, 0, 2))
    assert (letter.reason, letter.detail) == (
        DeadLetterReason.RETRIES_EXHAUSTED,
        "failed downstream 4 times, the last alone: the rest of its batch was tried without it",
    )
    assert r.commit_now() == [{P0: 5}]
    assert len(r.spout.in_flight) == 0 and r.spout.in_flight.held_bytes == 0
    assert sum(m.counted("bisected") for m in created) == 2
    assert caplog.text.count("to find the messages at fault") == 1  # a line a minute at most
    r.check_commits()


def test_halves_that_all_fail_are_dead_lettered_at_once_as_the_batch_was(run):
    """Once a batch used up its attempts, its halves do not wait for other tuples' acks:
    at worst they are dead-lettered, as the whole batch would have been."""
    r = run({P0: [b"a", b"b", b"c", b"d"]}, lines_per_tuple=3, max_attempts=2)
    batch, last = _batch_ids((0, 2), (3, 3))
    r.step()
    r.fail(batch)
    r.clock.now += BACKOFF_S
    r.step()
    r.ack(last)
    r.fail(batch)
    for _ in range(3):  # a | b,c, then b | c: every part fails, nothing acked since
        r.fail(*[tup_id for tup_id, _ in r.step()])
    assert r.step() == []
    letters = r.confirm_letters()
    assert sorted((d.original_value, d.source.offset) for d in letters) == [
        (b"a", 0),
        (b"b", 1),
        (b"c", 2),
    ]
    assert {d.detail.split(",")[0] for d in letters} == {
        "failed downstream 3 times",  # a: two in the batch, one alone
        "failed downstream 4 times",  # b and c: one more in their half
    }
    assert r.commit_now() == [{P0: 4}]
    r.check_commits()


def test_a_batch_of_a_partition_handed_back_is_still_tracked_one_moved_away_is_read_again(run):
    r = run({P0: [b"a", b"b", b"c"], P1: [b"x", b"y", b"z"]}, lines_per_tuple=2)
    r.step()
    r.ack(*_batch_ids((0, 1)), *_batch_ids((0, 1), partition=1))
    assert r.commit_now() == [{P0: 2, P1: 2}]
    r.member.rebalance([P0])  # P0 handed back, P1 to another member
    r.ack(*_batch_ids((2, 2), partition=1))  # late, ignored: P1 is its new owner's
    r.fail(*_batch_ids((2, 2)))  # late, counted: P0 is still ours
    r.clock.now += BACKOFF_S
    assert r.step() == [(_batch_ids((2, 2))[0], ["c", 0])]  # replayed as first emitted
    r.member.rebalance([P0, P1])  # P1 comes back as new: read from its commit
    assert r.step() == [(_batch_ids((2, 2), partition=1)[0], ["z", 2])]
    assert [tp for commit in r.member.commits[1:] for tp in commit] == []
    r.ack(*_batch_ids((2, 2)), *_batch_ids((2, 2), partition=1))
    assert r.commit_now() == [{P0: 3, P1: 3}]
    r.check_commits()


def test_the_in_flight_limit_counts_messages_not_tuples(run):
    r = run({P0: [bytes([c]) for c in b"abcdefghij"]}, lines_per_tuple=5, max_in_flight=6)
    first, second = _batch_ids((0, 4), (5, 9))
    assert [tup_id for tup_id, _ in r.step()] == [first, second]  # one poll of 10
    r.member.logs[P0].append(record(TOPIC, 0, 10, b"k"))
    assert r.step(2) == []  # two tuples, but ten messages: full
    r.ack(first)
    assert r.step() == [(_batch_ids((10, 10))[0], ["k", 0])]  # five: room again


def test_the_static_member_name_is_kept_by_a_restarted_task_and_never_shared(monkeypatch):
    """A task Storm restarts (same topology id and task) rejoins under its old name and gets
    its partitions back without a rebalance; another topology reading the group, or another
    task, has a name of its own (Kafka would fence one of two members sharing a name)."""
    names = []

    def consumer(*args: Any, instance: str | None = None, **kwargs: Any) -> FakeGroupMember:
        names.append(instance)
        return FakeGroupMember({P0: [b"a"]}, committed={P0: 0})

    monkeypatch.setattr(kafka_source, "create_consumer", consumer)
    monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: FakeProducer())
    for storm_id, task in (
        ("lines-1-100", 7),
        ("lines-1-100", 7),
        ("lines-2-200", 7),
        ("lines-1-100", 8),
    ):
        start(_LinesSpout, {"storm.id": storm_id}, monkeypatch, task_id=task)
    first, restarted, other_topology, other_task = names
    assert first == restarted
    assert len({first, other_topology, other_task}) == 3
    assert all(name and "lines-" in name for name in names)


def _record_metrics(monkeypatch) -> list[RecordingMetrics]:
    """The metrics of each spout started from now on, as it sends them."""
    created: list[RecordingMetrics] = []

    def metrics(settings, component, tags=()):
        assert {t.split(":")[0] for t in tags} == {"topology", "task"}
        created.append(RecordingMetrics(component))
        return created[-1]

    monkeypatch.setattr(kafka_source, "Metrics", metrics)
    return created


def test_sends_each_owned_partitions_lag_from_its_last_commit_once_per_interval(run, monkeypatch):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c"], P1: [b"d"]}, lag_interval_ms=5000)
    [sent] = created
    r.step()
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    assert sent.gauges("lag") == {}  # 1 s in: not due yet
    r.clock.now += 4.0
    r.step()
    assert sent.gauges("lag") == {
        (f"topic:{TOPIC}", "partition:0"): 1,  # c read, not acked
        (f"topic:{TOPIC}", "partition:1"): 1,  # d: the group's commit 0 still stands
    }
    assert sent.gauges("committed_offset")[(f"topic:{TOPIC}", "partition:0")] == 2
    r.member.rebalance([P0])  # P1 goes to another member: its lag is no longer ours
    r.clock.now += 5.0
    before = len(sent.sent)
    r.step()
    assert {tags for _, what, _, tags in sent.sent[before:] if what == "lag"} == {
        (f"topic:{TOPIC}", "partition:0")
    }


def test_a_lost_ack_is_replayed_after_its_wait_and_counted_by_cause(run, monkeypatch):
    """Storm dropped the ack of offset 0 (a worker died and came back): later tuples of
    the partition are acked, so the spout emits it again instead of waiting 60-120 s for
    Storm's timeout; a failed tuple is replayed at its backoff and counted apart."""
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c"], P1: [b"d"]}, lost_ack_replay_ms=3000)
    [sent] = created
    r.step()
    r.ack(*_ids(1, 2))
    r.fail(*_ids(0, partition=1))
    assert r.step() == []  # sees offset 0 overtaken: its wait starts
    r.clock.now += BACKOFF_S
    assert r.step() == [(_ids(0, partition=1)[0], ["d", 0])]
    r.clock.now += 3.0 - BACKOFF_S - TICK_S
    assert r.step() == []
    r.clock.now += TICK_S
    assert r.step() == [(_ids(0)[0], ["a", 0])]  # the same id and values
    assert sent.counted_by("replayed", "cause") == {"failed": 1, "lost_ack": 1}
    r.ack(*_ids(0))
    r.ack(*_ids(0, partition=1))
    assert r.commit_now() == [{P0: 3, P1: 1}]
    r.check_commits()


def test_with_lost_ack_replays_off_an_unacked_head_waits_for_storm(run):
    r = run({P0: [b"a", b"b"]}, lost_ack_replay_ms=0)
    r.step()
    r.ack(*_ids(1))
    r.clock.now += 3600.0
    assert r.step(3) == []
    r.fail(*_ids(0))  # Storm's timeout
    r.clock.now += BACKOFF_S
    assert r.step() == [(_ids(0)[0], ["a", 0])]


def test_a_deactivated_spout_commits_at_once_and_on_each_ack(run):
    """``sparse kill`` deactivates, waits, then kills: no next_tuple comes to commit."""
    r = run({P0: [b"a", b"b", b"c"]})
    r.step()
    r.ack(*_ids(0))
    assert r.member.commits == []  # within the commit interval
    r.spout.deactivate()
    assert r.member.commits == [{P0: 1}]
    r.ack(*_ids(2))
    assert r.member.commits == [{P0: 1}]  # 1 is not finished
    r.ack(*_ids(1))
    assert r.member.commits == [{P0: 1}, {P0: 3}]
    r.spout.activate()
    r.clock.now += 3600.0
    r.step()
    assert r.member.commits == [{P0: 1}, {P0: 3}]  # nothing new to commit
    r.check_commits()


def test_a_commit_past_the_logs_end_starts_the_partition_over_from_the_log(
    run, monkeypatch, caplog
):
    """The topic was recreated: the group's commit (5001) is past the new log's end, and
    kafka-python's out-of-range reset goes to its start. Was: every emit out of order, a
    crash, and the same again after each restart."""
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c"]}, committed={P0: 5001})
    assert [tup_id for tup_id, _ in r.step()] == _ids(0, 1, 2)
    assert created[0].counted("position_reset") == 1
    assert "lines/0: Kafka returned offset 0 where 5001 was next" in caplog.text
    r.ack(*_ids(0, 1, 2))
    assert r.commit_now() == [{P0: 3}]
    r.check_commits()


def test_a_log_that_moves_back_while_read_is_followed_and_old_tuples_forgotten(
    run, monkeypatch, caplog
):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c", b"d"]})
    r.step()
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    r.member.recreate(P0, [b"new-a"])
    r.member.seek(P0, 0)  # where kafka-python's reset or truncation check puts it
    assert [tup_id for tup_id, _ in r.step()] == _ids(0)
    assert created[0].counted("position_reset") == 1
    r.ack(*_ids(2, 3))  # late acks of the old log: ignored
    r.ack(*_ids(0))
    assert r.commit_now() == [{P0: 1}]


def test_offsets_retention_deleted_before_they_were_read_are_logged_and_counted(
    run, monkeypatch, caplog
):
    created = _record_metrics(monkeypatch)
    log = [bytes([i]) for i in range(10)]
    r = run({P0: log}, committed={P0: 2})
    r.member.log_start[P0] = 6
    assert [tup_id for tup_id, _ in r.step()] == _ids(6, 7, 8, 9)
    assert created[0].counted("offsets_deleted") == 4
    assert "lines/0: offsets 2-5 were deleted (retention) before they were read" in caplog.text
    assert created[0].counted("position_reset") == 0


def test_a_partition_revoked_and_assigned_back_before_the_first_read_starts_at_its_commit(
    run, monkeypatch, caplog
):
    """An eager rebalance right after joining (another member joins): revoked and assigned
    back before the spout's first call. Was: kept as if read, never moved to its commit,
    so the deleted offsets below the log's start went unreported (clean-clone run 56)."""
    created = _record_metrics(monkeypatch)
    log = [bytes([i]) for i in range(10)]
    r = run({P0: log}, committed={P0: 2})
    r.member.log_start[P0] = 6
    r.member.rebalance([P0])
    assert [tup_id for tup_id, _ in r.step()] == _ids(6, 7, 8, 9)
    assert "lines/0: offsets 2-5 were deleted (retention) before they were read" in caplog.text
    assert created[0].counted("offsets_deleted") == 4


def test_gaps_the_log_itself_has_are_read_past_in_silence(run, monkeypatch, caplog):
    """Compaction or transaction markers leave offsets no record has."""
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c", b"d"]})
    r.member.logs[P0] = [m for m in r.member.logs[P0] if m.offset != 0]  # offset 0: a marker
    assert [tup_id for tup_id, _ in r.step()] == _ids(1, 2, 3)
    assert created[0].counted("offsets_deleted") == 0 and "deleted" not in caplog.text


def _tup_ids(emits: list[tuple[str, list[Any]]]) -> list[str]:
    return [tup_id for tup_id, _ in emits]


def _poll_then(member: FakeGroupMember, rebalance) -> None:
    """The next poll returns what it fetched, then ``rebalance`` ends inside it: the listener
    runs on kafka-python's I/O thread, so records can come back for partitions no longer
    this member's."""
    poll = member.poll

    def fetched_then_rebalanced(timeout_ms: int = 0):
        records = poll(timeout_ms)
        member.poll = poll
        rebalance()
        return records

    member.poll = fetched_then_rebalanced


def test_replay_waits_double_from_the_first_backoff_up_to_the_max(run):
    r = run({P0: [b"a"]}, replay_backoff_first_ms=1000, replay_backoff_max_ms=2000)
    [tup_id] = _ids(0)
    r.step()
    for wait_s in (1.0, 2.0, 2.0):  # 4 s would be next, but 2 s is the most
        r.fail(tup_id)
        r.clock.now += wait_s - TICK_S
        assert r.step() == []
        r.clock.now += TICK_S
        assert r.step() == [(tup_id, ["a", 0])]


def test_lag_is_first_sent_a_whole_interval_after_start(run, monkeypatch):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a"]}, lag_interval_ms=5000)
    r.clock.now += 5.0 - TICK_S
    r.step()
    assert created[0].gauges("lag") == {}
    r.clock.now += TICK_S
    r.step()
    assert created[0].gauges("lag") == {(f"topic:{TOPIC}", "partition:0"): 1}


def test_a_lag_read_the_brokers_do_not_answer_is_counted_and_reading_goes_on(run, monkeypatch):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b"]}, lag_interval_ms=1000, max_per_poll=1)
    r.member.refuse_end_offsets = KafkaTimeoutError("no broker")
    r.clock.now += 1.0
    assert _tup_ids(r.step()) == _ids(0)
    assert created[0].counted("lag_read_failed") == 1
    assert _tup_ids(r.step()) == _ids(1)


def test_a_poll_returns_to_storm_within_100_ms_and_a_full_spouts_within_10(run):
    """Storm waits on ``next_tuple``: a poll never blocks long, and a full spout, which polls
    only to keep its place in the group, hardly at all."""
    r = run({P0: [b"a", b"b"]}, max_in_flight=1, max_per_poll=1)
    waits = []
    poll = r.member.poll

    def timed_poll(timeout_ms: int = 0):
        waits.append(timeout_ms)
        return poll(timeout_ms)

    r.member.poll = timed_poll
    r.step(2)
    assert waits == [100, 10]


def test_a_spout_without_partitions_waits_100_ms_a_call_instead_of_spinning(run):
    r = run({P0: [b"a"]}, [])
    before = r.clock.now
    assert r.step() == []
    assert r.clock.now - before == pytest.approx(0.1)
    r.member.rebalance([P0])
    before = r.clock.now
    assert _tup_ids(r.step(2)) == _ids(0)  # the second call polls nothing, but owns P0
    assert r.clock.now == before


def test_an_activated_spout_commits_at_its_interval_again_not_on_each_ack(run):
    r = run({P0: [b"a", b"b"]})
    r.step()
    r.spout.deactivate()
    r.spout.activate()
    r.ack(*_ids(0))
    assert r.member.commits == []
    assert r.commit_now() == [{P0: 1}]


def test_reading_pauses_once_unfinished_messages_hold_exactly_the_byte_limit(run):
    r = run({P0: [b"x" * 500, b"y" * 500, b"z"]}, max_per_poll=1, max_in_flight_bytes=1000)
    assert len(r.step(2)) == 2
    assert r.step() == []  # 1000 bytes held: full
    r.ack(*_ids(0))
    assert [values for _, values in r.step()] == [["z", 0]]


def test_a_dead_letter_kafka_has_not_confirmed_holds_its_bytes_against_the_limit(run):
    r = run({P0: [b"bad", b"c"]}, max_per_poll=1, max_in_flight_bytes=3)
    assert r.step() == []  # bad is dead-lettered: its 3 bytes are held until Kafka has it
    assert r.step(2) == []
    r.confirm_letters()
    assert r.step() == [(_ids(1)[0], ["c", 0])]


def test_a_lost_ack_of_a_lost_partition_is_not_replayed_until_the_partition_is_back(run):
    r = run({P0: [b"a", b"b"]}, lost_ack_replay_ms=1000)
    r.step()
    r.ack(*_ids(1))
    assert r.step() == []  # a is overtaken: its wait starts
    r.member.lose()
    r.clock.now += 5.0
    assert r.step(2) == []
    r.member.rebalance([P0])
    assert r.step() == [(_ids(0)[0], ["a", 0])]


def test_a_message_without_a_value_is_dead_lettered_with_an_empty_original(run):
    r = run({P0: []})
    r.member.logs[P0] = [record(TOPIC, 0, 0, b"")._replace(value=None)]
    assert r.step() == []
    [letter] = r.confirm_letters()
    assert (letter.original_value, letter.original_key) == (b"", b"")
    assert letter.source == SourceRef(TOPIC, 0, 0)
    assert r.commit_now() == [{P0: 1}]


def test_a_dead_letter_says_why_where_when_and_by_whom_and_is_counted_by_reason(
    run, monkeypatch, caplog
):
    created = _record_metrics(monkeypatch)
    monkeypatch.setattr(kafka_source, "now_ms", lambda: 1_700_000_000_000)
    r = run({P0: [b"a", b"bad"]})
    r.step()
    [letter] = r.confirm_letters()
    assert (letter.reason, letter.detail) == (DeadLetterReason.UNDECODABLE, "not a line")
    assert letter.component == Component.FEATURES_SPOUT
    assert letter.dead_lettered_ms == 1_700_000_000_000
    assert created[0].counted_by("dead_lettered", "reason") == {DeadLetterReason.UNDECODABLE: 1}
    # The log line names the message and why it was set aside.
    assert "lines/0/1" in caplog.text and "not a line" in caplog.text


def test_messages_in_are_counted_per_message_not_per_tuple(run, monkeypatch):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"a", b"b", b"c", b"bad", b"d"]}, lines_per_tuple=2)
    assert len(r.step()) == 3
    assert created[0].counted("in") == 4


def test_dead_letters_go_to_the_dead_letter_topic_and_a_failed_send_is_sent_again(run):
    r = run({P0: [b"bad"]}, dead_letter_topic="lines-dead", replay_backoff_first_ms=0)
    r.step()
    [(topic, _, value)] = r.producer.sent
    assert topic == "lines-dead"
    r.producer.fail[value] = KafkaTimeoutError("broker away")
    r.producer.flush()
    del r.producer.fail[value]
    r.step()  # the failure comes in, and the letter is sent again (no backoff set)
    assert [sent for _, _, sent in r.producer.sent] == [value, value]
    r.confirm_letters()
    assert r.commit_now() == [{P0: 1}]


def test_letters_kafka_refuses_for_good_are_counted_once_each_and_their_offsets_finish(
    run, monkeypatch
):
    created = _record_metrics(monkeypatch)
    r = run({P0: [b"bad", b"a", b"bad", b"bad"]}, max_per_poll=1)
    r.step()  # bad at 0
    r.producer.fail[r.producer.sent[0][2]] = MessageSizeTooLargeError("too large")
    r.producer.flush()
    r.step(3)  # a, then bad at 2 and 3
    assert created[0].counted("dead_letters_abandoned") == 1
    for _, _, value in r.producer.sent[1:]:
        r.producer.fail[value] = MessageSizeTooLargeError("too large")
    r.producer.flush()
    r.step(3)
    assert created[0].counted("dead_letters_abandoned") == 3
    r.ack(*_ids(1))
    assert r.commit_now() == [{P0: 4}]


def test_offsets_missing_while_the_logs_start_is_unknown_are_reported_and_reading_goes_on(
    run, monkeypatch, caplog
):
    """The log's start is asked for at most 2 s; unknown, the gap is named in the log (it may
    be compaction, or retention) and nothing is counted as deleted."""
    created = _record_metrics(monkeypatch)
    r = run({P0: [bytes([i]) for i in range(10)]}, committed={P0: 2})
    r.member.log_start[P0] = 6
    asked = []

    def no_answer(partitions, timeout_ms=None):
        asked.append(timeout_ms)
        raise KafkaTimeoutError("no leader for lines-0")

    r.member.beginning_offsets = no_answer
    assert _tup_ids(r.step()) == _ids(6, 7, 8, 9)
    assert asked == [2000]
    assert created[0].counted("offsets_deleted") == 0
    assert "lines/0: offsets 2-5" in caplog.text and "no leader for lines-0" in caplog.text


def test_a_lost_partition_revoked_again_before_its_commit_was_known_goes_on_where_it_was(run):
    r = _lost_then_revoked_and_back_before_its_commit_was_known(run)
    r.member.refuse_committed = None
    assert _tup_ids(r.step()) == _ids(2)  # the group's commit (0) is not past ours: go on
    assert r.commit_now() == [{P0: 2}]


def test_records_polled_before_a_partition_moved_away_are_dropped_across_two_rebalances(run):
    r = run({P0: [b"a", b"b"], P1: [b"x", b"y"]}, max_per_poll=1)
    r.step()
    _poll_then(r.member, lambda: (r.member.rebalance([P0]), r.member.rebalance([P0])))
    # b goes on P0's stream; y came with the poll, but P1 is another member's now.
    assert _tup_ids(r.step()) == _ids(1)


def test_records_polled_before_an_eviction_are_read_once_the_partition_is_back(run):
    r = run({P0: [b"a", b"b"], P1: [b"x", b"y"]}, max_per_poll=1)
    r.step()

    def moved_then_lost() -> None:
        r.member.rebalance([P0])  # P1 to another member
        r.member.lose()

    _poll_then(r.member, moved_then_lost)
    assert r.step() == []  # b and y came with the poll; neither partition is ours
    r.member.rebalance([P0])
    assert _tup_ids(r.step()) == _ids(1)  # back: b read once, from where the spout left


def test_an_eviction_and_the_assignment_after_it_are_applied_together_for_all_partitions(run):
    r = run({P0: [b"a", b"b", b"c"], P1: [b"x", b"y", b"z"]}, max_per_poll=2)
    r.step()
    r.member.lose()
    r.member.rebalance([P0, P1])
    assert sorted(_tup_ids(r.step())) == _ids(2) + _ids(2, partition=1)


def test_a_partition_revoked_before_it_was_positioned_does_not_hold_up_the_others(run):
    r = run({P0: [b"a"], P1: [b"x"]})
    # P0 moves away on the I/O thread before the spout's first call; not reported yet.
    r.member.subscription.assign_from_subscribed([P1])
    assert r.step() == [(_ids(0, partition=1)[0], ["x", 0])]


def test_a_partition_revoked_while_it_is_positioned_does_not_hold_up_the_others(run):
    r = run({P0: [b"a"], P1: [b"x"]})
    committed = r.member.committed

    def revoked_meanwhile(tp, metadata=False, timeout_ms=None):
        if tp == P0:  # P0 moves away on the I/O thread: seeking it raises ValueError
            r.member.subscription.assign_from_subscribed([P1])
        return committed(tp, metadata, timeout_ms)

    r.member.committed = revoked_meanwhile
    assert r.step() == [(_ids(0, partition=1)[0], ["x", 0])]


def test_committed_offsets_are_asked_within_what_is_left_of_the_calls_2_s(run):
    """All asks of one call wait 2 s in all: each gets what is left, and once nothing is, the
    remaining partitions are asked on the next call."""
    p2 = TopicPartition(TOPIC, 2)
    r = run({P0: [b"a"], P1: [b"x"], p2: [b"m"]})
    takes_s = {P0: 2.0 - 2 * TICK_S, P1: 2 * TICK_S, p2: 0.0}  # 2 ticks: 1.95 ms
    asked = []
    committed = r.member.committed

    def slow_committed(tp, metadata=False, timeout_ms=None):
        asked.append((tp.partition, timeout_ms))
        r.clock.now += takes_s[tp]
        return committed(tp, metadata, timeout_ms)

    r.member.committed = slow_committed
    r.step()
    assert asked == [(0, 2000), (1, 1)]
    r.step()
    assert asked[2:] == [(2, 2000)]


def test_a_lost_partition_read_again_from_the_groups_commit_replays_its_new_failures(run):
    r = run({P0: [b"a", b"b"]})
    r.step()
    r.member.lose()
    r.member.group_committed[P0] = 1  # another member finished a meanwhile
    r.member.rebalance([P0])
    assert _tup_ids(r.step()) == _ids(1)
    r.fail(*_ids(1))  # no longer held for the partition's return
    r.clock.now += BACKOFF_S
    assert r.step() == [(_ids(1)[0], ["b", 1])]


def test_a_partition_back_after_an_eviction_is_not_committed_again_where_the_group_has_it(run):
    r = run({P0: [b"a", b"b", b"c"]})
    r.step()
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    r.member.lose()
    r.member.rebalance([P0])
    assert r.commit_now() == []
    r.ack(*_ids(2))
    assert r.commit_now() == [{P0: 3}]
