"""The classifier bolt: scores full batches, anchors each score, fails what it cannot score."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from bolts import classifier
from bolts.classifier import ClassifierBolt
from botscore.errors import ModelError
from botscore.model.sample_users import sample_users
from botscore.wire.records import FeatureRecord, ScoreRecord, SourceRef
from tests.unit.storm_fakes import start, storm_tuple

NOW_MS = 1_700_000_000_000
BATCH = 4


@pytest.fixture
def bolt(small_model_dir, monkeypatch):
    monkeypatch.setattr(classifier, "now_ms", lambda: NOW_MS)
    options = {
        "botscore.scoring.model_dir": str(small_model_dir),
        "botscore.scoring.batch_size": BATCH,
        # Batches close by size only: no batch may close by age while a test runs.
        "botscore.scoring.max_batch_wait_ms": 3_600_000,
    }
    component, link = start(ClassifierBolt, options, monkeypatch)
    yield component, link
    component.stop_batching()


def _records(n, seed=3):  # seed 3 holds an allow and a challenge
    return [
        FeatureRecord(u.user_id, 1_699_999_990_000 + i, u.features, 1, SourceRef("uf", 1, 100 + i))
        for i, u in enumerate(sample_users(n, seed))
    ]


def _expected_scores(model_dir, records):
    """Bot probabilities straight from the pickled estimator, columns in manifest order."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    estimator = classifier.load_model(model_dir).estimator
    matrix = np.array([[r.features[name] for name in manifest["feature_names"]] for r in records])
    bot_column = list(estimator.classes_).index(1)
    return list(estimator.predict_proba(matrix)[:, bot_column]), manifest["thresholds"]


def _decision(score, thresholds):
    if score >= thresholds["block"]:
        return "block"
    return "challenge" if score >= thresholds["challenge"] else "allow"


def test_nothing_is_answered_before_the_batch_is_full(bolt):
    component, link = bolt
    for i, record in enumerate(_records(BATCH - 1)):
        component.process(storm_tuple(f"in-{i}", record.to_values()))
    assert link.messages() == []


def test_each_score_is_emitted_anchored_to_its_input_and_then_the_input_is_acked(
    bolt, small_model_dir
):
    component, link = bolt
    records = _records(BATCH)
    for i, record in enumerate(records):
        component.process(storm_tuple(f"in-{i}", record.to_values()))

    messages = link.messages()
    assert [m["command"] for m in messages] == ["emit", "ack"] * BATCH
    expected, thresholds = _expected_scores(small_model_dir, records)
    for i, record in enumerate(records):
        emit, ack = messages[2 * i], messages[2 * i + 1]
        assert emit["anchors"] == [f"in-{i}"]
        assert ack["id"] == f"in-{i}"
        score = ScoreRecord.from_values(emit["tuple"])
        assert score.user_id == record.user_id
        assert score.score == expected[i]
        assert score.decision == _decision(expected[i], thresholds)
        assert score.feature_time_ms == record.window_end_ms
        assert score.scored_time_ms == NOW_MS
        assert score.source == record.source


def test_a_user_that_cannot_be_scored_is_failed_and_the_others_are_scored(bolt):
    component, link = bolt
    records = _records(BATCH)
    incomplete = {k: v for k, v in records[1].features.items() if k != "requests_1h"}
    records[1] = dataclasses.replace(records[1], features=incomplete)
    for i, record in enumerate(records):
        component.process(storm_tuple(f"in-{i}", record.to_values()))

    assert link.failed() == ["in-1"]
    assert sorted(link.acked()) == ["in-0", "in-2", "in-3"]
    assert sorted(a for m in link.emitted() for a in m["anchors"]) == ["in-0", "in-2", "in-3"]


class _BrokenEstimator:
    classes_ = np.array([0, 1])

    def predict_proba(self, matrix):
        raise ValueError("the model blew up")


def test_a_batch_whose_model_call_raises_is_failed_whole(bolt):
    component, link = bolt
    component.model = dataclasses.replace(component.model, estimator=_BrokenEstimator())
    for i, record in enumerate(_records(BATCH)):
        component.process(storm_tuple(f"in-{i}", record.to_values()))
    assert link.commands() == [("fail", f"in-{i}") for i in range(BATCH)]


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
