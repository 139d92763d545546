"""Training on simulated traffic: reproducible, through the feature stage's code, useful."""

import json
import os
import pickle
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from botscore.errors import ModelError
from botscore.model import training
from botscore.model.features import CATALOG
from botscore.model.registry import EarlyBlock, Thresholds, load_model, read_manifest
from botscore.model.training import (
    BLOCK_CALIBRATION_SCALE,
    BLOCK_CALIBRATION_SEEDS,
    CALIBRATION_SEEDS,
    EARLY_BLOCK_STAGES,
    TRAINING_TRAFFIC,
    check_features,
    fit_classifier,
    read_calibration_seeds,
    read_training_traffic,
    simulate,
    train_model,
    training_rows,
)
from botscore.model.visitor_policy import choose_thresholds, combined, visitor_requests
from botscore.settings import AggregationSettings, EnforcementSettings
from botscore.simulator.spec import MAX_USERS, SimulationSpec

SMALL = SimulationSpec(users=300, bot_share=0.3, rate=20, duration_s=600, seed=3)
# Most tests need no larger simulations for the block threshold.
NO_BIG = {"block_calibration_seeds": ()}


def test_training_traffic_is_a_simulated_hour_and_keeps_its_values():
    # models/baseline was trained on exactly this; other values give another model.
    expected = SimulationSpec(
        users=3000, bot_share=0.3, rate=80.0, duration_s=3600.0, seed=7, mix="wide"
    )
    assert expected == TRAINING_TRAFFIC
    assert CALIBRATION_SEEDS == (8, 9, 10)
    assert (BLOCK_CALIBRATION_SEEDS, BLOCK_CALIBRATION_SCALE) == ((11, 12), 4)


def test_same_arguments_give_the_same_model(tmp_path):
    first, _ = train_model(tmp_path / "a", SMALL, calibration_seeds=(4,), confidence=0, **NO_BIG)
    second, _ = train_model(tmp_path / "b", SMALL, calibration_seeds=(4,), confidence=0, **NO_BIG)
    assert first.sha256 == second.sha256
    # the README: "reproducible byte for byte", the manifest and report included
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "b").iterdir()) and written
    for name in written:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert load_model(tmp_path / "a").manifest == first


def test_the_pickle_does_not_depend_on_the_threads_the_machine_offers():
    """A fitted model records its OpenMP threads: fitted on one always, two machines with
    other cores write the same bytes."""
    x, y, _ = training_rows(SMALL)
    fitted = []
    for threads in (2, 1):
        with threadpool_limits(limits=threads):
            fitted.append(pickle.dumps(fit_classifier(x, y, 0), protocol=5))
    assert fitted[0] == fitted[1]


def test_rows_are_what_the_topology_would_publish():
    x, y, kinds = training_rows(SMALL)
    assert x.shape[0] == len(y) == len(kinds) > 1000
    assert set(kinds) >= {"human", "scraper"}
    assert 0 < y.mean() < 1


def test_the_thresholds_come_from_every_calibration_seed_with_the_margin_asked(tmp_path):
    manifest, report = train_model(
        tmp_path, SMALL, calibration_seeds=(4, 5), confidence=0.5, **NO_BIG
    )
    assert report.calibration_auc > 0.9
    assert report.challenged["human"] < 0.05
    # The visitor policy's thresholds for both calibration simulations together.
    parts = []
    for seed in (4, 5):
        run = simulate(replace(SMALL, seed=seed))
        scores = load_model(tmp_path).predict_scores(run.rows()[0])
        parts.append(visitor_requests(run.logs, run.snapshots, scores, run.kind_of, run.bot_kinds))
    visitors = combined(parts)
    each = [
        choose_thresholds(p, EnforcementSettings(), 0.005, 0.5, EARLY_BLOCK_STAGES) for p in parts
    ]
    assert manifest.thresholds == Thresholds(
        max(t.challenge for t in each),
        max(t.block for t in each),
        (EarlyBlock(1, max(t.early_block[0].block for t in each)),),
    )
    assert EARLY_BLOCK_STAGES == (1,)
    assert (report.humans_challenged_target, report.confidence) == (0.005, 0.5)
    assert report.calibration_seeds == [4, 5]
    assert report.calibration_visitors.startswith(f"{int((~visitors.is_bot).sum())} humans: ")
    assert read_calibration_seeds(tmp_path) == (4, 5)


