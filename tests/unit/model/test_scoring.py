"""Batch scoring: decisions, model names and rejected rows."""

from botscore.model.features import CATALOG, feature_matrix
from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.wire.records import FeatureRecord, SourceRef


def _records(n, seed=11):
    return [
        FeatureRecord(u.user_id, 1000 + i, u.features, 1, SourceRef("t", 0, i))
        for i, u in enumerate(sample_users(n, seed))
    ]


def test_batch_scores_equal_a_direct_predict_proba(small_model_dir):
    model = load_model(small_model_dir)
    records = _records(300)
    result = score_batch(model, records, scored_time_ms=5)
    expected = model.estimator.predict_proba(feature_matrix([r.features for r in records], CATALOG))
    assert [s.score for _, s in result.scored] == list(expected[:, 1])
    assert all(
        s.source == r.source and s.feature_time_ms == r.window_end_ms for r, s in result.scored
    )
    assert {s.decision for _, s in result.scored} <= {"allow", "challenge", "block"}


def test_a_user_missing_a_feature_is_rejected_alone(small_model_dir):
    model = load_model(small_model_dir)
    records = _records(5)
    broken = FeatureRecord("x", 1, {"requests_1m": 1.0}, 1, SourceRef("t", 0, 99))
    result = score_batch(model, [*records, broken], scored_time_ms=5)
    assert len(result.scored) == 5
    [(record, error)] = result.rejected
    assert record is broken
    assert error.reason == "missing_feature"
    assert "requests_1h" in error.detail
