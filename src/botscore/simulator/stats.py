"""What a simulation run counts: requests sent, blocked and challenged, by kind, by group
(bots or humans) and by simulated minute."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from botscore.simulator.visits import Visit
from botscore.vocabulary import Decision

__all__ = ["EdgeCounts", "MinuteStats", "SimulationStats"]


@dataclass
class EdgeCounts:
    """Requests of one group (bots or humans) by the edge's decision on them."""

    # Every request the clients made, whatever the edge decided.
    requests: int = 0
    blocked: int = 0
    challenged: int = 0

    @property
    def allowed(self) -> int:
        return self.requests - self.blocked - self.challenged

    def add(self, decision: str) -> None:
        self.requests += 1
        if decision == Decision.BLOCK:
            self.blocked += 1
        elif decision == Decision.CHALLENGE:
            self.challenged += 1


@dataclass
class MinuteStats:
    bots: EdgeCounts = field(default_factory=EdgeCounts)
    humans: EdgeCounts = field(default_factory=EdgeCounts)


@dataclass
class SimulationStats:
    """What happened to the requests: emitted, dropped by a block, or challenged.

    The simulator knows who is a bot, so it judges the edge here, from the ground truth,
    without ever putting a label into a message.
    """

    sent: int = 0
    # WebLogs Kafka confirmed: all of ``sent`` once a run ended without an error.
    confirmed: int = 0
    blocked: int = 0
    challenged: int = 0
    sent_by_kind: dict[str, int] = field(default_factory=dict)
    blocked_by_kind: dict[str, int] = field(default_factory=dict)
    bots: EdgeCounts = field(default_factory=EdgeCounts)
    humans: EdgeCounts = field(default_factory=EdgeCounts)
    # Simulated minute since the start -> what the edge did that minute.
    by_minute: dict[int, MinuteStats] = field(default_factory=dict)
    # Wall seconds from the last request a score counted to the edge applying its decision,
    # one per decision that changed at the edge.
    decision_latencies_s: list[float] = field(default_factory=list)
    # Every visitor's visit: what the edge did to it over all its requests.
    visits: dict[str, Visit] = field(default_factory=dict)
    # Simulated second at which the edge first reported scored users; None without one.
    # It is sampled once a wall second, so scores arrived after ``unscored_until_s``, the
    # last sample that saw none: no request before that can have been blocked or challenged.
    first_scores_s: float | None = None
    unscored_until_s: float = 0.0
    # Simulated second of the first request the edge blocked or challenged; None if none.
    first_enforced_s: float | None = None

    def record(self, t_s: float, user_id: str, kind: str, is_bot: bool, decision: str) -> None:
        """Count one request made at simulated second ``t_s`` by a visitor of ``kind``, and
        the edge's decision."""
        visit = self.visits.get(user_id)
        if visit is None:
            visit = self.visits[user_id] = Visit(is_bot, t_s, kind)
        visit.record(t_s, decision)
        minute = self.by_minute.setdefault(int(t_s // 60), MinuteStats())
        (minute.bots if is_bot else minute.humans).add(decision)
        (self.bots if is_bot else self.humans).add(decision)
        if decision != Decision.ALLOW and (
            self.first_enforced_s is None or t_s < self.first_enforced_s
        ):
            self.first_enforced_s = t_s

    @property
    def bots_blocked(self) -> set[str]:
        """Bots the edge blocked at least once."""
        return {u for u, v in self.visits.items() if v.is_bot and v.first_blocked_s is not None}

    @property
    def humans_challenged(self) -> set[str]:
        """Humans the edge challenged at least once."""
        return {
            u for u, v in self.visits.items() if not v.is_bot and v.first_challenged_s is not None
        }

    def bot_allowed_share(self, start_s: float = 0.0, end_s: float = math.inf) -> float | None:
        """Share of bot requests allowed in the whole simulated minutes within [start, end).

        Minutes cut by ``start_s`` or ``end_s`` are left out, so the minute in which the
        first scores arrived counts neither as before nor as after; None without requests.
        """
        counts = [
            m.bots
            for minute, m in self.by_minute.items()
            if minute * 60 >= start_s and (minute + 1) * 60 <= end_s
        ]
        requests = sum(c.requests for c in counts)
        return sum(c.allowed for c in counts) / requests if requests else None
