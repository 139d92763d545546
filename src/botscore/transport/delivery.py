"""At-least-once bookkeeping for the Kafka spout, free of Storm and Kafka.

Every emitted tuple (one or more messages of one partition) stays here until it is acked
or deliberately set aside (dead lettered). A failed tuple is replayed after an exponential
backoff; after ``max_attempts`` it is handed back as exhausted so the caller dead-letters
its messages instead of retrying forever, unless every tuple fails alike (an outage, not
its messages: see ``InFlight.failed``). The caller may instead ``split`` an exhausted batch
into parts, each replayed at once and exhausted by its first failure: halving the one that
fails finds the messages at fault, and the rest of the batch is delivered. Offsets become
committable only through ``OffsetTracker``, i.e. once everything before them is finished.

A tuple whose ack was lost is replayed too, long before Storm would time it out. Storm
drops what one worker sends to another that died and came back until it reconnects, acks
included; such a tuple neither acks nor fails until ``topology.message.timeout.secs`` (60-120
s), and one at a partition's head holds its commit and soon the spout's whole window. Tuples
of a partition take one path and finish in about the order they were emitted, so one still
out ``lost_ack_after_s`` after a later tuple of its partition was acked is presumed lost.

``SendRetries`` is the producer side's: how long a writer that resends what Kafka did not
confirm waits before each attempt, and the lines it logs, the same for every such writer.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from botscore.errors import ConfigError
from botscore.transport.offsets import OffsetTracker, PartitionKey

__all__ = ["FLUSH_MARGIN_S", "Backoff", "InFlight", "SendRetries"]

T = TypeVar("T")

# How much longer than the producer's delivery timeout a flush waits for its sends: by then
# Kafka has confirmed or expired every one of them.
FLUSH_MARGIN_S = 10.0


@dataclass(frozen=True)
class Backoff:
    """Waits of ``first_s``, doubled per attempt up to ``max_s``, for any attempt count."""

    first_s: float = 0.2
    max_s: float = 30.0
    max_attempts: int = 20

    def __post_init__(self) -> None:
        for name, value in (("first_s", self.first_s), ("max_s", self.max_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"backoff {name} must be finite and not negative, got {value}")

    def delay(self, attempt: int) -> float:
        """Wait before the ``attempt``-th replay (1-based); never raises."""
        if self.first_s == 0.0:
            return 0.0
        exponent = attempt - 1
        # A float power of two overflows at 2**1024 (about 1,000 attempts), so the exponent
        # is checked before any arithmetic. With both times as m * 2**e (0.5 <= m < 1),
        # first_s doubled e_max - e_first + 1 times is at least 2**e_max > max_s: from
        # there on the answer is max_s, and below it the product stays a finite float.
        if exponent >= math.frexp(self.max_s)[1] - math.frexp(self.first_s)[1] + 1:
            return self.max_s
        # ldexp multiplies by 2**exponent exactly.
        return min(self.max_s, math.ldexp(self.first_s, exponent))


class SendRetries:
    """Consecutive sends Kafka did not confirm, the wait before sending again, and the log
    lines: one per failed attempt, one when Kafka confirms again, so an outage shows in the
    log as it starts and as it ends."""

    def __init__(self, log: logging.Logger, backoff: Backoff | None = None) -> None:
        self.log = log
        self.backoff = backoff or Backoff(first_s=0.5, max_s=10.0)
        self.failures = 0

    def failed(self, what: str, error: BaseException, note: str = "") -> float:
        """Kafka did not confirm ``what``: log it, and return the wait before sending again."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        self.log.warning(
            "Kafka did not confirm %s (%s): sending it again in %.1f s%s", what, error, delay, note
        )
        return delay

    def confirmed(self) -> None:
        """Kafka confirmed what had failed: say so once, and start the backoff over."""
        if self.failures:
            self.log.info("Kafka confirms sends again")
            self.failures = 0


@dataclass
class _Entry(Generic[T]):
    item: T
    partition: PartitionKey
    offsets: tuple[int, ...]
    size: int
    attempts: int = 0
    # Order of its latest emission; None while it waits for a replay after a failure.
    emission: int | None = None
    # When a tuple emitted after it was first seen acked, since its latest emission.
    overtaken_at: float | None = None
    # ``InFlight.acks`` at its emission, then at its latest failure.
    acks_seen: int = 0
    # Failures of the batches it was split from: a part (more than 0) is exhausted by its
    # first failure of its own.
    earlier_failures: int = 0


