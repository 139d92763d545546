"""What an edge does with a user: a cached, fail-open read of the decisions in Redis."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis

from botscore.enforcement.decisions import (
    STORED_DECISIONS,
    decision_key,
    latest_key,
    read_stats,
)
from botscore.vocabulary import Decision

__all__ = ["EdgeDecisions", "NewDecision"]

log = logging.getLogger(__name__)

# New decisions kept for ``take_new_decisions``; older ones are dropped if nobody takes them.
_NEW_DECISIONS_KEPT = 10_000


@dataclass(frozen=True)
class NewDecision:
    """A user's decision changed at the edge: what it became, and when.

    ``feature_time_ms`` is the end of the feature window of the score that made it (the
    event time of the last request that score counted), ``seen_at`` the edge's ``clock``
    when it noticed: together, how long a request took to become a decision at the edge.
    """

    user_id: str
    decision: Decision
    feature_time_ms: int
    seen_at: float


class EdgeDecisions:
    """What an edge does with a user; no answer is older than ``cache_ms`` of wall time.

    Edges cache because a GET per request at thousands per second is wasteful: answers
    hold for one period, and the first lookup after it refreshes, in one MGET per 1000,
    every user looked up during it; a user new in a period costs one round trip. Fails
    open: while Redis is unreachable users are allowed (the site keeps serving), and the
    outage is logged once, not per request. A Redis that fails (refused, or hung: each call
    waits the client's timeout) is asked again only once per ``retry_ms``, by one lookup:
    the others answer at once meanwhile.
    """

    def __init__(
        self,
        client: redis.Redis,
        cache_ms: int = 1000,
        retry_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._cache_s = cache_ms / 1000
        self._retry_s = retry_ms / 1000
        self._clock = clock
        self._cache: dict[str, Decision] = {}
        self._used: set[str] = set()
        self._expires = clock() + self._cache_s
        self._failing = False
        self._retry_at = 0.0  # while failing, Redis is not asked before then
        self._new: deque[NewDecision] = deque(maxlen=_NEW_DECISIONS_KEPT)

    def decision_for(self, user_id: str) -> Decision:
        now = self._clock()
        if now >= self._expires:
            # Users idle for a whole period are dropped: memory follows active users.
            users = list(self._used)
            fetched = self._fetch(users, now)
            if fetched is None:
                self._cache = {}  # fail open: everyone is allowed, and nothing changed
            else:
                fresh = dict(zip(users, fetched, strict=True))
                changed = {u: d for u, d in fresh.items() if d != self._cache.get(u, d)}
                self._note_changes(changed, now)
                self._cache = fresh
            self._used = set()
            self._expires = now + self._cache_s
        self._used.add(user_id)
        decision = self._cache.get(user_id)
        if decision is None:
            fetched = self._fetch([user_id], now)
            decision = self._cache[user_id] = Decision.ALLOW if fetched is None else fetched[0]
        return decision

    def _fetch(self, users: list[str], now: float) -> list[Decision] | None:
        """The users' decisions; None while Redis fails (asked only once it is time to)."""
        if self._failing and now < self._retry_at:
            return None
        values: list[bytes | None] = []
        try:
            for i in range(0, len(users), 1000):
                # redis-py types replies as ``Awaitable | Any``; the sync client's MGET is a list.
                values += cast(
                    "list[bytes | None]",
                    self.client.mget([decision_key(u) for u in users[i : i + 1000]]),
                )
        except redis.RedisError as exc:
            self._failed(exc, now)
            return None
        if self._failing:
            log.warning("edge decisions available again")
            self._failing = False
        # Anything but a decision we store (a value another writer left) allows: fail open.
        texts = [v.decode(errors="replace") if v is not None else "" for v in values]
        return [Decision(t) if t in STORED_DECISIONS else Decision.ALLOW for t in texts]

    def _failed(self, exc: redis.RedisError, now: float) -> None:
        """Log an outage once, and keep lookups from Redis until ``retry_ms`` from ``now``."""
        if not self._failing:
            log.warning("edge decisions unavailable, allowing everyone meanwhile: %s", exc)
            self._failing = True
        self._retry_at = now + self._retry_s

    def take_new_decisions(self) -> list[NewDecision]:
        """The decisions that changed since the last call (at most the last 10,000)."""
        taken = list(self._new)
        self._new.clear()
        return taken

    def _note_changes(self, changed: dict[str, Decision], now: float) -> None:
        """Keep each change with the feature time of the score behind it.

        Only the rare changes cost a read (of the merge's ``latest`` keys). A decision that
        lapsed (a block or challenge whose life ended, the newest score not an allow) is
        no new decision, and is not kept.
        """
        if not changed:
            return
        users = list(changed)
        try:
            latest = cast("list[bytes | None]", self.client.mget([latest_key(u) for u in users]))
        except redis.RedisError as exc:
            self._failed(exc, now)  # the changes are lost; the decisions fail open from now
            return
        for user_id, value in zip(users, latest, strict=True):
            parts = value.split() if value is not None else []
            if len(parts) != 4 or not all(p.isdigit() for p in parts):
                continue
            severity = int(parts[3])
            decision = changed[user_id]
            if decision is Decision.ALLOW and severity > 0:
                continue  # lapsed, not lifted
            self._new.append(NewDecision(user_id, decision, int(parts[0]), now))

    def stats(self) -> dict[str, int] | None:
        """The enforcer's user counts (``users_scored``, ...); None if unreachable, and
        without asking while the decisions fail (a hung Redis would stall the caller)."""
        return None if self._failing else read_stats(self.client)