def test_calibration_seeds_must_be_given_and_not_the_training_seed(tmp_path):
    for seeds in ((), (SMALL.seed,), (4, SMALL.seed)):
        with pytest.raises(ModelError, match="calibration seeds"):
            train_model(tmp_path, SMALL, calibration_seeds=seeds)


def test_the_block_threshold_also_holds_on_the_larger_simulations(tmp_path):
    manifest, report = train_model(
        tmp_path, SMALL, calibration_seeds=(4,), block_calibration_seeds=(6,), confidence=0
    )
    model = load_model(tmp_path)
    enforcement = EnforcementSettings()
    chosen = []
    for spec in (
        replace(SMALL, seed=4),
        replace(SMALL, seed=6, users=SMALL.users * 4, rate=SMALL.rate * 4),
    ):
        run = simulate(spec)
        scores = model.predict_scores(run.rows()[0])
        requests = visitor_requests(run.logs, run.snapshots, scores, run.kind_of, run.bot_kinds)
        chosen.append(choose_thresholds(requests, enforcement, 0.005, 0, EARLY_BLOCK_STAGES))
        # No human of either simulation has a score in force at or above its row's threshold.
        human = ~requests.is_bot[requests.user] & (requests.age_s < enforcement.block_ttl_s)
        block_at = manifest.thresholds.block_for(requests.requests_1h)
        assert not (requests.score[human] >= block_at[human]).any()
    assert manifest.thresholds.block == max(t.block for t in chosen)
    assert manifest.thresholds.early_block == (
        EarlyBlock(1, max(t.early_block[0].block for t in chosen)),
    )
    assert (report.block_calibration_seeds, report.block_calibration_users) == ([6], 1200)
    assert read_calibration_seeds(tmp_path) == (4, 6)
    # Given thresholds need no calibration at all.
    _, given = train_model(
        tmp_path / "given", SMALL, calibration_seeds=(4,), thresholds=Thresholds(0.5, 0.9)
    )
    assert (given.block_calibration_seeds, given.block_calibration_users) == ([], 0)


def test_block_calibration_seeds_must_be_other_seeds(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the arguments")

    monkeypatch.setattr(training, "simulate", no_work)
    for seeds in ((SMALL.seed,), (6, 4)):
        with pytest.raises(ModelError, match="block calibration seeds"):
            train_model(tmp_path, SMALL, calibration_seeds=(4,), block_calibration_seeds=seeds)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"version": ""}, "version must be 1 to 64 letters"),
        ({"version": "6 new"}, "version must be 1 to 64 letters"),
        ({"humans_challenged": 2.0}, r"share of humans challenged must be in \[0, 1\)"),
        ({"confidence": 1.0}, r"confidence must be in \[0, 1\)"),
        ({"out_dir": "file"}, "file is not a directory"),
        ({"early_stages": (3, 1)}, "early block stages"),
        ({"early_stages": (0,)}, "early block stages"),
        ({"early_stages": (2, 2)}, "early block stages"),
    ],
)
def test_arguments_are_refused_before_any_simulation(tmp_path, monkeypatch, arguments, says):
    """Found after simulating and fitting, a mistake would cost minutes."""

    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the arguments")

    monkeypatch.setattr(training, "simulate", no_work)
    (tmp_path / "file").write_text("")
    given = dict(arguments)  # the parameter is shared by every run in the process
    out_dir = tmp_path / given.pop("out_dir", "m")
    with pytest.raises(ModelError, match=says):
        train_model(out_dir, SMALL, calibration_seeds=(4,), **given)


