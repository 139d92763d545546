"""The Kafka spout base when the state its tuples build downstream is lost.

A spout that names the state's generation commits under it; when the generation changes it
lets what is in flight finish, then reads its partitions again from the rebuild time, and
a partition committed under another generation is read again likewise. Same fakes as
``test_kafka_source.py``: ``FakeGroupMember`` with records stamped ``STAMP_MS`` apart.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kafka import TopicPartition

from botscore.vocabulary import Component
from spouts import kafka_source
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.spouts.test_kafka_source import (
    BACKOFF_S,
    INTERVAL_S,
    P0,
    P1,
    TOPIC,
    _Clock,
    _ids,
    _LinesSpout,
    _record_metrics,
    _Run,
)
from tests.unit.storm_fakes import start
from tests.unit.transport.kafka_fakes import FakeGroupMember, FakeProducer, record

CHECK_S = 1.0
STAMP_MS = 1000  # Kafka timestamps: offset n was written at n * STAMP_MS
TIMEOUT_S = 30  # the topology's message timeout: the drain's limit is 5 s more


class _State:
    """The downstream state's generation as the spout reads it (None: unreachable)."""

    def __init__(self) -> None:
        self.generation: str | None = "g1"
        self.since_ms = 0
        self.reads = 0


class _StatefulLines(_LinesSpout):
    component = Component.WEB_LOGS_SPOUT
    state: _State

    def state_check_interval_s(self, settings):
        return CHECK_S

    def state_generation(self):
        self.state.reads += 1
        return self.state.generation

    def rebuild_since_ms(self):
        return self.state.since_ms


@pytest.fixture
def run(monkeypatch):
    """A spout whose state is ``_State``, on ``logs``, in a group that committed
    ``committed`` under ``metadata``."""

    def _start(
        logs: dict[TopicPartition, list[bytes]],
        *,
        committed: dict[TopicPartition, int] | None = None,
        metadata: str = "",
        state: _State | None = None,
    ) -> tuple[_Run, _State]:
        clock = _Clock()
        monkeypatch.setattr(kafka_source, "time", clock)
        member = FakeGroupMember(
            {}, committed={tp: 0 for tp in logs} if committed is None else committed
        )
        member.max_per_poll = 10
        member.logs = {
            tp: [
                record(tp.topic, tp.partition, o, v, timestamp=o * STAMP_MS)
                for o, v in enumerate(values)
            ]
            for tp, values in logs.items()
        }
        member.commit_metadata = dict.fromkeys(member.group_committed, metadata)
        producer = FakeProducer()
        monkeypatch.setattr(kafka_source, "create_consumer", lambda *a, **k: member)
        monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: producer)
        state = state or _State()
        spout_class = type("_Stateful", (_StatefulLines,), {"state": state})
        options = {
            "botscore.kafka.replay_backoff_first_ms": int(BACKOFF_S * 1000),
            "botscore.kafka.replay_backoff_max_ms": int(BACKOFF_S * 1000),
            "botscore.kafka.commit_interval_ms": int(INTERVAL_S * 1000),
            "topology.message.timeout.secs": TIMEOUT_S,
        }
        spout, link = start(spout_class, options, monkeypatch)
        member.rebalance(list(logs))
        return _Run(spout, link, member, producer, clock), state

    return _start


def _tup_ids(emits: list[tuple[str, list[Any]]]) -> list[str]:
    return [tup_id for tup_id, _ in emits]


def _lose_state(r: _Run, state: _State, since_ms: int) -> None:
    """Redis lost the state: the next check, one interval on, reads a new generation."""
    state.generation = "g2"
    state.since_ms = since_ms
    r.clock.now += CHECK_S


def test_commits_carry_the_generation_they_were_made_under(run):
    r, _ = run({P0: [b"a", b"b"]})
    r.ack(*_tup_ids(r.step()))
    assert r.commit_now() == [{P0: 2}]
    assert r.member.commit_metadata == {P0: "g1"}


def test_a_lost_state_stops_emitting_until_what_is_in_flight_finished_then_reads_again(
    run, monkeypatch, caplog
):
    created = _record_metrics(monkeypatch)
    r, state = run({P0: [b"a", b"b", b"c", b"d", b"e"]})
    assert _tup_ids(r.step()) == _ids(0, 1, 2, 3, 4)
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    _lose_state(r, state, since_ms=1 * STAMP_MS)
    r.member.logs[P0].append(record(TOPIC, 0, 5, b"f", timestamp=5 * STAMP_MS))
    assert r.step(3) == []  # 2, 3 and 4 still out: nothing new, no replay
    with caplog.at_level(logging.ERROR):
        r.fail(*_ids(2))
        r.ack(*_ids(3))
        r.clock.now += BACKOFF_S
        assert r.step() == []  # 2's replay is not emitted: it is read again below
        r.ack(*_ids(4))
        # Offset 1 is the first written at or after 1 s: read again from there, with that
        # replay floor, and the new position committed at once under the new generation.
        assert r.step() == [(i, [v, 1]) for i, v in zip(_ids(1, 2, 3, 4, 5), "bcdef", strict=True)]
    assert r.member.commits[-1] == {P0: 1}
    assert r.member.commit_metadata == {P0: "g2"}
    assert created[0].counted("state_lost") == 1
    assert "the state downstream was lost (generation g1, now g2)" in caplog.text
    r.ack(*_ids(1, 2, 3, 4, 5))
    assert r.commit_now() == [{P0: 6}]
    r.check_commits()


