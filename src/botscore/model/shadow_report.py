"""Champion against challenger: each shadow score beside the live score of the same message.

Every ``ThreatScore`` names the ``UserFeatures`` message it scored (``source``: topic,
partition, offset), and the classifier scores a batch with both models, so a champion's
and a challenger's score of one message pair up exactly. Replays may write a score twice:
per message the one scored last counts. ``compare`` works on decoded scores only; reading
the topics is ``botscore models compare``'s business.

Decisions are the ones each score carries, so each model's own thresholds (its manifest's)
made them: what the edge would have done with the challenger live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from botscore.simulator.labels import Label
from botscore.vocabulary import Decision
from botscore.wire.records import ScoreRecord

__all__ = ["QUANTILES", "Comparison", "KindFigures", "Pair", "compare", "join", "render"]

QUANTILES = (0.1, 0.5, 0.9, 0.99)
UNLABELLED = "(unlabelled)"

_Source = tuple[str, int, int]


@dataclass(frozen=True)
class Pair:
    champion: ScoreRecord
    challenger: ScoreRecord


@dataclass(frozen=True)
class Joined:
    pairs: list[Pair]
    champion_only: int  # messages only the champion scored (no challenger yet, or it failed)
    challenger_only: int  # messages only the challenger scored (read window's edges)


@dataclass(frozen=True)
class KindFigures:
    """One kind of user (the simulation's labels): how each model decided on its messages."""

    kind: str
    messages: int
    agreed: int
    champion: Mapping[str, int]  # decision -> messages
    challenger: Mapping[str, int]


@dataclass(frozen=True)
class Comparison:
    joined: int
    champion_only: int
    challenger_only: int
    champion_models: tuple[str, ...]
    challenger_models: tuple[str, ...]
    agreed: int
    transitions: Mapping[tuple[str, str], int]  # (champion's, challenger's decision) -> count
    champion_quantiles: tuple[float, ...]  # at QUANTILES; empty when nothing joined
    challenger_quantiles: tuple[float, ...]
    by_kind: tuple[KindFigures, ...]  # empty without labels


def join(champion: Iterable[ScoreRecord], challenger: Iterable[ScoreRecord]) -> Joined:
    """Pairs by scored message, in the challenger's message order."""
    mine, theirs = _latest(champion), _latest(challenger)
    pairs = [Pair(mine[source], score) for source, score in theirs.items() if source in mine]
    return Joined(pairs, len(mine.keys() - theirs.keys()), len(theirs.keys() - mine.keys()))


def compare(
    champion: Iterable[ScoreRecord],
    challenger: Iterable[ScoreRecord],
    labels: Mapping[str, Label] | None = None,
) -> Comparison:
    """The figures of ``render``; per kind only with ``labels`` (user id -> kind)."""
    joined = join(champion, challenger)
    pairs = joined.pairs
    transitions = Counter((p.champion.decision, p.challenger.decision) for p in pairs)
    return Comparison(
        joined=len(pairs),
        champion_only=joined.champion_only,
        challenger_only=joined.challenger_only,
        champion_models=_models(p.champion for p in pairs),
        challenger_models=_models(p.challenger for p in pairs),
        agreed=sum(n for (a, b), n in transitions.items() if a == b),
        transitions=dict(transitions),
        champion_quantiles=_quantiles([p.champion.score for p in pairs]),
        challenger_quantiles=_quantiles([p.challenger.score for p in pairs]),
        by_kind=() if labels is None else _by_kind(pairs, labels),
    )


def render(c: Comparison) -> str:
    if not c.joined:
        return (
            f"no message scored by both models (champion only: {c.champion_only}, "
            f"challenger only: {c.challenger_only}): is a challenger set? "
            "(botscore models shadow NAME/VERSION)"
        )
    lines = [
        f"champion {', '.join(c.champion_models)}; challenger {', '.join(c.challenger_models)}",
        f"joined {c.joined} messages scored by both (only the champion's: {c.champion_only}, "
        f"only the challenger's: {c.challenger_only})",
        f"decisions agree: {c.agreed} of {c.joined} ({_share(c.agreed, c.joined)})",
        "",
        "score quantiles " + "".join(f"{f'p{q * 100:g}':>8}" for q in QUANTILES),
        "  champion      " + "".join(f"{v:>8.3f}" for v in c.champion_quantiles),
        "  challenger    " + "".join(f"{v:>8.3f}" for v in c.challenger_quantiles),
        "",
        "decisions, champion -> challenger",
    ]
    for (before, after), n in sorted(c.transitions.items(), key=_decision_order):
        changed = "" if before == after else "  changed"
        lines.append(f"  {before:<9} -> {after:<9} {n:>8} ({_share(n, c.joined)}){changed}")
    if c.by_kind:
        lines += [
            "",
            "per kind (c/b: share of its messages challenged / blocked)",
            f"  {'kind':<24}{'messages':>9}{'agree':>8}   {'champion c/b':<17}challenger c/b",
        ]
        for k in c.by_kind:
            lines.append(
                f"  {k.kind:<24}{k.messages:>9}{_share(k.agreed, k.messages):>8}   "
                f"{_acted(k.champion, k.messages):<17}{_acted(k.challenger, k.messages)}"
            )
    return "\n".join(lines)


def _latest(scores: Iterable[ScoreRecord]) -> dict[_Source, ScoreRecord]:
    latest: dict[_Source, ScoreRecord] = {}
    for score in scores:
        source = (score.source.topic, score.source.partition, score.source.offset)
        kept = latest.get(source)
        if kept is None or score.scored_time_ms >= kept.scored_time_ms:
            latest[source] = score
    return latest


def _models(scores: Iterable[ScoreRecord]) -> tuple[str, ...]:
    return tuple(sorted({f"{s.model_name}/{s.model_version}" for s in scores}))


def _quantiles(values: list[float]) -> tuple[float, ...]:
    if not values:
        return ()
    return tuple(float(v) for v in np.quantile(np.asarray(values), QUANTILES))


def _by_kind(pairs: list[Pair], labels: Mapping[str, Label]) -> tuple[KindFigures, ...]:
    grouped: dict[str, list[Pair]] = {}
    for pair in pairs:
        kind = labels[pair.champion.user_id][0] if pair.champion.user_id in labels else UNLABELLED
        grouped.setdefault(kind, []).append(pair)
    return tuple(
        KindFigures(
            kind=kind,
            messages=len(group),
            agreed=sum(p.champion.decision == p.challenger.decision for p in group),
            champion=Counter(p.champion.decision for p in group),
            challenger=Counter(p.challenger.decision for p in group),
        )
        for kind, group in sorted(grouped.items())
    )


_ORDER = {decision.value: i for i, decision in enumerate(Decision)}


def _decision_order(item: tuple[tuple[str, str], int]) -> tuple[int, str, int, str]:
    """allow, challenge, block; anything else (a score without a decision) after them."""
    (before, after), _ = item
    return _ORDER.get(before, len(_ORDER)), before, _ORDER.get(after, len(_ORDER)), after


def _share(n: int, of: int) -> str:
    return f"{100 * n / of:.1f}%" if of else "-"


def _acted(decisions: Mapping[str, int], messages: int) -> str:
    challenged = _share(decisions.get(Decision.CHALLENGE, 0), messages)
    blocked = _share(decisions.get(Decision.BLOCK, 0), messages)
    return f"{challenged} / {blocked}"
