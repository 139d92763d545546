"""Score a batch of users with one model call.

The spout already turned away users without the model's features, so a batch either
scores whole or is malformed (``ValueError``): its tuple then fails and is replayed, and
finally dead-lettered message by message.
"""

from __future__ import annotations

import numpy as np

from botscore.model.registry import STAGE_FEATURE, LoadedModel
from botscore.wire.records import FeatureBatch, ScoreBatch

__all__ = ["score_batch", "score_buckets"]


def score_batch(model: LoadedModel, batch: FeatureBatch, scored_time_ms: int) -> ScoreBatch:
    """``batch`` scored in one ``predict_proba`` call; ``ValueError`` if it is malformed
    or the model gives a score that is not a probability."""
    manifest = model.manifest
    width = len(manifest.feature_names)
    if not batch.rows:
        raise ValueError("an empty batch")
    if any(len(row) != width for row in batch.rows):
        raise ValueError(f"every row must hold the model's {width} features")
    predicted = model.predict_scores(np.asarray(batch.rows, dtype=np.float64))
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


def score_buckets(scores: list[float]) -> list[str]:
    """Each score's tenth, as a tag value: ``0.0`` for [0, 0.1) ... ``0.9`` for [0.9, 1]."""
    return [f"{min(int(score * 10), 9) / 10:.1f}" for score in scores]