def test_training_traffic_too_large_to_calibrate_the_block_on_is_refused_first(
    tmp_path, monkeypatch
):
    """The block threshold's hours are four times the training's: ``--users`` within
    ``simulate``'s limit may be past it there."""

    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the arguments")

    monkeypatch.setattr(training, "simulate", no_work)
    with pytest.raises(ModelError, match="at most 1/4 of a simulation's limit: users must"):
        train_model(tmp_path / "m", replace(SMALL, users=MAX_USERS), calibration_seeds=(4,))


def test_the_report_reads_back(tmp_path):
    _, report = train_model(tmp_path, SMALL, calibration_seeds=(4,), confidence=0, **NO_BIG)
    saved = json.loads((tmp_path / "training-report.json").read_text())
    assert saved["calibration_auc"] == report.calibration_auc
    assert read_training_traffic(tmp_path) == (SMALL, AggregationSettings().publish_interval_ms)
    assert saved["traffic"] == {
        "users": 300,
        "bot_share": 0.3,
        "rate": 20,
        "duration_s": 600,
        "seed": 3,
        "mix": "classic",
        "publish_interval_ms": AggregationSettings().publish_interval_ms,
    }


def test_training_in_processes_with_other_string_hashes_writes_the_same_bytes(
    tmp_path, project_root
):
    """The README's "reproducible byte for byte" across runs, not only within one: nothing
    written may follow the order of a set or dict of strings, which each process hashes
    with its own seed."""
    train = (
        "import sys\n"
        "from botscore.model.training import train_model\n"
        "from botscore.simulator.spec import SimulationSpec\n"
        f"train_model(sys.argv[1], {SMALL!r}, calibration_seeds=(4,), confidence=0)\n"
    )
    runs = []
    for hash_seed in ("1", "2"):  # side by side: each takes one core most of the time
        env = {**os.environ, "PYTHONPATH": str(project_root / "src"), "PYTHONHASHSEED": hash_seed}
        out = tmp_path / hash_seed
        runs.append((out, subprocess.Popen([sys.executable, "-c", train, str(out)], env=env)))
    written = []
    for out, process in runs:
        assert process.wait(timeout=600) == 0
        written.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert written[0].keys() == written[1].keys() and written[0]
    for name in written[0]:
        assert written[0][name] == written[1][name], name


def test_a_model_directory_without_its_training_traffic_is_refused(tmp_path):
    with pytest.raises(ModelError, match="cannot tell what the model was trained on"):
        read_training_traffic(tmp_path)
    (tmp_path / "training-report.json").write_text('{"traffic": {"users": 3}}')
    with pytest.raises(ModelError, match="KeyError"):
        read_training_traffic(tmp_path)


def test_a_model_reads_the_features_it_is_given_in_their_order(tmp_path):
    features = ("requests_1h", "error_ratio_1h", "distinct_paths_1h", "interarrival_cv")
    manifest, _ = train_model(
        tmp_path, SMALL, calibration_seeds=(4,), confidence=0, features=features, **NO_BIG
    )
    assert manifest.feature_names == features
    assert read_manifest(tmp_path).feature_names == features
    model = load_model(tmp_path)
    run = simulate(replace(SMALL, seed=4))
    x = run.rows(features)[0]
    assert x.shape[1] == 4 and model.predict_scores(x).shape == (len(x),)
    # the columns are the named features, not the catalogue's first four
    np.testing.assert_array_equal(x[:, 1], run.rows()[0][:, CATALOG.index("error_ratio_1h")])


@pytest.mark.parametrize(
    ("features", "stages", "says"),
    [
        ((), (1,), "each must be in the catalogue"),
        (("requests_1h", "nope"), (1,), "each must be in the catalogue"),
        (("requests_1h", "requests_1h"), (1,), "once"),
        (("requests_1m",), (1,), "early block stages need the model to read requests_1h"),
    ],
)
def test_features_are_checked_before_any_simulation(tmp_path, monkeypatch, features, stages, says):
    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the features")

    monkeypatch.setattr(training, "simulate", no_work)
    with pytest.raises(ModelError, match=says):
        train_model(tmp_path, SMALL, features=features, early_stages=stages)
    # without staged blocks, a model need not read requests_1h
    assert check_features(("requests_1m",), ()) == ("requests_1m",)