def test_a_tuple_that_never_finishes_is_forgotten_after_the_message_timeout(run, caplog):
    r, state = run({P0: [b"a", b"b"]})
    r.step()
    r.ack(*_ids(1))
    _lose_state(r, state, since_ms=0)
    assert r.step() == []
    r.clock.now += TIMEOUT_S + 5 - 2**-10
    assert r.step() == []
    r.clock.now += 2**-10
    with caplog.at_level(logging.WARNING):
        assert _tup_ids(r.step()) == _ids(0, 1)
    assert "1 tuples still in flight after 35 s: forgotten" in caplog.text
    r.ack(*_ids(0))  # the first emission's late ack finishes the new one: the same offset
    assert r.commit_now() == [{P0: 1}]


def test_a_commit_made_under_another_generation_is_read_again_from_the_rebuild_time(
    run, monkeypatch
):
    """The state was lost while no spout ran: the commits at 4 and 1 name generation g0."""
    created = _record_metrics(monkeypatch)
    state = _State()
    state.since_ms = 2 * STAMP_MS
    r, _ = run(
        {P0: [b"a", b"b", b"c", b"d", b"e"], P1: [b"x", b"y", b"z"]},
        committed={P0: 4, P1: 1},
        metadata="g0",
        state=state,
    )
    assert sorted(_tup_ids(r.step())) == sorted(_ids(2, 3, 4) + _ids(1, 2, partition=1))
    assert r.commit_now() == [{P0: 2, P1: 1}]
    assert r.member.commit_metadata == {P0: "g1", P1: "g1"}
    assert created[0].counted("state_lost") == 1  # one loss, however many partitions


@pytest.mark.parametrize("metadata", ["g1", ""])
def test_a_commit_of_the_same_generation_or_of_none_is_read_on_from(run, metadata):
    r, _ = run({P0: [b"a", b"b", b"c"]}, committed={P0: 2}, metadata=metadata)
    assert _tup_ids(r.step()) == _ids(2)


def test_the_rebuild_never_starts_past_the_commit_nor_skips_what_has_no_timestamp_that_recent(
    run,
):
    """P0's commit (1) is before the rebuild time's offset (3); P1 has nothing that recent."""
    state = _State()
    state.since_ms = 3 * STAMP_MS
    r, _ = run(
        {P0: [b"a", b"b", b"c", b"d"], P1: [b"x", b"y"]},
        committed={P0: 1, P1: 1},
        metadata="g0",
        state=state,
    )
    assert sorted(_tup_ids(r.step())) == sorted(_ids(1, 2, 3) + _ids(1, partition=1))


def test_partitions_wait_while_the_states_generation_cannot_be_read_asked_once_a_second(run):
    state = _State()
    state.generation = None
    r, _ = run({P0: [b"a"]}, state=state)
    assert r.step(50) == []
    assert state.reads == 1
    state.generation = "g1"
    r.clock.now += CHECK_S
    assert _tup_ids(r.step()) == _ids(0)
    assert state.reads == 2


def test_an_unreadable_generation_later_is_not_a_loss(run):
    r, state = run({P0: [b"a", b"b"]})
    r.step()
    state.generation = None
    r.clock.now += CHECK_S
    r.ack(*_ids(0, 1))
    assert r.commit_now() == [{P0: 2}]
    state.generation = "g1"
    r.clock.now += CHECK_S
    r.member.logs[P0].append(record(TOPIC, 0, 2, b"c", timestamp=2 * STAMP_MS))
    assert _tup_ids(r.step()) == _ids(2)


def test_invalid_messages_read_again_are_not_dead_lettered_twice(run):
    r, state = run({P0: [b"a", b"bad", b"c"]})
    assert _tup_ids(r.step()) == _ids(0, 2)
    assert [letter.source.offset for letter in r.confirm_letters()] == [1]
    r.ack(*_ids(0, 2))
    _lose_state(r, state, since_ms=0)
    r.member.logs[P0].append(record(TOPIC, 0, 3, b"bad", timestamp=3 * STAMP_MS))
    assert _tup_ids(r.step()) == _ids(0, 2)
    # Offset 3 is new: its letter is the only one sent since.
    assert [letter.source.offset for letter in r.confirm_letters()] == [1, 3]
    r.ack(*_ids(0, 2))
    assert r.commit_now() == [{P0: 4}]
    r.check_commits()


