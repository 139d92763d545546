"""The evaluation: held-out seeds only, each kind left out of exactly its own training rows,
the same bytes for the same arguments."""

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from botscore.cli.main import main
from botscore.errors import ModelError
from botscore.model import evaluation as evaluation_module
from botscore.model.evaluation import evaluate, left_out_training
from botscore.model.evaluation_report import write_evaluation
from botscore.model.scoring import RateCeiling
from botscore.model.training import (
    DEFAULT_VERSION,
    read_training_traffic,
    train_model,
    training_rows,
)
from botscore.simulator.profiles import MIXES, PROFILES
from botscore.simulator.spec import SimulationSpec

# Small enough to evaluate in seconds; held-out seed 5 has rows of every kind of the wide mix.
TINY = SimulationSpec(users=80, bot_share=0.5, rate=8, duration_s=240, seed=3)
SEED = 5
CLASSIC_BOTS = [k for k in MIXES["classic"] if PROFILES[k].is_bot]
WIDE_BOTS = [k for k in MIXES["wide"] if PROFILES[k].is_bot]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # HistGradientBoosting's OpenMP threads spin while they wait: on a busy 2-core machine
    # two of them made these fits ten times slower.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-model")
    train_model(out, TINY, calibration_seeds=(4,), block_calibration_seeds=(), confidence=0)
    return out


class ConstantModel:
    classes_ = np.array([0, 1])

    def predict_proba(self, x):
        return np.tile([0.5, 0.5], (len(x), 1))


def test_each_kind_is_left_out_of_exactly_its_own_training_rows(tiny_model, monkeypatch):
    fits = []

    def fit(x, y, seed):
        fits.append((x, y, seed))
        return ConstantModel()

    monkeypatch.setattr(evaluation_module, "fit_classifier", fit)
    result = evaluate(tiny_model, seeds=(SEED,))
    x, y, kinds = training_rows(TINY)
    kinds = np.array(kinds)
    assert len(fits) == len(CLASSIC_BOTS)
    for (fx, fy, seed), kind in zip(fits, CLASSIC_BOTS, strict=True):
        keep = kinds != kind
        assert 0 < keep.sum() < len(kinds), kind
        np.testing.assert_array_equal(fx, x[keep])
        np.testing.assert_array_equal(fy, y[keep])
        assert seed == TINY.seed
    assert [left.kind for left in result.left_out] == WIDE_BOTS
    fitted = {left.kind: left.training_rows for left in result.left_out}
    assert fitted == {k: int((kinds != k).sum()) if k in CLASSIC_BOTS else None for k in WIDE_BOTS}
    # a constant model separates nothing; a kind the model never saw keeps the model's scores
    left = {left.kind: left.detection for left in result.left_out}
    assert left["scraper"].roc_auc == 0.5
    by_kind = {k.kind: k for k in result.kinds}
    assert left["headless_browser"].roc_auc == by_kind["headless_browser"].roc_auc


def test_left_out_training_drops_only_that_kinds_rows():
    x = np.arange(10.0).reshape(5, 2)
    y = np.array([0, 1, 1, 0, 1])
    kinds = np.array(["human", "scraper", "crawler", "human", "scraper"])
    lx, ly = left_out_training(x, y, kinds, "scraper")
    np.testing.assert_array_equal(lx, x[[0, 2, 3]])
    np.testing.assert_array_equal(ly, [0, 1, 0])


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ((3,), "held-out seed 3 is the one the model was trained on"),
        ((5, 5), "repeat"),
        ((), "at least one"),
        ((5, 4), r"held-out seeds \[4\] chose the model's thresholds"),
    ],
)
def test_held_out_seeds_must_be_new(tiny_model, seeds, message):
    with pytest.raises(ModelError, match=message):
        evaluate(tiny_model, seeds=seeds)


def test_an_impossible_human_rate_is_refused_before_simulating(tiny_model):
    with pytest.raises(ModelError, match=r"within \[0, 1\), got 1.5"):
        evaluate(tiny_model, seeds=(SEED,), human_rate=1.5)


def test_a_kind_missing_from_the_held_out_traffic_is_an_error(tiny_model):
    # seed 6's few power users never visit in these four minutes
    with pytest.raises(ModelError, match="no rows of power_user"):
        evaluate(tiny_model, seeds=(6,))


