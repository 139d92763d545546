"""Score a batch of feature records with one model call.

Rows that cannot be scored (a feature the model needs is absent) come back as
rejections with their reason instead of failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from botscore.errors import InvalidMessage
from botscore.model.features import feature_matrix, missing_features
from botscore.model.registry import LoadedModel
from botscore.vocabulary import DeadLetterReason
from botscore.wire.records import FeatureRecord, ScoreRecord

__all__ = ["BatchResult", "score_batch"]


@dataclass(frozen=True)
class BatchResult:
    scored: list[tuple[FeatureRecord, ScoreRecord]]
    rejected: list[tuple[FeatureRecord, InvalidMessage]]


def score_batch(
    model: LoadedModel, records: Sequence[FeatureRecord], scored_time_ms: int
) -> BatchResult:
    names = model.manifest.feature_names
    complete: list[FeatureRecord] = []
    rejected: list[tuple[FeatureRecord, InvalidMessage]] = []
    for record in records:
        gaps = missing_features(record.features, names)
        if gaps:
            rejected.append(
                (record, InvalidMessage(DeadLetterReason.MISSING_FEATURE, ",".join(gaps)))
            )
        else:
            complete.append(record)
    if not complete:
        return BatchResult([], rejected)

    scores = model.predict_scores(feature_matrix([r.features for r in complete], names))
    manifest = model.manifest
    scored = [
        (
            record,
            ScoreRecord(
                user_id=record.user_id,
                score=float(score),
                decision=manifest.thresholds.decide(float(score)),
                model_name=manifest.name,
                model_version=manifest.version,
                feature_time_ms=record.window_end_ms,
                scored_time_ms=scored_time_ms,
                source=record.source,
            ),
        )
        for record, score in zip(complete, scores, strict=True)
    ]
    return BatchResult(scored, rejected)