class InFlight(Generic[T]):
    """Emitted tuples by id, their replays, and the commit positions they allow.

    A tuple covers one or more offsets of one partition; its ack finishes them all. Acks,
    fails and retirements of an unknown id (already acked, or of a forgotten partition) are
    ignored. ``held_bytes`` sums the sizes given to ``emitted`` and ``reserve`` of what is
    still held, so a reader can bound its memory in bytes; ``len`` counts messages.
    """

    def __init__(self, backoff: Backoff, lost_ack_after_s: float = math.inf) -> None:
        if not lost_ack_after_s > 0:
            raise ConfigError(f"lost_ack_after_s must be positive, got {lost_ack_after_s}")
        self.backoff = backoff
        self.lost_ack_after_s = lost_ack_after_s
        self.offsets = OffsetTracker()
        self._entries: dict[str, _Entry[T]] = {}
        # Per partition, the ids of the tuples out (emitted, not failed since), in the order
        # of their latest emission, and the latest emission of any that was acked.
        self._out: dict[PartitionKey, dict[str, None]] = {}
        self._acked_emission: dict[PartitionKey, int] = {}
        self._emissions = 0
        # Heap of (due time, order of scheduling, tuple id): replays due together go out in
        # the order they were scheduled, as a split batch's parts in offset order.
        self._replays: list[tuple[float, int, str]] = []
        self._scheduled = 0
        self._reserved: dict[tuple[PartitionKey, int], int] = {}  # sizes of reserved offsets
        self.held_bytes = 0
        self.acks = 0  # tuples acked so far
        # Failures at a tuple's last attempt that did not exhaust it (see ``failed``).
        self.last_attempts_deferred = 0

    def __len__(self) -> int:
        return self.offsets.in_flight()

    def emitted(
        self,
        tup_id: str,
        item: T,
        partition: PartitionKey,
        offsets: Sequence[int],
        size: int = 0,
    ) -> None:
        """``item`` was emitted as ``tup_id``, carrying ``offsets`` (ascending) of ``partition``."""
        for offset in offsets:
            self.offsets.emitted(partition, offset)
        entry = _Entry(item, partition, tuple(offsets), size, acks_seen=self.acks)
        self._entries[tup_id] = entry
        self._sent(tup_id, entry)
        self.held_bytes += size

    def _sent(self, tup_id: str, entry: _Entry[T]) -> None:
        """``entry`` was (re-)emitted: it is out, the latest of its partition."""
        self._emissions += 1
        entry.emission = self._emissions
        entry.overtaken_at = None
        out = self._out.setdefault(entry.partition, {})
        out.pop(tup_id, None)
        out[tup_id] = None

    def _not_out(self, tup_id: str, entry: _Entry[T]) -> None:
        entry.emission = None
        self._out.get(entry.partition, {}).pop(tup_id, None)

    def reserve(self, partition: PartitionKey, offset: int, size: int = 0) -> None:
        """A message read but not emitted (it is being dead-lettered): hold its offset."""
        self.offsets.emitted(partition, offset)
        self._reserved[partition, offset] = size
        self.held_bytes += size

    def release(self, partition: PartitionKey, offset: int) -> None:
        """The reserved message is safely elsewhere: its offset may be committed."""
        self.held_bytes -= self._reserved.pop((partition, offset), 0)
        self.offsets.done(partition, offset)

    def acked(self, tup_id: str) -> None:
        entry = self._entries.pop(tup_id, None)
        if entry is not None:
            self.acks += 1
            if entry.emission is not None:
                latest = self._acked_emission.get(entry.partition, 0)
                self._acked_emission[entry.partition] = max(latest, entry.emission)
            self._not_out(tup_id, entry)
            self.held_bytes -= entry.size
            for offset in entry.offsets:
                self.offsets.done(entry.partition, offset)

    def failed(self, tup_id: str, now: float) -> T | None:
        """Schedule a replay; return the item instead when its attempts are used up.

        A last attempt counts only if some tuple was acked since this one's previous
        failure: while every tuple fails alike (Redis or the brokers downstream are away),
        the fault is not this tuple's messages', and it waits at its last attempt, replayed
        at the longest backoff, for as long as that lasts (``last_attempts_deferred``).
        """
        entry = self._entries.get(tup_id)
        if entry is None:
            return None
        self._not_out(tup_id, entry)
        others_acked, entry.acks_seen = self.acks != entry.acks_seen, self.acks
        entry.attempts += 1
        if entry.earlier_failures:
            return entry.item  # its batch was already shown to fail for its own messages
        if entry.attempts >= self.backoff.max_attempts:
            if others_acked:
                return entry.item
            entry.attempts = self.backoff.max_attempts - 1
            self.last_attempts_deferred += 1
        delay = self.backoff.delay(max(entry.attempts, 1))
        self._schedule(now + delay, tup_id)
        return None

    def split(self, tup_id: str, parts: Sequence[tuple[str, T, Sequence[int], int]]) -> None:
        """Replace exhausted ``tup_id`` by ``parts`` (id, item, offsets, size), in order,
        which together carry exactly its offsets. Each part is due for a replay now, and
        its first failure exhausts it: the batch's failures (while others were acked)
        already showed some of its messages at fault, so a part never waits out an outage
        the way a batch does, and at worst the same messages are set aside as without it.
        """
        entry = self._entries.get(tup_id)
        if entry is None:
            return
        carried = [offset for _, _, offsets, _ in parts for offset in offsets]
        if tuple(carried) != entry.offsets or len(parts) < 2:
            raise ValueError(f"parts of {tup_id} must carry its offsets {entry.offsets}")
        del self._entries[tup_id]
        self._not_out(tup_id, entry)
        self.held_bytes -= entry.size
        for part_id, item, offsets, size in parts:
            self._entries[part_id] = _Entry(
                item,
                entry.partition,
                tuple(offsets),
                size,
                acks_seen=self.acks,
                earlier_failures=entry.attempts + entry.earlier_failures,
            )
            self.held_bytes += size
            self._schedule(-math.inf, part_id)

    def _schedule(self, due: float, tup_id: str) -> None:
        self._scheduled += 1
        heapq.heappush(self._replays, (due, self._scheduled, tup_id))

    def retire(self, tup_id: str, sizes: Sequence[int]) -> None:
        """An exhausted tuple's messages are being dead-lettered one by one: each offset
        becomes reserved (with its size, in offset order), released once its letter is out."""
        entry = self._entries.pop(tup_id, None)
        if entry is None:
            return
        self._not_out(tup_id, entry)
        self.held_bytes -= entry.size
        for offset, size in zip(entry.offsets, sizes, strict=True):
            self._reserved[entry.partition, offset] = size
            self.held_bytes += size

    def due_replays(self, now: float, held: Collection[PartitionKey] = ()) -> list[tuple[str, T]]:
        """Failed tuples whose backoff is over, to emit again now; those of ``held``
        partitions stay due until their partition is no longer held."""
        due = []
        kept = []
        while self._replays and self._replays[0][0] <= now:
            replay = heapq.heappop(self._replays)
            tup_id = replay[2]
            entry = self._entries.get(tup_id)
            if entry is None or entry.emission is not None:
                continue  # acked, retired, revoked, or sent again as a lost ack meanwhile
            if entry.partition in held:
                kept.append(replay)
                continue
            self._sent(tup_id, entry)
            due.append((tup_id, entry.item))
        for replay in kept:
            heapq.heappush(self._replays, replay)
        return due

    def lost_acks(self, now: float, held: Collection[PartitionKey] = ()) -> list[tuple[str, T]]:
        """Tuples presumed lost, to emit again now; each counts as (re-)emitted.

        A tuple is overtaken once a tuple of its partition emitted after it is acked; one
        still out ``lost_ack_after_s`` after that was first seen here is presumed lost.
        Overtaken tuples are always the first of their partition's ``_out``. Tuples of
        ``held`` partitions are not emitted again (their wait goes on).
        """
        lost = []
        for partition, out in self._out.items():
            if partition in held:
                continue
            acked = self._acked_emission.get(partition, 0)
            for tup_id in out:
                entry = self._entries[tup_id]
                if entry.emission is None or entry.emission > acked:
                    break
                if entry.overtaken_at is None:
                    entry.overtaken_at = now
                elif now - entry.overtaken_at >= self.lost_ack_after_s:
                    lost.append((tup_id, entry))
        for tup_id, entry in lost:
            self._sent(tup_id, entry)
        return [(tup_id, entry.item) for tup_id, entry in lost]

    def out(self) -> int:
        """Tuples emitted and neither acked nor failed since."""
        return sum(len(out) for out in self._out.values())

    def partition_of(self, tup_id: str) -> PartitionKey | None:
        entry = self._entries.get(tup_id)
        return entry.partition if entry else None

    def attempts(self, tup_id: str) -> int:
        """Failures of ``tup_id`` so far, with those of the batches it was split from."""
        entry = self._entries.get(tup_id)
        return entry.attempts + entry.earlier_failures if entry else 0

    def was_split(self, tup_id: str) -> bool:
        """Whether ``tup_id`` is a part of a batch ``split`` after its failures."""
        entry = self._entries.get(tup_id)
        return entry is not None and entry.earlier_failures > 0

    def forget_partitions(self, partitions: set[PartitionKey]) -> None:
        """Drop all that was read from ``partitions``: their late acks and fails are ignored,
        their replays dropped. Whoever reads them next resumes from the last commit."""
        for partition in partitions:
            self.offsets.forget(partition)
        self._entries = {k: e for k, e in self._entries.items() if e.partition not in partitions}
        for partition in partitions:
            self._out.pop(partition, None)
            self._acked_emission.pop(partition, None)
        self._reserved = {k: n for k, n in self._reserved.items() if k[0] not in partitions}
        self.held_bytes = sum(e.size for e in self._entries.values()) + sum(self._reserved.values())
        # A tuple read again later keeps its id; an old replay must not emit it early.
        self._replays = [r for r in self._replays if r[2] in self._entries]
        heapq.heapify(self._replays)
