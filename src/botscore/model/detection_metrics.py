"""How well scores tell bots from humans, row by row: the figures an evaluation reports.

Every function takes the scores and the truth (``True`` for a bot row) of one set of rows.
A row counts as challenged or blocked when its score is at or above the threshold, as the
classifier decides (``Thresholds.decide``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from botscore.errors import ModelError

__all__ = [
    "Detection",
    "check_human_rate",
    "detection",
    "separation",
    "share_at_or_above",
    "threshold_for_human_rate",
]


@dataclass(frozen=True)
class Detection:
    """One model on one set of rows; ``bots_*`` are recalls, ``humans_*`` false-positive rates."""

    bot_rows: int
    human_rows: int
    roc_auc: float
    # Average precision: the area under the precision-recall steps, without interpolation.
    pr_auc: float
    bots_challenged: float
    bots_blocked: float
    # The lowest threshold at which at most ``human_rate`` of the human rows are challenged.
    human_rate_threshold: float
    bots_at_human_rate: float
    humans_challenged: float
    humans_blocked: float


def share_at_or_above(scores: np.ndarray, threshold: float | np.ndarray) -> float:
    """Share of ``scores`` at or above ``threshold`` (one, or one per row); refuses an empty
    set of rows."""
    if scores.size == 0:
        raise ModelError("no rows to take a share of")
    return float(np.mean(scores >= threshold))


def check_human_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ModelError(f"a human rate must be within [0, 1), got {rate!r}")


def separation(scores: np.ndarray, is_bot: np.ndarray) -> tuple[float, float]:
    """ROC AUC and PR AUC (average precision) of ``scores``; both sides must have rows."""
    bots = int(np.count_nonzero(is_bot))
    if bots == 0 or bots == is_bot.size:
        raise ModelError(f"{bots} bot and {is_bot.size - bots} human rows: both are needed")
    return float(roc_auc_score(is_bot, scores)), float(average_precision_score(is_bot, scores))


def threshold_for_human_rate(human_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold that challenges at most ``rate`` of ``human_scores``.

    With ``m = floor(rate * n)`` human rows allowed above it, it lies just above the
    ``m + 1``-th highest human score: any lower threshold would challenge ``m + 1`` rows.
    """
    check_human_rate(rate)
    if human_scores.size == 0:
        raise ModelError("no human rows to set a threshold on")
    allowed = math.floor(round(rate * human_scores.size, 9))
    highest_first = np.sort(human_scores)[::-1]
    return float(np.nextafter(highest_first[allowed], np.inf))


def detection(
    scores: np.ndarray,
    is_bot: np.ndarray,
    challenge: float,
    block: float | np.ndarray,
    human_rate: float,
) -> Detection:
    """The figures of ``scores`` against the truth ``is_bot``; both sides must have rows.

    ``block`` is one threshold or each row's (``Thresholds.block_for``)."""
    roc_auc, pr_auc = separation(scores, is_bot)
    block = np.broadcast_to(block, scores.shape)
    bots, humans = scores[is_bot], scores[~is_bot]
    threshold = threshold_for_human_rate(humans, human_rate)
    return Detection(
        bot_rows=int(bots.size),
        human_rows=int(humans.size),
        roc_auc=roc_auc,
        pr_auc=pr_auc,
        bots_challenged=share_at_or_above(bots, challenge),
        bots_blocked=share_at_or_above(bots, block[is_bot]),
        human_rate_threshold=threshold,
        bots_at_human_rate=share_at_or_above(bots, threshold),
        humans_challenged=share_at_or_above(humans, challenge),
        humans_blocked=share_at_or_above(humans, block[~is_bot]),
    )
