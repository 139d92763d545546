"""Training on simulated traffic: reproducible, through the feature stage's code, useful."""

import json

from botscore.model.registry import load_model
from botscore.model.training import SimulatedTraffic, train_model, training_rows

SMALL = SimulatedTraffic(users=300, rate=20, duration_s=600, seed=3)


def test_same_arguments_give_the_same_model(tmp_path):
    first, _ = train_model(tmp_path / "a", SMALL, holdout_seed=4)
    second, _ = train_model(tmp_path / "b", SMALL, holdout_seed=4)
    assert first.sha256 == second.sha256
    assert load_model(tmp_path / "a").manifest == first


def test_rows_are_what_the_topology_would_publish():
    x, y, kinds = training_rows(SMALL)
    assert x.shape[0] == len(y) == len(kinds) > 1000
    assert set(kinds) >= {"human", "scraper"}
    assert 0 < y.mean() < 1


def test_the_held_out_report_separates_bots_from_humans(tmp_path):
    _, report = train_model(tmp_path, SMALL, holdout_seed=4)
    assert report.holdout_auc > 0.9
    assert report.challenged["human"] < 0.05
    saved = json.loads((tmp_path / "training-report.json").read_text())
    assert saved["holdout_auc"] == report.holdout_auc
