"""The decision policy judged per visitor, offline: what each simulated visitor would feel.

A row's score is not what a visitor feels: a human is harmed by one challenge in a whole
visit, and a bot is stopped from its first block on. So every simulated request is given
the decision the edge would hold for its user at that moment, as the live loop does: the
newest score whose publication reached the edge ``latency_s`` after its features' time
decides (a newer allow lifts a block), and a challenge or block lasts its TTL from that
feature time. From those decisions come the same figures the live simulator prints
(``simulator.visits``), and the thresholds that meet a target share of humans challenged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import beta

from botscore.aggregation.offline import FeatureSnapshot
from botscore.errors import ModelError
from botscore.model.registry import STAGE_FEATURE, EarlyBlock, Thresholds
from botscore.settings import EnforcementSettings
from botscore.simulator.visits import VisitSummary, bot_block_timing
from botscore.v1.web_log_pb2 import WebLog

__all__ = [
    "ALLOW",
    "BLOCK",
    "CHALLENGE",
    "CONFIDENCE",
    "DECISION_LATENCY_S",
    "HUMANS_CHALLENGED_TARGET",
    "PublishedScores",
    "RequestTimes",
    "VisitorRequests",
    "allowed_challenged",
    "check_target",
    "choose_thresholds",
    "choose_thresholds_for_each",
    "combined",
    "decisions",
    "highest",
    "joined_requests",
    "raise_blocks",
    "summarize",
    "visitor_requests",
]

# From a request to the edge deciding on features that include it, in the live loop: up to
# one publish interval (2 s) before the feature stage publishes, then scoring and the merge
# (request to decision measured at p50 1.5 s, p95 3.1 s in the simulated hour).
DECISION_LATENCY_S = 3.0
# The share of human visitors a policy may challenge at least once (issue 15's target).
HUMANS_CHALLENGED_TARGET = 0.005
# How sure the thresholds must make us that the target holds on new traffic: the share seen
# on a calibration simulation is a sample, so the policy keeps below the target by its
# sampling error (the one-sided Clopper-Pearson bound).
CONFIDENCE = 0.95

ALLOW, CHALLENGE, BLOCK = 0, 1, 2


@dataclass(frozen=True)
class VisitorRequests:
    """Every request of a simulation, with the score its user had at the edge at that moment.

    Per request: the user's index, its time in seconds from the start, the score in force
    (NaN before the user's first score arrives), that score's age (seconds since its
    feature time) and its row's ``requests_1h`` (which block threshold applies, NaN with no
    score). Per user (by index): whether it is a bot, and its kind.
    """

    user: np.ndarray
    time_s: np.ndarray
    score: np.ndarray
    age_s: np.ndarray
    requests_1h: np.ndarray
    is_bot: np.ndarray
    kinds: np.ndarray


def visitor_requests(
    logs: Sequence[WebLog],
    snapshots: Sequence[FeatureSnapshot],
    scores: np.ndarray,
    kind_of: Mapping[str, str],
    bot_kinds: frozenset[str],
    latency_s: float = DECISION_LATENCY_S,
) -> VisitorRequests:
    """Join ``logs`` to the scores of ``snapshots`` (``scores[i]`` is ``snapshots[i]``'s)."""
    users = sorted({log.user_id for log in logs})
    index = {user: i for i, user in enumerate(users)}
    return joined_requests(
        RequestTimes(
            users,
            np.array([index[log.user_id] for log in logs], dtype=np.int64),
            np.array([log.time_unix_ms for log in logs], dtype=np.int64),
        ),
        PublishedScores(
            np.array([index[s.user_id] for s in snapshots], dtype=np.int64),
            np.array([s.window_end_ms for s in snapshots], dtype=np.int64),
            np.array([s.features.get(STAGE_FEATURE, np.nan) for s in snapshots], dtype=float),
            scores,
        ),
        kind_of,
        bot_kinds,
        latency_s,
    )


@dataclass(frozen=True)
class RequestTimes:
    """Requests as ``visitor_requests`` needs them: per request its user's index in
    ``users`` (sorted ids) and its time."""

    users: Sequence[str]
    user: np.ndarray
    time_ms: np.ndarray


@dataclass(frozen=True)
class PublishedScores:
    """Published rows as ``visitor_requests`` needs them: per row its user's index, its
    features' time, its ``requests_1h`` (NaN without) and its score."""

    user: np.ndarray
    window_end_ms: np.ndarray
    requests_1h: np.ndarray
    score: np.ndarray


def joined_requests(
    requests: RequestTimes,
    published: PublishedScores,
    kind_of: Mapping[str, str],
    bot_kinds: frozenset[str],
    latency_s: float = DECISION_LATENCY_S,
) -> VisitorRequests:
    """``visitor_requests`` on arrays: for a log too large to hold as ``WebLog`` objects."""
    if len(published.score) != len(published.user):
        raise ModelError(f"{len(published.score)} scores for {len(published.user)} snapshots")
    if latency_s < 0:
        raise ModelError(f"latency must be >= 0 s, got {latency_s}")
    if not len(requests.user):
        raise ModelError("no requests to judge the policy on")
    n_users = len(requests.users)
    start_ms = int(requests.time_ms.min())
    user = requests.user
    time_s = (requests.time_ms - start_ms) / 1000
    score = np.full(len(user), np.nan)
    age_s = np.full(len(user), np.inf)
    requests_1h = np.full(len(user), np.nan)

    order = np.argsort(user, kind="stable")
    bounds = np.searchsorted(user[order], np.arange(n_users + 1))
    by_user = np.argsort(published.user, kind="stable")
    row_bounds = np.searchsorted(published.user[by_user], np.arange(n_users + 1))
    feature_times = (published.window_end_ms - start_ms) / 1000
    values = published.score.astype(float)
    for u in range(n_users):
        mine = by_user[row_bounds[u] : row_bounds[u + 1]]
        if not len(mine):
            continue
        rows = order[bounds[u] : bounds[u + 1]]
        feature_s = feature_times[mine]
        # A score reaches the edge ``latency_s`` after its features' time; the newest
        # that has arrived is in force.
        latest = np.searchsorted(feature_s + latency_s, time_s[rows], side="right") - 1
        known = latest >= 0
        score[rows[known]] = values[mine][latest[known]]
        age_s[rows[known]] = time_s[rows[known]] - feature_s[latest[known]]
        requests_1h[rows[known]] = published.requests_1h[mine][latest[known]]
    kinds = np.array([kind_of[u] for u in requests.users])
    is_bot = np.array([k in bot_kinds for k in kinds])
    return VisitorRequests(user, time_s, score, age_s, requests_1h, is_bot, kinds)


def combined(parts: Sequence[VisitorRequests]) -> VisitorRequests:
    """Several simulations' requests as one, their users kept apart."""
    if not parts:
        raise ModelError("no requests to combine")
    offsets = np.cumsum([0] + [len(p.kinds) for p in parts[:-1]])
    return VisitorRequests(
        user=np.concatenate([p.user + o for p, o in zip(parts, offsets, strict=True)]),
        time_s=np.concatenate([p.time_s for p in parts]),
        score=np.concatenate([p.score for p in parts]),
        age_s=np.concatenate([p.age_s for p in parts]),
        requests_1h=np.concatenate([p.requests_1h for p in parts]),
        is_bot=np.concatenate([p.is_bot for p in parts]),
        kinds=np.concatenate([p.kinds for p in parts]),
    )


def decisions(
    requests: VisitorRequests, thresholds: Thresholds, enforcement: EnforcementSettings
) -> np.ndarray:
    """``ALLOW``, ``CHALLENGE`` or ``BLOCK`` for every request, as the edge would decide."""
    score, age = requests.score, requests.age_s
    block_at = thresholds.block_for(requests.requests_1h)
    with np.errstate(invalid="ignore"):
        block = (score >= block_at) & (age < enforcement.block_ttl_s)
        challenge = (
            (score >= thresholds.challenge)
            & (score < block_at)
            & (age < enforcement.challenge_ttl_s)
        )
    out = np.full(len(score), ALLOW, dtype=np.int8)
    out[challenge] = CHALLENGE
    out[block] = BLOCK
    return out


def summarize(
    requests: VisitorRequests, decided: np.ndarray, kind: str | None = None
) -> VisitSummary:
    """``simulator.visits``'s figures for every visitor, or only those of ``kind``."""
    n = len(requests.kinds)
    first_s = np.full(n, np.inf)
    np.minimum.at(first_s, requests.user, requests.time_s)
    # Each user's second request: its earliest one after the first (or at the same moment).
    by_time = np.lexsort((requests.time_s, requests.user))
    starts = np.searchsorted(requests.user[by_time], np.arange(n))
    counts = np.bincount(requests.user, minlength=n)
    second_s = np.full(n, np.inf)
    has_two = counts >= 2
    second_s[has_two] = requests.time_s[by_time[starts[has_two] + 1]]
    first_blocked = np.full(n, np.inf)
    blocked = decided == BLOCK
    np.minimum.at(first_blocked, requests.user[blocked], requests.time_s[blocked])
    ever_challenged = np.bincount(requests.user[decided == CHALLENGE], minlength=n) > 0
    affected = np.bincount(requests.user[decided != ALLOW], minlength=n)
    request_counts = np.bincount(requests.user, minlength=n)

    chosen = np.ones(n, dtype=bool) if kind is None else requests.kinds == kind
    humans = chosen & ~requests.is_bot
    bots = chosen & requests.is_bot
    blocked_bots, within, timing = bot_block_timing(
        (first_blocked - first_s)[bots & np.isfinite(first_blocked)], int(bots.sum())
    )
    human_requests = int(request_counts[humans].sum())
    return VisitSummary(
        humans=int(humans.sum()),
        humans_challenged=_share(ever_challenged[humans]),
        humans_blocked=_share(np.isfinite(first_blocked[humans])),
        human_requests_affected=(
            int(affected[humans].sum()) / human_requests if human_requests else 0.0
        ),
        bots=int(bots.sum()),
        bots_blocked=blocked_bots,
        bots_blocked_within=within,
        bots_blockable_within_10s=_share((second_s - first_s)[bots] <= 10),
        time_to_block_s=timing,
    )


def allowed_challenged(humans: int, target: float, confidence: float = CONFIDENCE) -> int:
    """The most of ``humans`` calibration visitors that may be challenged while the true share
    stays at most ``target`` with ``confidence``: -1 when even none would not show it.

    k of n challenged shows a share of at most ``target`` when the one-sided Clopper-Pearson
    upper bound, the ``confidence`` quantile of Beta(k + 1, n - k), is at most ``target``.
    """
    if humans <= 0:
        return -1
    k = int(np.floor(target * humans))
    while k >= 0 and beta.ppf(confidence, k + 1, humans - k) > target:
        k -= 1
    return k


def check_target(humans_challenged: float, confidence: float) -> None:
    """Refuse a target ``choose_thresholds`` cannot meet; ``train_model`` asks before the
    minutes of simulation that come first."""
    if not 0.0 <= humans_challenged < 1.0:
        raise ModelError(
            f"the share of humans challenged must be in [0, 1), got {humans_challenged}"
        )
    if not 0.0 <= confidence < 1.0:
        raise ModelError(f"the confidence must be in [0, 1), got {confidence}")


def choose_thresholds(
    requests: VisitorRequests,
    enforcement: EnforcementSettings,
    humans_challenged: float = HUMANS_CHALLENGED_TARGET,
    confidence: float = CONFIDENCE,
    early_stages: Sequence[int] = (),
) -> Thresholds:
    """The lowest thresholds under which no calibration human is blocked and so few are ever
    challenged that, with ``confidence``, at most ``humans_challenged`` of all humans would be
    (``allowed_challenged``; ``confidence`` 0 takes the calibration's share as it is). Lower
    thresholds block bots sooner, never later.

    With ``early_stages`` (increasing counts of requests in the last hour), each stage gets
    a block threshold of its own, just above the humans' scores in force from rows of that
    stage; the general one is then above the rows past the last stage.

    Fitted on the requests given, so judge the result on other traffic.
    """
    check_target(humans_challenged, confidence)
    human = ~requests.is_bot[requests.user] & ~np.isnan(requests.score)
    if not human.any():
        raise ModelError("no human request has a score: the policy cannot be fitted")
    in_force = human & (requests.age_s < enforcement.block_ttl_s)
    block, early = _block_thresholds(requests, in_force, early_stages)
    # Each human's highest score while a challenge would hold; the k highest may be challenged.
    could_challenge = human & (requests.age_s < enforcement.challenge_ttl_s)
    highest = np.full(len(requests.kinds), -np.inf)
    np.maximum.at(highest, requests.user[could_challenge], requests.score[could_challenge])
    per_human = np.sort(highest[~requests.is_bot])[::-1]
    if confidence == 0:
        allowed = int(np.floor(humans_challenged * len(per_human)))
    else:
        allowed = allowed_challenged(len(per_human), humans_challenged, confidence)
    if allowed < 0:
        raise ModelError(
            f"{len(per_human)} calibration humans cannot show that at most "
            f"{humans_challenged:.2%} are challenged with {confidence:.0%} confidence: "
            "simulate more of them"
        )
    challenge = _just_above(float(per_human[allowed])) if allowed < len(per_human) else 0.0
    return Thresholds(challenge=min(max(challenge, 0.0), block), block=block, early_block=early)


def _block_thresholds(
    requests: VisitorRequests, in_force: np.ndarray, early_stages: Sequence[int]
) -> tuple[float, tuple[EarlyBlock, ...]]:
    """Just above the highest human score in force, for each stage and past the last one.

    A stage no calibration human reached gets the general threshold: nothing says its
    humans score lower. No human past the last stage is refused: the threshold that blocks
    none of them would be 0, which blocks everyone.
    """
    counts = requests.requests_1h
    past, early, floor = in_force.copy(), [], -np.inf
    for stage in early_stages:
        with np.errstate(invalid="ignore"):
            here = in_force & (counts > floor) & (counts <= stage)
        past &= ~here
        early.append((stage, float(requests.score[here].max()) if here.any() else None))
        floor = stage
    if not past.any():
        last = f"past {early_stages[-1]} requests in the last hour " if early_stages else ""
        raise ModelError(
            f"no calibration human has a score in force {last}to set the block threshold "
            "by: simulate more of them, or longer"
        )
    block = _just_above(float(requests.score[past].max()))
    return block, tuple(
        EarlyBlock(stage, _just_above(top) if top is not None else block) for stage, top in early
    )


def highest(chosen: Sequence[Thresholds]) -> Thresholds:
    """The highest of each threshold in ``chosen`` (the same early stages in each): one that
    holds wherever each of them does."""
    if not chosen:
        raise ModelError("no thresholds to take the highest of")
    stages = {tuple(e.max_requests_1h for e in t.early_block) for t in chosen}
    if len(stages) != 1:
        raise ModelError(f"thresholds with different early stages cannot be merged: {stages}")
    return Thresholds(
        challenge=max(t.challenge for t in chosen),
        block=max(t.block for t in chosen),
        early_block=tuple(
            EarlyBlock(stage.max_requests_1h, max(t.early_block[i].block for t in chosen))
            for i, stage in enumerate(chosen[0].early_block)
        ),
    )


def raise_blocks(thresholds: Thresholds, others: Sequence[Thresholds]) -> Thresholds:
    """``thresholds`` with each block threshold raised to the highest of ``others``' (the
    same stages), its challenge threshold kept: the blocks chosen on larger simulations."""
    return highest(
        [thresholds, *(replace(t, challenge=min(thresholds.challenge, t.block)) for t in others)]
    )


def choose_thresholds_for_each(
    populations: Sequence[VisitorRequests],
    enforcement: EnforcementSettings,
    humans_challenged: float = HUMANS_CHALLENGED_TARGET,
    confidence: float = CONFIDENCE,
    early_stages: Sequence[int] = (),
) -> Thresholds:
    """Thresholds that hold in each of ``populations``: the highest of those each one chooses.

    Simulated populations differ more than a sample of one would (with the thresholds chosen
    on three hours pooled, five other hours challenged 0.34-0.72% of their humans, 0.49% on
    average), and a deployment meets one population at a time; so each calibration
    simulation must show the target on its own.
    """
    if not populations:
        raise ModelError("no calibration population to choose the thresholds on")
    return highest(
        [
            choose_thresholds(p, enforcement, humans_challenged, confidence, early_stages)
            for p in populations
        ]
    )


def _just_above(score: float) -> float:
    """The smallest threshold a score of ``score`` stays under (1.0 at most)."""
    return float(min(np.nextafter(max(score, 0.0), np.inf), 1.0))


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if flags.size else 0.0