def test_a_spout_without_a_state_commits_without_metadata_and_never_reads_again(monkeypatch):
    member = FakeGroupMember({P0: [b"a"]}, committed={P0: 0})
    member.commit_metadata = {P0: "g0"}
    monkeypatch.setattr(kafka_source, "create_consumer", lambda *a, **k: member)
    monkeypatch.setattr(kafka_source, "create_producer", lambda *a, **k: FakeProducer())
    spout, link = start(_LinesSpout, {}, monkeypatch)
    member.rebalance([P0])
    spout.next_tuple()
    (emit,) = link.emitted()
    spout.ack(emit["id"])
    spout.commit_finished(force=True)
    assert member.commits == [{P0: 1}]
    assert member.commit_metadata == {P0: ""}


def test_recording_metrics_refuse_state_lost_for_a_spout_of_features():
    """Only the web-logs spout builds a state that can be lost."""
    with pytest.raises(Exception, match="state_lost"):
        RecordingMetrics(Component.FEATURES_SPOUT).count("state_lost")


def test_the_rebuild_points_are_asked_within_what_is_left_of_the_calls_2_s(run):
    """A spout blocked on the broker misses Storm's heartbeats: offsets by time, and the
    end offsets when nothing is that recent, wait at most what is left of the call's 2 s."""
    state = _State()
    state.since_ms = 10 * STAMP_MS  # nothing that recent: the end offsets are asked too
    r, _ = run({P0: [b"a"]}, committed={P0: 0}, metadata="g0", state=state)
    asked = []
    by_time, ends = r.member.offsets_for_times, r.member.end_offsets

    def timed_by_time(timestamps, timeout_ms=None):
        asked.append(("by time", timeout_ms))
        return by_time(timestamps, timeout_ms)

    def timed_ends(partitions, timeout_ms=None):
        asked.append(("ends", timeout_ms))
        return ends(partitions, timeout_ms)

    r.member.offsets_for_times, r.member.end_offsets = timed_by_time, timed_ends
    assert _tup_ids(r.step()) == _ids(0)  # never past the commit
    assert [what for what, _ in asked] == ["by time", "ends"]
    assert all(timeout_ms is not None and 0 < timeout_ms <= 2000 for _, timeout_ms in asked)


def test_partitions_owned_at_a_loss_are_read_again_whatever_their_commits_say(run):
    """Commits made before generations existed carry none: the partition is read again all
    the same when the loss happens under this spout."""
    r, state = run({P0: [b"a", b"b"]}, committed={P0: 0}, metadata="")
    r.ack(*_tup_ids(r.step()))
    r.clock.now += INTERVAL_S
    r.step()
    r.member.commit_metadata[P0] = ""  # as an older version committed
    _lose_state(r, state, since_ms=0)
    assert _tup_ids(r.step()) == _ids(0, 1)


def test_an_invalid_first_message_not_read_before_the_loss_is_dead_lettered(run):
    state = _State()
    r, _ = run({P0: [b"bad", b"b"]}, committed={P0: 0}, metadata="g0", state=state)
    assert _tup_ids(r.step()) == _ids(1)
    assert [letter.source.offset for letter in r.confirm_letters()] == [0]


def test_a_second_loss_keeps_what_was_read_before_the_first(run):
    """An invalid message read before the first loss is not dead-lettered again when a
    second loss comes before the spout read that far again."""
    r, state = run({P0: [b"a", b"bad", b"c"]})
    assert _tup_ids(r.step()) == _ids(0, 2)
    r.confirm_letters()
    r.ack(*_ids(0, 2))
    _lose_state(r, state, since_ms=0)
    r.member.max_per_poll = 1
    assert _tup_ids(r.step()) == _ids(0)  # read again: only offset 0 so far
    r.ack(*_ids(0))
    state.generation = "g3"
    r.clock.now += CHECK_S
    r.member.max_per_poll = 10
    assert _tup_ids(r.step()) == _ids(0, 2)
    assert [letter.source.offset for letter in r.confirm_letters()] == [1]  # the first only


def test_an_invalid_message_arriving_after_a_loss_on_an_unread_partition_is_dead_lettered(run):
    r, state = run({P0: []})
    assert r.step() == []  # positioned at 0, nothing read
    _lose_state(r, state, since_ms=0)
    assert r.step() == []
    for offset, value in enumerate([b"bad", b"b"]):
        r.member.logs[P0].append(record(TOPIC, 0, offset, value, timestamp=offset * STAMP_MS))
    assert _tup_ids(r.step()) == _ids(1)
    assert [letter.source.offset for letter in r.confirm_letters()] == [0]
