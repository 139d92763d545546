"""Kafka spout base: reads one topic and emits batches of its messages as plain tuple values.

Subclasses say which topic and consumer group (``source``), how many messages one tuple
carries (``messages_per_tuple``), how a message becomes a row (``decode``) and how rows
become one tuple's values (``tuple_values``); everything about delivery lives here, once.

Batches: what one poll returned for a partition, cut into runs of consecutive valid
messages of at most ``messages_per_tuple``; an invalid message is dead-lettered on its own
and ends the run before it. A tuple's id is ``topic/partition/first-last`` (its first and
last offsets), and delivery below is per tuple: a failure replays the whole batch.

Delivery (at least once): a partition's offset is committed only once it and every earlier
offset are finished: acked, or written to the dead-letter topic (``DeadLetterOutbox`` hands
an offset back only once Kafka has its dead letter; a letter that fails is resent with
backoff; one too large is truncated to fit; one Kafka refuses for good is logged once,
counted as ``dead_letters_abandoned`` and finished all the same, so it cannot stall the
partition). Messages that can never be used are dead-lettered at once with their original
bytes and the reason. What is emitted again:

- A failed tuple (failed downstream, or timed out after ``topology.message.timeout.secs``)
  is emitted again from memory after a growing backoff, and so is a tuple whose ack was
  lost (``InFlight.lost_acks``: still out ``kafka.lost_ack_replay_ms`` after a later tuple
  of its partition was acked). Its ``kafka.max_attempts``-th failure, if another tuple
  was acked since its previous failure, shows some of its messages at fault: a batch is
  cut in two halves (``bisected``), each emitted again at once, and a half that fails is
  cut again, until the message that fails alone is dead-lettered (``retries_exhausted``;
  its offset finishes as Kafka confirms the letter). So a message no bolt can take costs
  its batch a few replays, not its delivery; at worst (the halves fail alike, as when an
  outage begins) the batch's messages are all dead-lettered, as without halving.
  An outage downstream (Redis, the brokers a bolt writes to) fails every tuple alike: each
  is replayed at the longest backoff for as long as it lasts (logged once a minute), never
  dead-lettered for it; nothing is read from Kafka again.
- A rebalance: only partitions the consumer owns are committed. A revoked partition's
  tuples stay tracked until the new assignment is known. A partition handed straight back
  (kafka-python keeps its fetch position) goes on where it was: late acks and fails of its
  tuples count, nothing is read twice. A partition lost to an eviction (a stalled broker
  or spout missed the session timeout) is kept too, its replays and failures held, until
  the group assigns again: back here, and the group's commit not past what this member
  finished, it goes on where it was likewise; otherwise it is forgotten. A forgotten
  partition's late acks and fails are ignored. A partition new to this member is read from
  the group's committed offset (the reset policy's for a group without one; a spout commits
  where it began reading): its new owner re-emits its uncommitted window.
- A crash or a restart: every partition is read again from its last commit, re-emitting
  the uncommitted windows.
- The state downstream lost (a spout whose tuples build state elsewhere, Redis for the
  aggregation, says how to read its generation: ``state_check_interval_s``,
  ``state_generation``). Commits carry the generation they were made under, as their
  metadata. When the generation read every interval changes, the spout stops emitting,
  lets what is in flight finish (acked or failed, at most the message timeout), then
  forgets it and reads every owned partition again from ``rebuild_since_ms`` (by Kafka
  timestamp; never past its commit). A partition assigned with a commit made under another
  generation (the state was lost while no spout ran) is read again the same way. Messages
  read again below where the spout had read are not dead-lettered twice.

The uncommitted window is what was read since the last commits: at most
``kafka.max_in_flight`` + 500 (one poll) messages unfinished or behind an unfinished one
(fewer when they hold ``kafka.max_in_flight_bytes``),
plus those finished since the last commit (normally within ``kafka.commit_interval_ms``).

Every ``kafka.lag_interval_ms`` the spout sends each owned partition's lag (end offset minus
its last commit) and committed offset (``transport.consumer_lag``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from kafka import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import TopicPartition

from botscore.clock import now_ms
from botscore.errors import ConfigError, InvalidMessage
from botscore.metrics import Metrics, storm_tags
from botscore.multilang_pipe import Spout
from botscore.observability.log_repeats import RepeatBudget
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings, require_message_timeouts
from botscore.transport.consumer_lag import LagGauges
from botscore.transport.dead_letter_outbox import DeadLetterOutbox
from botscore.transport.delivery import Backoff, InFlight
from botscore.transport.kafka_clients import (
    commit_positions,
    create_consumer,
    create_producer,
    poll_group,
    wait_for_topic,
)
from botscore.transport.offsets import PartitionKey
from botscore.vocabulary import Component, DeadLetterReason, ReplayCause
from botscore.wire.dead_letters import DeadLetterRecord
from botscore.wire.records import SourceRef

# Longest a spout call waits on the group coordinator (a commit, committed offsets): a
# blocked spout misses Storm's heartbeats and is killed.
_COORDINATOR_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Read:
    """A message as read, kept until finished so it can be dead-lettered."""

    source: SourceRef
    value: bytes
    key: bytes

    @property
    def size(self) -> int:
        return len(self.value) + len(self.key)


@dataclass(frozen=True)
class _Batch:
    """An emitted tuple's values, and its messages as read and as decoded, kept for
    replays and to cut the batch in halves."""

    values: list[Any]
    reads: tuple[_Read, ...]
    rows: tuple[Any, ...]


@dataclass(frozen=True)
class _Rebalance:
    """Partitions the consumer's I/O thread reported revoked, assigned, or lost."""

    partitions: frozenset[PartitionKey]
    kind: Literal["revoked", "assigned", "lost"]


