"""The classifier bolt: one batch tuple in, its scores out as one anchored tuple, then an ack."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from bolts import classifier
from bolts.classifier import ClassifierBolt
from botscore.errors import ModelError
from botscore.model.sample_users import sample_users
from botscore.wire.records import FeatureBatch, ScoreBatch
from tests.unit.storm_fakes import start, storm_tuple

NOW_MS = 1_700_000_000_000


@pytest.fixture
def bolt(small_model_dir, monkeypatch):
    monkeypatch.setattr(classifier, "now_ms", lambda: NOW_MS)
    return start(ClassifierBolt, {"botscore.scoring.model_dir": str(small_model_dir)}, monkeypatch)


def _batch(model_dir, n, seed=3):  # seed 3 holds an allow and a challenge
    names = json.loads((model_dir / "manifest.json").read_text())["feature_names"]
    users = list(sample_users(n, seed))
    return FeatureBatch(
        user_ids=[u.user_id for u in users],
        window_end_ms=[1_699_999_990_000 + i for i in range(n)],
        rows=[[u.features[name] for name in names] for u in users],
        schema_versions=[1] * n,
        topic="uf",
        partition=1,
        offsets=list(range(100, 100 + n)),
    )


def _expected_scores(model_dir, batch):
    """Bot probabilities straight from the pickled estimator."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    estimator = classifier.load_model(model_dir).estimator
    bot_column = list(estimator.classes_).index(1)
    return list(estimator.predict_proba(np.array(batch.rows))[:, bot_column]), manifest


def _decision(score, thresholds):
    if score >= thresholds["block"]:
        return "block"
    return "challenge" if score >= thresholds["challenge"] else "allow"


def test_a_batch_is_scored_in_one_tuple_anchored_to_its_input_and_then_acked(bolt, small_model_dir):
    component, link = bolt
    batch = _batch(small_model_dir, 7)
    component.process(storm_tuple("uf/1/100-106", batch.to_values()))

    emit, ack = link.messages()
    assert (emit["command"], emit["anchors"]) == ("emit", ["uf/1/100-106"])
    assert (ack["command"], ack["id"]) == ("ack", "uf/1/100-106")
    scores = ScoreBatch.from_values(emit["tuple"])
    expected, manifest = _expected_scores(small_model_dir, batch)
    assert scores.scores == expected
    assert scores.decisions == [_decision(s, manifest["thresholds"]) for s in expected]
    assert {"allow", "challenge"} <= set(scores.decisions)
    assert scores.user_ids == batch.user_ids
    assert scores.feature_times_ms == batch.window_end_ms
    assert (scores.topic, scores.partition, scores.offsets) == ("uf", 1, batch.offsets)
    assert (scores.model_name, scores.model_version) == (manifest["name"], manifest["version"])
    assert scores.scored_time_ms == NOW_MS


def test_each_tuple_is_answered_on_its_own(bolt, small_model_dir):
    component, link = bolt
    for i in range(3):
        component.process(storm_tuple(f"in-{i}", _batch(small_model_dir, 2, seed=i).to_values()))
    assert link.commands() == [("emit", None), ("ack", "in-0")] + [
        c for i in (1, 2) for c in [("emit", None), ("ack", f"in-{i}")]
    ]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda v: v[:3], id="too-few-values"),
        pytest.param(lambda v: [v[0][:-1], *v[1:]], id="a-user-id-short"),
        pytest.param(lambda v: [v[0], v[1], [r[:-1] for r in v[2]], *v[3:]], id="narrow-rows"),
        pytest.param(lambda v: [[], [], [], [], *v[4:6], []], id="empty"),
    ],
)
def test_a_malformed_tuple_is_failed_and_nothing_is_emitted(bolt, small_model_dir, damage):
    component, link = bolt
    component.process(storm_tuple("bad", damage(_batch(small_model_dir, 3).to_values())))
    assert link.commands() == [("fail", "bad")]


class _BrokenEstimator:
    classes_ = np.array([0, 1])

    def predict_proba(self, matrix):
        raise ValueError("the model blew up")


def test_a_batch_whose_model_call_raises_is_failed_and_the_bolt_goes_on(bolt, small_model_dir):
    component, link = bolt
    model = component.model
    component.model = dataclasses.replace(model, estimator=_BrokenEstimator())
    component.process(storm_tuple("first", _batch(small_model_dir, 4).to_values()))
    component.model = model
    component.process(storm_tuple("second", _batch(small_model_dir, 4).to_values()))
    assert link.commands() == [("fail", "first"), ("emit", None), ("ack", "second")]


def test_a_model_that_fails_its_check_stops_the_bolt_before_it_scores(
    small_model_dir, tmp_path, monkeypatch
):
    tampered = tmp_path / "model"
    shutil.copytree(small_model_dir, tampered)
    artifact = json.loads((tampered / "manifest.json").read_text())["artifact"]
    with (tampered / artifact).open("ab") as pickle_file:
        pickle_file.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256"):
        start(ClassifierBolt, {"botscore.scoring.model_dir": str(tampered)}, monkeypatch)
