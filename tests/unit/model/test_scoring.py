"""Batch scoring: decisions, model names and rejected rows."""

import dataclasses
import json

import pytest

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


def test_each_score_names_its_user_the_model_and_the_scoring_time(small_model_dir):
    # The manifest file as written, not as the registry reads it.
    manifest = json.loads((small_model_dir / "manifest.json").read_text())
    records = _records(20)
    result = score_batch(load_model(small_model_dir), records, scored_time_ms=1_790_000_000_123)
    assert [r for r, _ in result.scored] == records
    for record, score in result.scored:
        assert score.user_id == record.user_id
        assert (score.model_name, score.model_version) == (manifest["name"], manifest["version"])
        assert score.scored_time_ms == 1_790_000_000_123
    assert len({s.user_id for _, s in result.scored}) == 20


def test_a_batch_with_no_complete_record_scores_none_and_rejects_all(small_model_dir):
    records = [
        FeatureRecord("x", 1, {"requests_1m": 1.0}, 1, SourceRef("t", 0, 1)),
        FeatureRecord("y", 1, {}, 1, SourceRef("t", 0, 2)),
    ]
    result = score_batch(load_model(small_model_dir), records, scored_time_ms=5)
    assert result.scored == []
    assert [r for r, _ in result.rejected] == records
    assert {e.reason for _, e in result.rejected} == {"missing_feature"}


def test_the_rejection_names_every_missing_feature_in_model_order(small_model_dir):
    [user] = sample_users(1, 11)
    features = dict(user.features)
    del features["login_attempts_1h"], features["distinct_paths_1h"]
    record = FeatureRecord("x", 1, features, 1, SourceRef("t", 0, 1))
    [(_, error)] = score_batch(load_model(small_model_dir), [record], scored_time_ms=5).rejected
    assert error.detail == "distinct_paths_1h,login_attempts_1h"


class _OneRowShort:
    """An estimator that loses the last row: its answer does not match the batch."""

    def __init__(self, estimator):
        self.estimator = estimator

    def predict_proba(self, matrix):
        return self.estimator.predict_proba(matrix)[:-1]


def test_a_model_answering_fewer_rows_than_asked_fails_the_batch(small_model_dir):
    # Pairing scores with the first records would silently leave the last one unscored.
    model = load_model(small_model_dir)
    short = dataclasses.replace(model, estimator=_OneRowShort(model.estimator))
    with pytest.raises(ValueError):
        score_batch(short, _records(3), scored_time_ms=5)
