"""Which Kafka offsets are safe to commit, given out-of-order acks.

The spout emits offsets in increasing order per partition (with gaps: transaction
markers and compaction skip offsets), but Storm acks them in any order. A partition's
commit position may only move past offsets that are all done; committing further would
lose the unfinished ones on restart.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["OffsetTracker", "PartitionKey"]

PartitionKey = tuple[str, int]


@dataclass
class _PartitionState:
    # Offsets read and not yet passed by the commit position, in offset order: is it done?
    emitted: OrderedDict[int, bool] = field(default_factory=OrderedDict)
    next_commit: int | None = None
    # Where reading (re)started: the group's committed offset, or the first offset read.
    start: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[PartitionKey, _PartitionState] = {}
        self._committed: dict[PartitionKey, int] = {}

    def assigned(self, partition: PartitionKey, committed: int | None) -> None:
        """Start over on ``partition``, read from the group's ``committed`` offset (or
        from where the reset policy says, when the group has none)."""
        self._partitions[partition] = _PartitionState(next_commit=committed, start=committed)
        if committed is None:
            self._committed.pop(partition, None)
        else:
            self._committed[partition] = committed

    def expected(self, partition: PartitionKey) -> int | None:
        """The lowest offset the partition may emit next; None before anything is known."""
        state = self._partitions.get(partition)
        if state is None:
            return None
        return next(reversed(state.emitted)) + 1 if state.emitted else state.next_commit

    def emitted(self, partition: PartitionKey, offset: int) -> None:
        state = self._partitions.setdefault(partition, _PartitionState())
        after = self.expected(partition)
        if after is not None and offset < after:
            raise ValueError(f"{partition}: offset {offset} emitted out of order")
        state.emitted[offset] = False
        if state.start is None:
            # Without a commit to resume from, commit where reading began: a rebalance or
            # a restart then resumes here, not wherever the reset policy points by then.
            state.start = state.next_commit = offset

    def done(self, partition: PartitionKey, offset: int) -> None:
        """Mark ``offset`` finished: acked, or skipped on purpose as bad input.

        An offset not in flight is ignored: a late ack for a partition we no longer own, or
        for an emission that an earlier one already finished.
        """
        state = self._partitions.get(partition)
        if state is None or offset not in state.emitted:
            return
        state.emitted[offset] = True
        while state.emitted:
            head = next(iter(state.emitted))
            if not state.emitted[head]:
                break
            del state.emitted[head]
            state.next_commit = head + 1

    def finished_before(self, partition: PartitionKey) -> int | None:
        """Where a commit of ``partition`` would go now: every offset below it is finished
        (None before anything is known)."""
        state = self._partitions.get(partition)
        return state.next_commit if state is not None else None

    def regained(self, partition: PartitionKey, committed: int | None) -> None:
        """``partition`` came back with its state kept; the group's commit is ``committed``
        (at or below ours), so the next ``pending_commits`` moves it to ours."""
        if committed is None:
            self._committed.pop(partition, None)
        else:
            self._committed[partition] = committed

    def partitions(self) -> set[PartitionKey]:
        """Every partition something is known of."""
        return set(self._partitions) | set(self._committed)

    def in_flight(self) -> int:
        return sum(len(s.emitted) for s in self._partitions.values())

    def pending_commits(self) -> dict[PartitionKey, int]:
        """Commit positions (next offset to read) that moved since last ``committed``."""
        return {
            key: state.next_commit
            for key, state in self._partitions.items()
            if state.next_commit is not None and self._committed.get(key) != state.next_commit
        }

    def replay_floor(self, partition: PartitionKey) -> int:
        """Lowest offset that may ever be delivered again: where a restart would resume.

        That is our last commit or, before the first one, where reading started (the
        group's committed offset when the partition was assigned); 0 when unknown. Consumers
        that dedup may forget marks below it.
        """
        committed = self._committed.get(partition)
        if committed is not None:
            return committed
        state = self._partitions.get(partition)
        return state.start if state is not None and state.start is not None else 0

    def last_commits(self) -> dict[PartitionKey, int]:
        """Each partition's last known commit: ours, or the group's when it was assigned."""
        return dict(self._committed)

    def committed(self, positions: dict[PartitionKey, int]) -> None:
        self._committed.update(positions)

    def forget(self, partition: PartitionKey) -> None:
        """Drop a revoked partition: whoever reads it next resumes from the last commit."""
        self._partitions.pop(partition, None)
        self._committed.pop(partition, None)
