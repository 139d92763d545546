"""What each visitor felt at the edge, over its whole visit, not per request or per score.

A human is harmed by being challenged once in a visit, however many of its rows scored
low; a bot is stopped from the moment it is first blocked. So the figures that judge a
decision policy are per visitor: the share of humans ever challenged or blocked, the share
of human requests affected, and each bot's time from its first request to its first block.

A bot's first request is never blocked (no score of it exists yet), so a bot that sends no
other request in its first 10 s cannot be blocked within 10 s by any model or policy: the
share of bots that sent a second one bounds the share blocked within 10 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from botscore.vocabulary import Decision

__all__ = ["BLOCK_DEADLINES_S", "Visit", "VisitSummary", "bot_block_timing", "summarize_visits"]

# Seconds from a bot's first request at which the share of bots already blocked is
# reported: the distribution of the times to block, not only its 10 s point.
BLOCK_DEADLINES_S: tuple[float, ...] = (5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Visit:
    is_bot: bool
    first_s: float  # simulated second of the visitor's first request
    kind: str  # the simulator's profile of the visitor
    requests: int = 0
    second_s: float | None = None  # simulated second of its second request
    affected: int = 0  # requests the edge challenged or blocked
    first_challenged_s: float | None = None
    first_blocked_s: float | None = None

    def record(self, t_s: float, decision: str) -> None:
        self.requests += 1
        if self.requests == 2:
            self.second_s = t_s
        if decision == Decision.ALLOW:
            return
        self.affected += 1
        if decision == Decision.BLOCK and self.first_blocked_s is None:
            self.first_blocked_s = t_s
        if decision == Decision.CHALLENGE and self.first_challenged_s is None:
            self.first_challenged_s = t_s


@dataclass(frozen=True)
class VisitSummary:
    """Per-visitor figures of the visitors who arrived at or after a moment."""

    humans: int
    humans_challenged: float  # share of humans challenged at least once
    humans_blocked: float  # share of humans blocked at least once
    human_requests_affected: float  # share of human requests challenged or blocked
    bots: int
    bots_blocked: float  # share of bots blocked at least once
    # (deadline, share of bots blocked within it of their first request), one per
    # ``BLOCK_DEADLINES_S``
    bots_blocked_within: tuple[tuple[float, float], ...]
    # share of bots with a second request within 10 s of their first: the most of them any
    # policy could block within 10 s
    bots_blockable_within_10s: float
    # simulated seconds from a blocked bot's first request to its first block: p50, p90, max
    time_to_block_s: tuple[float, float, float] | None

    @property
    def bots_blocked_within_10s(self) -> float:
        return dict(self.bots_blocked_within)[10.0]

    def text(self, speedup: float = 1.0) -> str:
        return f"{self.humans_text()}; {self.bots_text(speedup)}"

    def humans_text(self) -> str:
        return (
            f"{self.humans} humans: {self.humans_challenged:.2%} ever challenged, "
            f"{self.humans_blocked:.2%} ever blocked, {self.human_requests_affected:.2%} of "
            "their requests affected"
        )

    def bots_text(self, speedup: float = 1.0) -> str:
        timing = (
            "no bot blocked"
            if self.time_to_block_s is None
            else "first request to block p50 {:.1f} s, p90 {:.1f} s, max {:.1f} s".format(
                *self.time_to_block_s
            )
        )
        scale = "" if speedup == 1 else f" (simulated seconds, {speedup:g}x)"
        deadlines = ", ".join(f"{d:g}" for d, _ in self.bots_blocked_within)
        shares = ", ".join(f"{share:.1%}" for _, share in self.bots_blocked_within)
        return (
            f"{self.bots} bots: {self.bots_blocked:.1%} blocked, "
            f"{self.bots_blocked_within_10s:.1%} within 10 s (at most "
            f"{self.bots_blockable_within_10s:.1%} could be: the others sent one request in "
            f"their first 10 s); within {deadlines} s: {shares}; {timing}{scale}"
        )


def bot_block_timing(
    delays: Sequence[float] | np.ndarray, bots: int
) -> tuple[float, tuple[tuple[float, float], ...], tuple[float, float, float] | None]:
    """From the times to block of the blocked ones among ``bots`` bots: the share blocked,
    the share blocked within each of ``BLOCK_DEADLINES_S``, and p50, p90 and max (None when
    none was blocked)."""
    times = np.sort(np.asarray(delays, dtype=float))
    if not bots:
        return 0.0, tuple((d, 0.0) for d in BLOCK_DEADLINES_S), None
    within = tuple(
        (d, int(np.searchsorted(times, d, side="right")) / bots) for d in BLOCK_DEADLINES_S
    )
    timing = (
        (float(np.percentile(times, 50)), float(np.percentile(times, 90)), float(times[-1]))
        if len(times)
        else None
    )
    return len(times) / bots, within, timing


def summarize_visits(
    visits: dict[str, Visit], arrived_from_s: float = 0.0, kind: str | None = None
) -> VisitSummary:
    """The figures of the visitors (of ``kind``, or all) whose first request came at or after
    ``arrived_from_s`` (after start-up, when scores could reach the edge at all)."""
    chosen = [
        v
        for v in visits.values()
        if v.first_s >= arrived_from_s and (kind is None or v.kind == kind)
    ]
    humans = [v for v in chosen if not v.is_bot]
    bots = [v for v in chosen if v.is_bot]
    blocked, within, timing = bot_block_timing(
        [v.first_blocked_s - v.first_s for v in bots if v.first_blocked_s is not None], len(bots)
    )
    requests = sum(v.requests for v in humans)
    return VisitSummary(
        humans=len(humans),
        humans_challenged=_share(sum(v.first_challenged_s is not None for v in humans), humans),
        humans_blocked=_share(sum(v.first_blocked_s is not None for v in humans), humans),
        human_requests_affected=sum(v.affected for v in humans) / requests if requests else 0.0,
        bots=len(bots),
        bots_blocked=blocked,
        bots_blocked_within=within,
        bots_blockable_within_10s=_share(
            sum(v.second_s is not None and v.second_s - v.first_s <= 10 for v in bots), bots
        ),
        time_to_block_s=timing,
    )


def _share(count: int, of: list[Visit]) -> float:
    return count / len(of) if of else 0.0
