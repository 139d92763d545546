"""Which Kafka offsets are safe to commit, given out-of-order acks.

The spout emits offsets in increasing order per partition (with gaps: transaction
markers and compaction skip offsets), but Storm acks them in any order. A partition's
commit position may only move past offsets that are all done; committing further would
lose the unfinished ones on restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["OffsetTracker", "PartitionKey"]

PartitionKey = tuple[str, int]


@dataclass
class _PartitionState:
    emitted: deque[int] = field(default_factory=deque)  # in emission (= offset) order
    done: set[int] = field(default_factory=set)
    next_commit: int | None = None
    first: int | None = None  # first offset emitted since the partition was assigned


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[PartitionKey, _PartitionState] = {}
        self._committed: dict[PartitionKey, int] = {}

    def emitted(self, partition: PartitionKey, offset: int) -> None:
        state = self._partitions.setdefault(partition, _PartitionState())
        if state.emitted and offset <= state.emitted[-1]:
            raise ValueError(f"{partition}: offset {offset} emitted out of order")
        state.emitted.append(offset)
        if state.first is None:
            state.first = offset

    def done(self, partition: PartitionKey, offset: int) -> None:
        """Mark ``offset`` finished: acked, or skipped on purpose as bad input."""
        state = self._partitions.get(partition)
        if state is None:
            return  # a late ack for a partition we no longer own
        state.done.add(offset)
        while state.emitted and state.emitted[0] in state.done:
            head = state.emitted.popleft()
            state.done.discard(head)
            state.next_commit = head + 1

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

        That is our last commit or, before the first one, where we started reading (the
        group's committed position then). Consumers that dedup may forget marks below it.
        """
        committed = self._committed.get(partition)
        if committed is not None:
            return committed
        state = self._partitions.get(partition)
        return state.first if state is not None and state.first is not None else 0

    def committed(self, positions: dict[PartitionKey, int]) -> None:
        self._committed.update(positions)

    def forget(self, partition: PartitionKey) -> None:
        """Drop a revoked partition: its new owner resumes from the last commit."""
        self._partitions.pop(partition, None)
        self._committed.pop(partition, None)
