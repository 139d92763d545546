"""The feature stage in memory: training data, and the reference the topology must match.

``MemoryFeatureStore`` stores a ``StateUpdate`` exactly as the Redis script does (same
bucket trimming, same set windows and caps, same tie order), so features computed from
either are equal. Logs are applied once each, in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from botscore.aggregation.definitions import (
    DISTINCT_SETS,
    GRANULARITIES,
    RECENT_REQUESTS,
    StateUpdate,
    UserState,
    compute_features,
    request_record,
    update_for,
)
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import SourceRef

__all__ = ["FeatureSnapshot", "MemoryFeatureStore", "final_features", "publications"]

_NO_SOURCE = SourceRef("offline", 0, 0)


@dataclass
class _User:
    last_ms: int
    # granularity -> bucket -> counter -> count
    buckets: dict[str, dict[int, dict[str, int]]] = field(
        default_factory=lambda: {g.name: {} for g in GRANULARITIES}
    )
    # set name -> member -> latest time
    sets: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s.name: {} for s in DISTINCT_SETS}
    )
    recent: dict[str, int] = field(default_factory=dict)


class MemoryFeatureStore:
    def __init__(self) -> None:
        self._users: dict[str, _User] = {}

    def apply(self, user_id: str, update: StateUpdate) -> None:
        user = self._users.pop(user_id, None)  # back in last: the dict runs by last update
        if user is None:
            user = _User(update.time_ms)
        self._users[user_id] = user
        last = user.last_ms = max(user.last_ms, update.time_ms)
        for gran, bucket, counters in update.counters:
            kept = user.buckets[gran.name]
            lowest = gran.lowest_kept(last)
            for old in [b for b in kept if b < lowest]:
                del kept[old]
            if bucket >= lowest and counters:
                counts = kept.setdefault(bucket, {})
                for name in counters:
                    counts[name] = counts.get(name, 0) + 1
        for distinct, member in update.members:
            values = user.sets[distinct.name]
            values[member] = max(values.get(member, update.time_ms), update.time_ms)
            _trim(values, last - distinct.window_ms, distinct.cap)
        recent = user.recent
        recent[update.request_id] = max(recent.get(update.request_id, 0), update.time_ms)
        _trim(recent, None, RECENT_REQUESTS)

    def state(self, user_id: str) -> UserState:
        user = self._users[user_id]
        return UserState(
            last_ms=user.last_ms,
            counters={
                f"{gran}:{bucket}:{name}": count
                for gran, kept in user.buckets.items()
                for bucket, counts in kept.items()
                for name, count in counts.items()
            },
            distinct={name: len(values) for name, values in user.sets.items()},
            recent_ms=tuple(sorted(user.recent.values())),
        )

    def users(self) -> list[str]:
        return list(self._users)

    def forget_idle(self, now_ms: int, ttl_ms: int) -> list[str]:
        """Drop the users with no request in the ``ttl_ms`` before ``now_ms``, as their keys
        expire in Redis; returns them. Users are looked at least recently updated first,
        up to the first one still live (with logs in time order, all of them)."""
        gone = []
        for user_id, user in self._users.items():
            if user.last_ms > now_ms - ttl_ms:
                break
            gone.append(user_id)
        for user_id in gone:
            del self._users[user_id]
        return gone


def _trim(values: dict[str, int], at_or_before: int | None, cap: int) -> None:
    """Drop members seen at or before ``at_or_before``, then all but the newest ``cap``.

    "Newest" orders by (time, member as bytes), which is Redis's sorted-set order.
    """
    if at_or_before is not None:
        for member in [m for m, t in values.items() if t <= at_or_before]:
            del values[member]
    if len(values) > cap:
        ranked = sorted(values.items(), key=lambda item: (item[1], item[0].encode()))
        for member, _ in ranked[: len(values) - cap]:
            del values[member]


@dataclass(frozen=True)
class FeatureSnapshot:
    user_id: str
    window_end_ms: int
    features: dict[str, float]


def final_features(logs: Iterable[WebLog]) -> dict[str, FeatureSnapshot]:
    """Each user's features after all of ``logs``: what the topology publishes last."""
    store = MemoryFeatureStore()
    for log in logs:
        store.apply(log.user_id, update_for(request_record(log, _NO_SOURCE)))
    result = {}
    for user_id in store.users():
        state = store.state(user_id)
        result[user_id] = FeatureSnapshot(user_id, state.last_ms, compute_features(state))
    return result


def publications(
    logs: Iterable[WebLog], interval_ms: int, idle_ttl_ms: int | None = None
) -> Iterator[FeatureSnapshot]:
    """Features as the topology would publish them, at most once per user per interval.

    Intervals are measured in event time, so a simulated hour yields the same rows however
    fast it is generated. With ``idle_ttl_ms`` (``aggregation.state_ttl_s``), a user idle
    that long starts over, as when its keys expire in Redis, and memory follows the users
    active within it: a day of a site's log holds a few hours of its visitors.
    """
    store = MemoryFeatureStore()
    published: dict[str, int] = {}
    for log in logs:
        if idle_ttl_ms is not None:
            for user_id in store.forget_idle(log.time_unix_ms, idle_ttl_ms):
                published.pop(user_id, None)
        store.apply(log.user_id, update_for(request_record(log, _NO_SOURCE)))
        previous = published.get(log.user_id)
        if previous is None or log.time_unix_ms - previous >= interval_ms:
            published[log.user_id] = log.time_unix_ms
            state = store.state(log.user_id)
            yield FeatureSnapshot(log.user_id, state.last_ms, compute_features(state))