def test_the_command_and_the_library_write_the_same_bytes(tiny_model, tmp_path, capsys):
    """Two runs with the same arguments, one through ``botscore evaluate``: same files, same
    bytes (the PNGs too: no dates, no software stamp)."""
    assert main(["evaluate", str(tiny_model), "--out", str(tmp_path / "a"), "--seeds", "5"]) == 0
    out = capsys.readouterr().out
    assert "each bot kind left out of training:" in out
    assert "headless_browser" in out and "(never in training)" in out
    written = write_evaluation(evaluate(tiny_model, seeds=(SEED,)), tmp_path / "b")
    names = sorted(p.name for p in written)
    assert names == sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [
        "evaluation-pr.png",
        "evaluation-roc.png",
        "evaluation-scores.png",
        "evaluation.json",
        "evaluation.md",
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in names[:3]:
        assert (tmp_path / "a" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    saved = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    kinds = {k["kind"]: k for k in saved["kinds"]}
    assert list(kinds) == list(MIXES["wide"])
    assert saved["held_out"] == {"mix": "wide", "seeds": [5]}
    assert saved["training"]["seed"] == read_training_traffic(tiny_model)[0].seed
    overall = saved["overall"]
    assert overall["bot_rows"] == sum(k["rows"] for k in kinds.values() if k["is_bot"])
    assert overall["human_rows"] == sum(k["rows"] for k in kinds.values() if not k["is_bot"])
    assert all(k["roc_auc"] is None for k in kinds.values() if not k["is_bot"])
    assert [left["kind"] for left in saved["left_out"]] == WIDE_BOTS

    summary = (tmp_path / "a" / "evaluation.md").read_text()
    assert summary.startswith(f"# Evaluation of baseline {DEFAULT_VERSION}\n")
    for kind in MIXES["wide"]:
        assert f"| {kind}" in summary, kind
    # One row per kind in the per-visitor table too, and the figures in the JSON.
    visitors = summary.split("## Per visitor")[1].split("## Figures")[0]
    assert [line.split(" | ")[0] for line in visitors.splitlines() if line.startswith("| ")][
        1:
    ] == ["| all", *(f"| {kind}" for kind in MIXES["wide"])]
    assert list(saved["visitors"]["kinds"]) == list(MIXES["wide"])
    humans = sum(v["humans"] for v in saved["visitors"]["kinds"].values())
    assert saved["visitors"]["overall"]["humans"] == humans > 0
    assert "![ROC curves](evaluation-roc.png)" in summary
    assert "Rate ceiling: 0 visitors (0 rows) had more than 1200 requests" in summary
    ceiling = saved["visitors"]["rate_ceiling"]
    assert ceiling == {"block_requests_1m": 1200, "rows": 0, "visitors": 0}


def test_the_per_visitor_figures_block_past_the_rate_ceiling_as_the_classifier_does(tiny_model):
    """No simulated visitor nears the default ceiling; at 2 requests a minute many do, and
    each of them is blocked, while the per-row figures stay the model's own."""
    default = evaluate(tiny_model, seeds=(SEED,))
    low = evaluate(tiny_model, seeds=(SEED,), block_requests_1m=2)
    assert default.visitors.rate_ceiling == RateCeiling(1200, 0, 0)
    ceiling = low.visitors.rate_ceiling
    assert ceiling.block_requests_1m == 2 and 0 < ceiling.visitors < ceiling.rows
    assert low.overall == default.overall and low.kinds == default.kinds
    before, after = default.visitors.overall, low.visitors.overall
    assert after.humans_blocked > before.humans_blocked
    assert after.bots_blocked >= before.bots_blocked
    assert after.humans == before.humans and after.bots == before.bots


def test_a_model_of_fewer_features_is_evaluated_and_refitted_on_them(tmp_path, monkeypatch):
    features = ("requests_1h", "requests_1m", "distinct_paths_1h", "error_ratio_1h")
    train_model(
        tmp_path,
        TINY,
        calibration_seeds=(4,),
        block_calibration_seeds=(),
        confidence=0,
        features=features,
    )
    widths = []
    real_fit = evaluation_module.fit_classifier

    def fit(x, y, seed):
        widths.append(x.shape[1])
        return real_fit(x, y, seed)

    monkeypatch.setattr(evaluation_module, "fit_classifier", fit)
    result = evaluate(tmp_path, seeds=(SEED,))
    assert widths == [len(features)] * len(CLASSIC_BOTS)
    assert result.manifest.feature_names == features
    assert 0.5 < result.overall.roc_auc <= 1