class KafkaSourceSpout(Spout):
    # Names the spout in metrics (botscore.<component>.in, ...), client ids and dead letters.
    component: ClassVar[Component]

    def source(self, settings: Settings) -> tuple[str, str]:
        """The topic to read and the consumer group to read it as."""
        raise NotImplementedError

    def messages_per_tuple(self, settings: Settings) -> int:
        """The most messages one tuple carries (each spout's batch size setting)."""
        raise NotImplementedError

    def decode(self, value: bytes | None, key: bytes | None, source: SourceRef) -> Any:
        """One message's row for ``tuple_values``, or ``InvalidMessage`` to dead-letter it."""
        raise NotImplementedError

    def tuple_values(self, rows: list[Any], sources: list[SourceRef]) -> list[Any]:
        """One tuple's values for consecutive messages of one partition, in offset order."""
        raise NotImplementedError

    def state_check_interval_s(self, settings: Settings) -> float:
        """How often to read the generation of the state the tuples build downstream; 0
        (the default) for a spout whose tuples build none that could be lost."""
        return 0.0

    def state_generation(self) -> str | None:
        """The generation of the state downstream; None when it cannot be read now."""
        raise NotImplementedError

    def rebuild_since_ms(self) -> int:
        """The Kafka timestamp from which a partition is read again to rebuild that state."""
        raise NotImplementedError

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        require_message_timeouts(storm_conf)
        settings = Settings.from_options(storm_conf, role=self.component.role)
        self.kafka = settings.kafka
        self.topic, self.group = self.source(settings)
        self.per_tuple = self.messages_per_tuple(settings)
        if self.per_tuple < 1:
            raise ConfigError(f"{self.component} needs at least 1 message per tuple")
        self.metrics = Metrics(
            settings.metrics, self.component, tags=storm_tags(storm_conf, context)
        )
        tag_logs(self.logger, self.metrics.tags)
        backoff = Backoff(
            self.kafka.replay_backoff_first_ms / 1000,
            self.kafka.replay_backoff_max_ms / 1000,
            self.kafka.max_attempts,
        )
        self.in_flight: InFlight[_Batch] = InFlight(
            backoff, self.kafka.lost_ack_replay_ms / 1000 or math.inf
        )
        # Appended by the consumer's I/O thread during a rebalance, applied here in order.
        self.rebalances: deque[_Rebalance] = deque()
        # Assigned, but not yet moved to the group's committed offset: not read meanwhile.
        self.unpositioned: set[PartitionKey] = set()
        # Revoked, tracked until the next assignment says whether they come back.
        self.revoked: set[PartitionKey] = set()
        # Lost to an eviction, likewise; their replays and failures wait meanwhile.
        self.lost: set[PartitionKey] = set()
        # Lost and assigned again: unpositioned until the group's commit says whether
        # someone else read on from there (then forgotten) or not (then read on from here).
        self.regained: set[PartitionKey] = set()
        self.deferred_fails: list[str] = []  # failures of tuples of lost partitions
        # Lines repeated per tuple: one a minute of each kind.
        self.repeats = RepeatBudget(clock=time.monotonic)
        self.state_check_s = self.state_check_interval_s(settings)
        self.generation: str | None = None  # of the state downstream, as last read
        self.next_state_check = 0.0
        # The generation that replaced ours, while what was in flight drains.
        self.lost_state: str | None = None
        self.drain_until = 0.0
        self.drain_s = float(storm_conf.get("topology.message.timeout.secs", 30)) + 5
        # Owned partitions to read again from rebuild_since_ms once positioned.
        self.rebuild: set[PartitionKey] = set()
        # Below these offsets messages were read before the state was lost (and dead-lettered
        # then if invalid).
        self.read_before: dict[PartitionKey, int] = {}
        self.last_commit = time.monotonic()
        self.active = True  # Storm calls next_tuple, where commits happen
        task = context.get("taskid", 0)
        self.producer = create_producer(
            self.kafka, client_id=f"botscore-{self.component}-dlq-{task}"
        )
        # A confirmed letter releases its message's reserved offset.
        self.dead_letters: DeadLetterOutbox[SourceRef] = DeadLetterOutbox(
            self.producer, self.kafka.dead_letter_topic, backoff, logger=self.logger
        )
        self.abandoned_reported = 0  # the outbox's abandoned count already sent as a metric
        # Kept by a task Storm restarts (same topology id and task), never shared by two
        # running topologies that read one group.
        topology = storm_conf.get("storm.id") or storm_conf.get("topology.name", "")
        self.consumer = create_consumer(
            self.kafka,
            client_id=f"botscore-{self.component}-{task}",
            group_id=self.group,
            # Where a new group starts is _read_from_commits' choice (the setting's); a
            # position outside the log (retention, a recreated topic) goes to the log's
            # start, so nothing still retained is skipped (_follow_the_log says what was).
            auto_offset_reset="earliest",
            instance=f"{self.group}-{topology}-{self.component}-{task}",
        )
        deadline = time.monotonic() + 30
        if not wait_for_topic(self.consumer, self.topic, lambda: time.monotonic() > deadline):
            self.logger.error("topic %s still unknown after 30 s; subscribing anyway", self.topic)
        self.consumer.subscribe([self.topic], listener=_ReportRebalances(self.rebalances))
        self.lag = LagGauges(
            self.consumer,
            self.metrics,
            self.kafka.lag_interval_ms / 1000,
            self.logger,
            clock=time.monotonic,
        )
        self.logger.info("reading %s as group %s", self.topic, self.group)

    def next_tuple(self) -> None:
        self._finish_dead_letters()
        self._apply_rebalances()
        if self._draining():
            return
        self._read_from_commits()
        now = time.monotonic()
        held = self.lost | self.regained
        for cause, replays in (
            (ReplayCause.FAILED, self.in_flight.due_replays(now, held)),
            (ReplayCause.LOST_ACK, self.in_flight.lost_acks(now, held)),
        ):
            for tup_id, batch in replays:
                self.metrics.count("replayed", tags=[f"cause:{cause}"])
                self.emit(batch.values, tup_id=tup_id)
        room = (
            len(self.in_flight) < self.kafka.max_in_flight
            and self.in_flight.held_bytes < self.kafka.max_in_flight_bytes
        )
        # A full spout still polls, with every partition paused: the group's rebalances
        # run inside poll(), and a member that stops polling holds up every other
        # member's rebalance for up to max.poll.interval.ms (5 min).
        self._pause_fetching(not room)
        polled = poll_group(self.consumer, timeout_ms=100 if room else 10)
        # Records of a partition revoked or assigned during poll() may come from a kept
        # fetch position: the partition is read again from its commit instead. A partition
        # assigned during a full poll() was not paused yet: its records are one poll more.
        stale = self._apply_rebalances() | self.unpositioned
        for tp, messages in polled.items():
            if (tp.topic, tp.partition) not in stale:
                self._read_partition(messages)
        if not polled and not self.consumer.assignment():
            # poll returns at once without partitions; do not spin a core meanwhile.
            time.sleep(0.1)
        self.commit_finished(force=False)
        self.lag.report(self._owned_commits)

    def _pause_fetching(self, full: bool) -> None:
        """Pause every assigned partition while in flight is full; resume them after."""
        if full:
            unpaused = self.consumer.assignment() - self.consumer.paused()
            if unpaused:
                self.consumer.pause(*unpaused)
        else:
            paused = self.consumer.paused()
            if paused:
                self.consumer.resume(*paused)

    def _draining(self) -> bool:
        """Read the state's generation when due; when it changed, True until what is in
        flight finished, then every owned partition is set to be read again."""
        now = time.monotonic()
        if self.state_check_s and self.lost_state is None and now >= self.next_state_check:
            self.next_state_check = now + self.state_check_s
            current = self.state_generation()
            if current is not None and self.generation not in (None, current):
                self.lost_state = current
                self.drain_until = now + self.drain_s
                self.logger.error(
                    "the state downstream was lost (generation %s, now %s): letting %d tuples "
                    "in flight finish, then reading every partition again from %d s back",
                    self.generation,
                    current,
                    self.in_flight.out(),
                    (now_ms() - self.rebuild_since_ms()) // 1000,
                )
                self.metrics.count("state_lost")
            elif current is not None:
                self.generation = current
        if self.lost_state is None:
            return False
        if self.in_flight.out() and now < self.drain_until:
            # Polled with every partition paused, for the group's rebalances: whatever a
            # partition assigned meanwhile returns is read again below.
            self._pause_fetching(True)
            poll_group(self.consumer, timeout_ms=10)
            self._apply_rebalances()
            self.lag.report(self._owned_commits)
            return True
        self._read_all_again()
        return False

    def _read_all_again(self) -> None:
        """Forget all that was read, and position every owned partition to be read again."""
        if self.in_flight.out():
            self.logger.warning(
                "%d tuples still in flight after %.0f s: forgotten",
                self.in_flight.out(),
                self.drain_s,
            )
        owned = _keys(self.consumer.assignment())
        for key in owned:
            expected = self.in_flight.offsets.expected(key)
            if expected is not None:
                self.read_before[key] = max(self.read_before.get(key, 0), expected)
        # Revoked and lost partitions are tracked until the next assignment: forgotten here.
        self._forget(self.in_flight.offsets.partitions())
        self.revoked, self.lost, self.regained = set(), set(), set()
        self.unpositioned |= owned
        self.rebuild |= owned
        self.generation, self.lost_state = self.lost_state, None

    def activate(self) -> None:
        self.active = True

    def deactivate(self) -> None:
        """Storm stops calling ``next_tuple`` (``sparse kill`` deactivates, waits, then kills):
        commit what finished now, and on each ack from here on, so that a topology submitted
        again re-reads only what was still unfinished."""
        self.active = False
        self.commit_finished(force=True)

    def ack(self, tup_id: str) -> None:
        self._apply_rebalances()
        self.in_flight.acked(tup_id)
        if not self.active:
            self.commit_finished(force=True)

    def fail(self, tup_id: str) -> None:
        self._apply_rebalances()  # a tuple of a revoked partition is its new owner's
        self._fail(tup_id)

    def _fail(self, tup_id: str) -> None:
        if self.in_flight.partition_of(tup_id) in self.lost | self.regained:
            # Replayed or dead-lettered only if the partition comes back to this member.
            self.deferred_fails.append(tup_id)
            return
        deferred = self.in_flight.last_attempts_deferred
        exhausted = self.in_flight.failed(tup_id, time.monotonic())
        if self.in_flight.last_attempts_deferred != deferred:
            self.metrics.count("last_attempts_deferred")
            if self.repeats.due("deferred") is not None:
                self.logger.warning(
                    "%d tuple failures at their last attempt with nothing acked in between so "
                    "far: an outage downstream, not their messages; each is replayed every "
                    "%.1f s until it ends, not dead-lettered",
                    self.in_flight.last_attempts_deferred,
                    self.in_flight.backoff.delay(max(self.kafka.max_attempts - 1, 1)),
                )
        if exhausted is None:
            return
        failures = self.in_flight.attempts(tup_id)
        if len(exhausted.reads) > 1:
            self._bisect(tup_id, exhausted, failures)
            return
        detail = f"failed downstream {failures} times"
        if self.in_flight.was_split(tup_id):
            detail += ", the last alone: the rest of its batch was tried without it"
        self.in_flight.retire(tup_id, [read.size for read in exhausted.reads])
        self._dead_letter(exhausted.reads[0], DeadLetterReason.RETRIES_EXHAUSTED, detail)

    def _bisect(self, tup_id: str, batch: _Batch, failures: int) -> None:
        """Emit exhausted ``batch`` again as two halves, to find the messages at fault."""
        half = len(batch.reads) // 2
        parts = [
            self._batch(list(batch.rows[:half]), batch.reads[:half]),
            self._batch(list(batch.rows[half:]), batch.reads[half:]),
        ]
        self.in_flight.split(
            tup_id,
            [
                (part_id, part, [read.source.offset for read in part.reads], _size(part.reads))
                for part_id, part in parts
            ],
        )
        self.metrics.count("bisected")
        held = self.repeats.due("bisected")
        if held is not None:
            self.logger.warning(
                "tuple %s failed downstream %d times while others were acked: emitting it "
                "again as %s and %s to find the messages at fault%s",
                tup_id,
                failures,
                parts[0][0],
                parts[1][0],
                self.repeats.held_note(held),
            )

    def _read_partition(self, messages: list[Any]) -> None:
        """Emit one partition's polled ``messages`` as batches; dead-letter the invalid."""
        self._follow_the_log(messages[0])
        rows: list[Any] = []
        reads: list[_Read] = []
        for message in messages:
            source = SourceRef(message.topic, message.partition, message.offset)
            read = _Read(source, message.value or b"", message.key or b"")
            try:
                row = self.decode(message.value, message.key, source)
            except InvalidMessage as exc:
                self._emit(rows, reads)  # offsets are tracked in order: the run before first
                rows, reads = [], []
                key = (source.topic, source.partition)
                self.in_flight.reserve(key, source.offset, read.size)
                if source.offset < self.read_before.get(key, 0):
                    # Read again to rebuild a lost state: dead-lettered the first time.
                    self.in_flight.release(key, source.offset)
                    continue
                self.logger.warning("skipping invalid message at %s: %s", source.tuple_id(), exc)
                self._dead_letter(read, exc.reason, exc.detail)
                continue
            rows.append(row)
            reads.append(read)
            if len(rows) == self.per_tuple:
                self._emit(rows, reads)
                rows, reads = [], []
        self._emit(rows, reads)

    def _emit(self, rows: list[Any], reads: list[_Read]) -> None:
        if not rows:
            return
        tup_id, batch = self._batch(rows, reads)
        first = reads[0].source
        self.metrics.count("in", len(rows))
        self.in_flight.emitted(
            tup_id,
            batch,
            (first.topic, first.partition),
            [read.source.offset for read in reads],
            _size(reads),
        )
        self.emit(batch.values, tup_id=tup_id)

    def _batch(self, rows: list[Any], reads: Sequence[_Read]) -> tuple[str, _Batch]:
        """The tuple of consecutive ``reads`` of one partition: its id and its batch."""
        sources = [read.source for read in reads]
        first, last = sources[0], sources[-1]
        tup_id = f"{first.topic}/{first.partition}/{first.offset}-{last.offset}"
        return tup_id, _Batch(self.tuple_values(rows, sources), tuple(reads), tuple(rows))

    def _follow_the_log(self, first: Any) -> None:
        """Say so when Kafka's position is not where the spout left the partition.

        Below it, the log moved back under the spout: the topic was recreated or truncated,
        or the group's commit lay past the log's end and the consumer went to its start.
        The partition starts over from there (old tuples in flight are forgotten, as on a
        revocation). Above it, offsets are missing: gaps the log itself has (compaction,
        transaction markers), unless the log now starts past them: deleted by retention
        before they were read, which no reader can get back.
        """
        key = (first.topic, first.partition)
        expected = self.in_flight.offsets.expected(key)
        if expected is None or first.offset == expected:
            return
        where = f"{first.topic}/{first.partition}"
        if first.offset < expected:
            self.logger.error(
                "%s: Kafka returned offset %d where %d was next: the log moved back (topic "
                "recreated or truncated, or the group's commit was past its end); reading on "
                "from %d",
                where,
                first.offset,
                expected,
                first.offset,
            )
            self.metrics.count("position_reset")
            self.in_flight.forget_partitions({key})
            self.in_flight.offsets.assigned(key, None)
            return
        tp = TopicPartition(first.topic, first.partition)
        try:
            log_start = self.consumer.beginning_offsets(
                [tp], timeout_ms=int(_COORDINATOR_TIMEOUT_S * 1000)
            )[tp]
        except KafkaError as exc:
            self.logger.warning(
                "%s: offsets %d-%d not read, the log's start unknown: %s",
                where,
                expected,
                first.offset - 1,
                exc,
            )
            return
        if log_start > expected:
            self.logger.error(
                "%s: offsets %d-%d were deleted (retention) before they were read",
                where,
                expected,
                log_start - 1,
            )
            self.metrics.count("offsets_deleted", log_start - expected)

    def _dead_letter(self, read: _Read, reason: str, detail: str) -> None:
        """Set ``read`` aside; its reserved offset is released once Kafka has the letter."""
        letter = DeadLetterRecord(
            read.value, read.key, reason, detail, self.component, read.source, now_ms()
        )
        self.metrics.count("dead_lettered", tags=[f"reason:{reason}"])
        self.dead_letters.add(letter, read.source)

    def _apply_rebalances(self) -> set[PartitionKey]:
        """Apply the revocations, assignments and losses reported since the last call.

        Returns the partitions forgotten or new: records polled for them meanwhile are not
        read, since they are read again from the group's commit. A new partition waits in
        ``unpositioned`` until ``_read_from_commits`` moves it to that commit.
        """
        forgotten: set[PartitionKey] = set()
        while self.rebalances:
            rebalance = self.rebalances.popleft()
            partitions = set(rebalance.partitions)
            if rebalance.kind == "revoked":
                again = partitions & self.regained  # not checked yet: still as if lost
                self.lost |= again
                self.regained -= again
                # One never moved to its commit has nothing to keep: assigned back, it is
                # new again (an eager rebalance revokes and reassigns at once, often
                # before the spout's first call).
                never_read = (partitions & self.unpositioned) - again
                self.revoked |= partitions - again - never_read
                self.unpositioned -= partitions
                self.logger.info("partitions revoked: %s", _numbers(partitions))
                continue
            if rebalance.kind == "lost":
                self.lost |= partitions | self.revoked
                self.revoked = set()
                self.unpositioned -= partitions
                self.regained -= partitions
                forgotten |= partitions  # a record polled meanwhile is stale
                self.logger.warning("partitions lost: %s", _numbers(partitions))
                continue
            kept = self.revoked | self.lost
            gone = kept - partitions
            new = partitions - kept
            back = self.lost & partitions
            self.revoked, self.lost = set(), set()
            self.unpositioned |= new | back
            self.regained |= back
            gone |= new  # nothing is tracked for them; a stale record may be
            if partitions:
                self.logger.info("partitions assigned: %s", _numbers(partitions))
            else:
                self.logger.warning(
                    "no partitions assigned (topic missing, or more spouts than partitions)"
                )
            self._forget(gone)
            forgotten |= gone
        return forgotten

    def _forget(self, partitions: set[PartitionKey]) -> None:
        """Drop all that was read from ``partitions``, their deferred failures included."""
        if not partitions:
            return
        self.deferred_fails = [
            tup_id
            for tup_id in self.deferred_fails
            if self.in_flight.partition_of(tup_id) not in partitions
        ]
        self.in_flight.forget_partitions(partitions)

    def _read_from_commits(self) -> None:
        """Move each partition assigned since the last call to the group's committed offset.

        kafka-python keeps the fetch position of a partition an eager rebalance revokes and
        hands back; reading on from there would skip what was forgotten on the revocation.
        A partition still unpositioned after a timeout is tried again on the next call.
        """
        if not self.unpositioned:
            return
        if self.state_check_s and self.generation is None:
            return  # a commit's generation cannot be told lost or not until one is read
        owned = self.consumer.assignment()
        deadline = time.monotonic() + _COORDINATOR_TIMEOUT_S
        lost_meanwhile = False  # a commit of another generation: lost while no spout read
        for key in sorted(self.unpositioned):
            tp = TopicPartition(*key)
            if tp not in owned:
                continue  # revoked again meanwhile: its revocation is queued
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return
            try:
                found = self.consumer.committed(tp, metadata=True, timeout_ms=left_ms)
                committed = None if found is None else found.offset
                if key in self.regained and self._read_on(tp, committed):
                    continue
                was_read = key in self.rebuild
                again = self._rebuild_from(tp, found, left_ms)
                if again is not None:
                    self.consumer.seek(tp, again)
                elif committed is not None:
                    self.consumer.seek(tp, committed)
                elif self.kafka.auto_offset_reset == "earliest":
                    self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek_to_end(tp)
            except ValueError:
                continue  # revoked between the check and the seek: its revocation is queued
            except KafkaError as exc:
                self.logger.warning("where to read %s is unknown, will retry: %s", tp, exc)
                return
            self.unpositioned.discard(key)
            self.rebuild.discard(key)
            if again is not None:
                if not was_read and not lost_meanwhile:
                    lost_meanwhile = True
                    self.metrics.count("state_lost")
                self.in_flight.offsets.assigned(key, again)
                # Committed at once under the new generation: a restart goes on from here.
                self.in_flight.offsets.regained(key, None)
                self.logger.warning(
                    "partition %d: reading again from offset %d (committed: %s) to rebuild the "
                    "state, %s",
                    tp.partition,
                    again,
                    committed,
                    "lost while this spout read it"
                    if was_read
                    else f"lost since the commit (made under generation {found.metadata}, the "
                    f"state's is {self.generation})",
                )
                continue
            self.in_flight.offsets.assigned(key, committed)
            self.logger.info(
                "partition %d assigned, reading from %s",
                tp.partition,
                committed if committed is not None else self.kafka.auto_offset_reset,
            )

    def _rebuild_from(self, tp: TopicPartition, found: Any, timeout_ms: int) -> int | None:
        """Where to read ``tp`` again to rebuild a lost state, None to read on from its
        commit ``found`` (an ``OffsetAndMetadata``, None when the group has none).

        Read again: a partition owned when the state was lost, or one committed under another
        generation than the state's (a commit without one predates generations).
        """
        key = (tp.topic, tp.partition)
        if not self.state_check_s:
            return None
        if key not in self.rebuild and (found is None or found.metadata in ("", self.generation)):
            return None
        hit = self.consumer.offsets_for_times({tp: self.rebuild_since_ms()}, timeout_ms=timeout_ms)
        if hit.get(tp) is not None:
            start = int(hit[tp].offset)
        else:  # nothing that recent
            start = int(self.consumer.end_offsets([tp], timeout_ms=timeout_ms)[tp])
        if found is not None:
            start = min(start, found.offset)
            self.read_before[key] = max(self.read_before.get(key, 0), found.offset)
        return start

    def _read_on(self, tp: TopicPartition, committed: int | None) -> bool:
        """Go on where this member was in a partition lost to an eviction and assigned back,
        unless the group's commit is past what this member finished (another member read
        on meanwhile: then forgotten, and False). Nothing it finished or has in flight is
        read again: its acks count, and its deferred failures are replayed now."""
        key = (tp.topic, tp.partition)
        finished = self.in_flight.offsets.finished_before(key)
        resume = self.in_flight.offsets.expected(key)
        if finished is None or resume is None or (committed is not None and committed > finished):
            self.regained.discard(key)
            self._forget({key})
            return False
        self.consumer.seek(tp, resume)  # ValueError if revoked meanwhile: it stays lost
        self.regained.discard(key)
        self.in_flight.offsets.regained(key, committed)
        self.unpositioned.discard(key)
        fails = [t for t in self.deferred_fails if self.in_flight.partition_of(t) == key]
        self.deferred_fails = [t for t in self.deferred_fails if t not in fails]
        for tup_id in fails:
            self._fail(tup_id)
        self.logger.info(
            "partition %d back after an eviction, reading on from %d "
            "(finished below %d; the group's commit: %s)",
            tp.partition,
            resume,
            finished,
            committed,
        )
        return True

    def _owned_commits(self) -> dict[PartitionKey, int]:
        """The last commit of each partition the consumer owns (none before the first)."""
        owned = _keys(self.consumer.assignment())
        return {
            key: position
            for key, position in self.in_flight.offsets.last_commits().items()
            if key in owned
        }

    def _finish_dead_letters(self) -> None:
        for source in self.dead_letters.confirmed():
            self.in_flight.release((source.topic, source.partition), source.offset)
        abandoned = self.dead_letters.abandoned - self.abandoned_reported
        if abandoned:
            self.metrics.count("dead_letters_abandoned", abandoned)
            self.abandoned_reported += abandoned

    def commit_finished(self, force: bool) -> None:
        """Commit offsets below which everything is finished, at most every interval.

        Only partitions the consumer owns once the reported rebalances are applied: a
        revoked partition's position would overwrite its new owner's commits.
        """
        now = time.monotonic()
        if not force and now - self.last_commit < self.kafka.commit_interval_ms / 1000:
            return
        self.last_commit = now
        self._apply_rebalances()
        # Not an unpositioned one: a partition back after an eviction is committed only
        # once the group's commit is known not to be past this member's.
        owned = _keys(self.consumer.assignment()) - self.unpositioned
        positions = {
            key: position
            for key, position in self.in_flight.offsets.pending_commits().items()
            if key in owned
        }
        if not positions:
            return
        try:
            self.consumer.commit(
                commit_positions(positions, self.generation or ""),
                timeout_ms=int(_COORDINATOR_TIMEOUT_S * 1000),
            )
        except (CommitFailedError, KafkaError) as exc:
            # Not fatal: the same positions are retried next interval, unless a rebalance
            # takes the partitions away first.
            self.logger.warning("offset commit failed, will retry: %s", exc)
            return
        self.in_flight.offsets.committed(positions)


def _size(reads: Iterable[_Read]) -> int:
    return sum(read.size for read in reads)


def _keys(partitions: Iterable[TopicPartition]) -> frozenset[PartitionKey]:
    return frozenset((tp.topic, tp.partition) for tp in partitions)


def _numbers(partitions: Iterable[PartitionKey]) -> list[int]:
    return sorted(p for _, p in partitions)


# kafka-python ships no types: its listener class is Any to mypy.
class _ReportRebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Queue each revocation and assignment for the spout's thread, which applies them.

    kafka-python 3 calls this on its I/O thread, where a blocking call (a commit, a
    committed offset) raises and the spout's state must not be touched.
    """

    def __init__(self, rebalances: deque[_Rebalance]) -> None:
        self.rebalances = rebalances

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        if revoked:  # the first join "revokes" nothing
            self.rebalances.append(_Rebalance(_keys(revoked), "revoked"))

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self.rebalances.append(_Rebalance(_keys(assigned), "assigned"))

    def on_partitions_lost(self, lost: Collection[TopicPartition]) -> None:
        # Another member may have read and committed them meanwhile: nothing is kept.
        self.rebalances.append(_Rebalance(_keys(lost), "lost"))
