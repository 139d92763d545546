"""Batch scoring: one model call per batch, decisions, model names, malformed batches, buckets."""

import dataclasses
import json

import pytest

from botscore.model.features import CATALOG, feature_matrix
from botscore.model.registry import EarlyBlock, Thresholds, load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import over_rate_ceiling, score_batch, score_buckets
from botscore.wire.records import FeatureBatch


def _batch(n, seed=11, names=CATALOG):
    users = list(sample_users(n, seed))
    return FeatureBatch(
        user_ids=[u.user_id for u in users],
        window_end_ms=[1000 + i for i in range(n)],
        rows=[[u.features[name] for name in names] for u in users],
        schema_versions=[1] * n,
        topic="t",
        partition=2,
        offsets=list(range(50, 50 + n)),
    ), users


class _Counting:
    """An estimator that counts its calls."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.classes_ = estimator.classes_
        self.calls = 0

    def predict_proba(self, matrix):
        self.calls += 1
        return self.estimator.predict_proba(matrix)


def test_batch_scores_equal_a_direct_predict_proba_from_one_call(small_model_dir):
    model = load_model(small_model_dir)
    counting = _Counting(model.estimator)
    batch, users = _batch(300)
    scores = score_batch(dataclasses.replace(model, estimator=counting), batch, scored_time_ms=5)
    expected = model.estimator.predict_proba(feature_matrix([u.features for u in users], CATALOG))
    assert counting.calls == 1
    assert scores.scores == list(expected[:, 1])
    assert all(type(s) is float for s in scores.scores)  # plain values for the serializer
    assert scores.decisions == [model.manifest.thresholds.decide(s) for s in scores.scores]
    assert all(type(d) is str for d in scores.decisions)
    assert set(scores.decisions) <= {"allow", "challenge", "block"}


def test_early_block_thresholds_decide_by_each_rows_requests_in_the_last_hour(small_model_dir):
    model = load_model(small_model_dir)
    early = Thresholds(0.99, 1.0, (EarlyBlock(2, 0.0),))
    staged = dataclasses.replace(
        model, manifest=dataclasses.replace(model.manifest, thresholds=early)
    )
    batch, users = _batch(300)
    decided = score_batch(staged, batch, scored_time_ms=5).decisions
    first = [u.features["requests_1h"] <= 2 for u in users]
    assert any(first) and not all(first)
    plain = score_batch(model, batch, 5).scores
    for is_first, decision, score in zip(first, decided, plain, strict=True):
        assert decision == ("block" if is_first else early.decide(score))


def test_each_score_names_its_user_source_the_model_and_the_scoring_time(small_model_dir):
    # The manifest file as written, not as the registry reads it.
    manifest = json.loads((small_model_dir / "manifest.json").read_text())
    batch, _ = _batch(20)
    scores = score_batch(load_model(small_model_dir), batch, scored_time_ms=1_790_000_000_123)
    assert scores.user_ids == batch.user_ids
    assert scores.feature_times_ms == batch.window_end_ms
    assert (scores.topic, scores.partition, scores.offsets) == ("t", 2, batch.offsets)
    assert (scores.model_name, scores.model_version) == (manifest["name"], manifest["version"])
    assert scores.scored_time_ms == 1_790_000_000_123


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"user_ids": ["a"]}, id="fewer-user-ids-than-rows"),
        pytest.param({"rows": [[1.0] * len(CATALOG)]}, id="fewer-rows-than-users"),
    ],
)
def test_a_batch_whose_lists_disagree_is_refused(change):
    batch, _ = _batch(3)
    with pytest.raises(ValueError, match="differ in length"):
        dataclasses.replace(batch, **change)


def test_a_row_without_the_models_features_fails_the_batch(small_model_dir):
    batch, _ = _batch(3)
    narrow = dataclasses.replace(batch, rows=[*batch.rows[:2], batch.rows[2][:-1]])
    with pytest.raises(ValueError, match="features"):
        score_batch(load_model(small_model_dir), narrow, scored_time_ms=5)


def test_an_empty_batch_is_malformed(small_model_dir):
    batch, _ = _batch(0)
    with pytest.raises(ValueError, match="empty"):
        score_batch(load_model(small_model_dir), batch, scored_time_ms=5)


class _OneRowShort:
    """An estimator that loses the last row: its answer does not match the batch."""

    def __init__(self, estimator):
        self.estimator = estimator

    def predict_proba(self, matrix):
        return self.estimator.predict_proba(matrix)[:-1]


def test_a_model_answering_fewer_rows_than_asked_fails_the_batch(small_model_dir):
    # Pairing scores with the first users would silently leave the last one unscored.
    model = load_model(small_model_dir)
    short = dataclasses.replace(model, estimator=_OneRowShort(model.estimator))
    with pytest.raises(ValueError, match="2 scores for 3 rows"):
        score_batch(short, _batch(3)[0], scored_time_ms=5)


class _Answering:
    """An estimator whose bot column says ``score`` for the second row."""

    def __init__(self, estimator, score):
        self.estimator = estimator
        self.score = score

    def predict_proba(self, matrix):
        proba = self.estimator.predict_proba(matrix)
        proba[1] = [1 - self.score, self.score]
        return proba


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -0.01, 1.01])
def test_a_score_that_is_not_a_probability_fails_the_batch(small_model_dir, score):
    # A linear model can overflow to NaN on extreme (finite) features; NaN is below every
    # threshold, so it would have gone out as an allow.
    model = load_model(small_model_dir)
    odd = dataclasses.replace(model, estimator=_Answering(model.estimator, score))
    batch = _batch(3)[0]
    with pytest.raises(ValueError, match=rf"1 scores outside \[0, 1\].*{batch.user_ids[1]}"):
        score_batch(odd, batch, scored_time_ms=5)


@pytest.mark.parametrize("score", [0.0, 1.0])
def test_scores_of_exactly_zero_and_one_are_probabilities(small_model_dir, score):
    model = load_model(small_model_dir)
    edge = dataclasses.replace(model, estimator=_Answering(model.estimator, score))
    assert score_batch(edge, _batch(3)[0], scored_time_ms=5).scores[1] == score


def test_score_buckets_are_tenths_with_a_score_of_one_in_the_top_tenth():
    """The score-distribution metric's tags, worked out by hand at each tenth's edges."""
    scores = [0.0, 0.09, 0.1, 0.19, 0.5, 0.899, 0.9, 0.999, 1.0]
    expected = ["0.0", "0.0", "0.1", "0.1", "0.5", "0.8", "0.9", "0.9", "0.9"]
    assert score_buckets(scores) == expected


def test_a_user_past_the_rate_ceiling_is_blocked_whatever_its_score(small_model_dir):
    model = load_model(small_model_dir)
    batch, _ = _batch(6)
    column = CATALOG.index("requests_1m")
    rows = [list(row) for row in batch.rows]
    rows[1][column], rows[4][column] = 1201.0, 1200.0  # past the ceiling, and at it
    flooded = dataclasses.replace(batch, rows=rows)
    scored = score_batch(model, flooded, scored_time_ms=5, block_requests_1m=1200)
    unbounded = score_batch(model, flooded, scored_time_ms=5)
    assert scored.scores == unbounded.scores  # the score is the model's still
    assert scored.decisions[1] == "block"
    expected = [d for i, d in enumerate(unbounded.decisions) if i != 1]
    assert [d for i, d in enumerate(scored.decisions) if i != 1] == expected


def test_a_model_without_the_rate_blocks_no_one_for_it(small_model_dir):
    model = load_model(small_model_dir)
    names = tuple(n for n in CATALOG if n != "requests_1m")
    narrow = dataclasses.replace(model.manifest, feature_names=names)
    rows = [[10_000.0] * len(names)]
    assert over_rate_ceiling(narrow, rows, 1200).tolist() == [False]
    assert over_rate_ceiling(model.manifest, [[10_000.0] * len(CATALOG)], 0).tolist() == [False]
    assert over_rate_ceiling(model.manifest, [], 1200).tolist() == []
