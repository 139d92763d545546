"""Score a batch of users with one model call.

The spout already turned away users without the model's features, so a batch either
scores whole or is malformed (``ValueError``): its tuple then fails and is replayed, and
finally dead-lettered message by message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from botscore.model.registry import STAGE_FEATURE, LoadedModel, ModelManifest
from botscore.vocabulary import Decision
from botscore.wire.records import FeatureBatch, ScoreBatch

__all__ = ["RATE_FEATURE", "RateCeiling", "over_rate_ceiling", "score_batch", "score_buckets"]

# The feature ``scoring.block_requests_1m`` reads.
RATE_FEATURE = "requests_1m"


def score_batch(
    model: LoadedModel, batch: FeatureBatch, scored_time_ms: int, block_requests_1m: int = 0
) -> ScoreBatch:
    """``batch`` scored in one ``predict_proba`` call; ``ValueError`` if it is malformed
    or the model gives a score that is not a probability. A user with more than
    ``block_requests_1m`` requests in the last minute is blocked whatever its score
    (``over_rate_ceiling``)."""
    manifest = model.manifest
    width = len(manifest.feature_names)
    if not batch.rows:
        raise ValueError("an empty batch")
    if any(len(row) != width for row in batch.rows):
        raise ValueError(f"every row must hold the model's {width} features")
    matrix = np.asarray(batch.rows, dtype=np.float64)
    predicted = model.predict_scores(matrix)
    if len(predicted) != len(batch.rows):
        raise ValueError(f"the model gave {len(predicted)} scores for {len(batch.rows)} rows")
    # A NaN would compare below every threshold and go out as an allow.
    outside = ~((predicted >= 0) & (predicted <= 1))
    if outside.any():
        raise ValueError(
            f"the model gave {int(outside.sum())} scores outside [0, 1] "
            f"(first: {predicted[outside][0]!r} for {batch.user_ids[int(np.argmax(outside))]!r})"
        )
    scores = predicted.tolist()
    thresholds = manifest.thresholds
    if thresholds.early_block:
        column = manifest.feature_names.index(STAGE_FEATURE)
        decisions = [
            thresholds.decide(s, r[column]) for s, r in zip(scores, batch.rows, strict=True)
        ]
    else:
        decisions = [thresholds.decide(s) for s in scores]
    over = over_rate_ceiling(manifest, matrix, block_requests_1m).tolist()
    decisions = [Decision.BLOCK if o else d for d, o in zip(decisions, over, strict=True)]
    return ScoreBatch(
        user_ids=batch.user_ids,
        scores=scores,
        decisions=[d.value for d in decisions],
        model_name=manifest.name,
        model_version=manifest.version,
        feature_times_ms=batch.window_end_ms,
        scored_time_ms=scored_time_ms,
        topic=batch.topic,
        partition=batch.partition,
        offsets=batch.offsets,
    )


def over_rate_ceiling(
    manifest: ModelManifest, rows: Sequence[Sequence[float]] | np.ndarray, block_requests_1m: int
) -> np.ndarray:
    """Per row of the model's features, whether its ``requests_1m`` passes
    ``block_requests_1m`` (0: none does).

    A tree model says nothing of a rate past those it was trained on: it scores one like
    the highest it saw, and a flood that passes the JavaScript check scored as a human. A
    model without the feature has no rate to check.
    """
    if not block_requests_1m or RATE_FEATURE not in manifest.feature_names or not len(rows):
        return np.zeros(len(rows), dtype=bool)
    column = manifest.feature_names.index(RATE_FEATURE)
    return np.asarray(rows, dtype=np.float64)[:, column] > block_requests_1m


@dataclass(frozen=True)
class RateCeiling:
    """``scoring.block_requests_1m`` as applied offline: rows past it decided as blocks
    (a score of 1.0), as the live classifier decides them, whatever the model scored."""

    block_requests_1m: int  # 0: not applied
    rows: int
    visitors: int

    @classmethod
    def of(cls, block_requests_1m: int, over: np.ndarray, row_visitors: np.ndarray) -> RateCeiling:
        """From ``over`` (``over_rate_ceiling``'s) and each row's visitor, any hashable id."""
        return cls(block_requests_1m, int(over.sum()), len(set(row_visitors[over].tolist())))

    def text(self) -> str:
        """A sentence for a report."""
        if not self.block_requests_1m:
            return "No rate ceiling applied (`--block-requests-1m 0`): decisions are the model's."
        return (
            f"Rate ceiling: {self.visitors} visitors ({self.rows} rows) had more than "
            f"{self.block_requests_1m} requests in a minute, and are blocked whatever the model "
            "scored, as the live classifier blocks them (`scoring.block_requests_1m`)."
        )


def score_buckets(scores: list[float]) -> list[str]:
    """Each score's tenth, as a tag value: ``0.0`` for [0, 0.1) ... ``0.9`` for [0.9, 1]."""
    return [f"{min(int(score * 10), 9) / 10:.1f}" for score in scores]
