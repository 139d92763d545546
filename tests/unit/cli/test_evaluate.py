"""`botscore evaluate`: its arguments, the files it asks for and the figures it prints."""

import numpy as np
import pytest

from botscore.cli import evaluate
from botscore.cli.main import build_parser, main
from botscore.model.detection_metrics import Detection
from botscore.model.evaluation import (
    Evaluation,
    KindFigures,
    LeftOut,
    ScoredRows,
    VisitorFigures,
)
from botscore.model.features import CATALOG
from botscore.model.registry import ModelManifest, Thresholds
from botscore.model.scoring import RateCeiling
from botscore.model.training import TRAINING_TRAFFIC
from botscore.settings import EnforcementSettings, Settings
from botscore.simulator.visits import VisitSummary

DETECTION = Detection(
    bot_rows=300,
    human_rows=700,
    roc_auc=0.98765,
    pr_auc=0.95,
    bots_challenged=0.9,
    bots_blocked=0.8,
    human_rate_threshold=0.97,
    bots_at_human_rate=0.75,
    humans_challenged=0.0125,
    humans_blocked=0.001,
)


NONE_BLOCKED = ((5.0, 0.0), (10.0, 0.0), (30.0, 0.0), (60.0, 0.0), (300.0, 0.0))
BLOCKED = ((5.0, 0.5), (10.0, 0.6), (30.0, 0.9), (60.0, 0.9), (300.0, 0.9))
HUMANS = VisitSummary(40, 0.025, 0.0, 0.001, 0, 0.0, NONE_BLOCKED, 0.0, None)
SCRAPERS = VisitSummary(0, 0.0, 0.0, 0.0, 10, 0.9, BLOCKED, 0.8, (4.0, 12.5, 30.0))
VISITORS = VisitSummary(40, 0.025, 0.0, 0.001, 10, 0.9, BLOCKED, 0.8, (4.0, 12.5, 30.0))


def an_evaluation() -> Evaluation:
    manifest = ModelManifest(
        "baseline", "2", "model.pkl", "0" * 64, "1.7.2", CATALOG, Thresholds(0.5, 0.9)
    )
    return Evaluation(
        manifest=manifest,
        training=TRAINING_TRAFFIC,
        publish_interval_ms=2000,
        mix="wide",
        seeds=(101, 102),
        human_rate=0.001,
        overall=DETECTION,
        kinds=(
            KindFigures("human", False, 700, 0.0125, 0.001, 0.0, None, None),
            KindFigures("scraper", True, 300, 0.9, 0.8, 0.75, 0.99, 0.9),
        ),
        left_out=(LeftOut("scraper", 900, DETECTION), LeftOut("headless_browser", None, DETECTION)),
        visitors=VisitorFigures(
            3.0,
            EnforcementSettings(),
            RateCeiling(1200, 3, 1),
            VISITORS,
            (("human", HUMANS), ("scraper", SCRAPERS)),
        ),
        rows=ScoredRows(np.array([]), np.array([]), np.array([]), {}),
    )


@pytest.fixture
def recorded(monkeypatch):
    calls = []

    def fake_evaluate(model_dir, seeds, mix, human_rate, progress, block_requests_1m):
        calls.append(("evaluate", model_dir, list(seeds), mix, human_rate, block_requests_1m))
        progress("simulating")
        return an_evaluation()

    def fake_write(result, out):
        calls.append(("write", out))
        return [f"{out}/evaluation.md"]

    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(evaluate, "write_evaluation", fake_write)
    return calls


def test_defaults_evaluate_the_shipped_model_on_two_new_seeds_of_the_wide_mix(recorded, capsys):
    assert evaluate.run(Settings(), build_parser().parse_args(["evaluate"])) == 0
    assert recorded == [
        ("evaluate", "models/baseline", [101, 102], "wide", 0.001, 1200),
        ("write", "models/baseline"),
    ]
    captured = capsys.readouterr()
    assert captured.err == "evaluate: simulating\n"
    assert captured.out.splitlines() == [
        "held out: seeds 101, 102, wide mix, 300 bot and 700 human rows",
        "overall  ROC AUC 0.9877  PR AUC 0.9500  bots challenged  90.0% blocked  80.0% "
        "at 0.1% humans  75.0%  humans challenged 1.25% blocked 0.10%",
        "  human                challenged   1.2%  blocked   0.1%  at 0.1% humans   0.0%",
        "  scraper              challenged  90.0%  blocked  80.0%  at 0.1% humans  75.0%"
        "  ROC AUC 0.9900  PR AUC 0.9000",
        "per visitor (decisions 3 s after the features):",
        "  all                  40 humans: 2.50% ever challenged, 0.00% ever blocked, 0.10% of "
        "their requests affected; 10 bots: 90.0% blocked, 60.0% within 10 s (at most 80.0% "
        "could be: the others sent one request in their first 10 s); within 5, 10, 30, 60, 300 "
        "s: 50.0%, 60.0%, 90.0%, 90.0%, 90.0%; first request to block "
        "p50 4.0 s, p90 12.5 s, max 30.0 s",
        "  human                40 humans: 2.50% ever challenged, 0.00% ever blocked, 0.10% of "
        "their requests affected; 0 bots: 0.0% blocked, 0.0% within 10 s (at most 0.0% "
        "could be: the others sent one request in their first 10 s); within 5, 10, 30, 60, 300 "
        "s: 0.0%, 0.0%, 0.0%, 0.0%, 0.0%; no bot blocked",
        "  scraper              0 humans: 0.00% ever challenged, 0.00% ever blocked, 0.00% of "
        "their requests affected; 10 bots: 90.0% blocked, 60.0% within 10 s (at most 80.0% "
        "could be: the others sent one request in their first 10 s); within 5, 10, 30, 60, 300 "
        "s: 50.0%, 60.0%, 90.0%, 90.0%, 90.0%; first request to block "
        "p50 4.0 s, p90 12.5 s, max 30.0 s",
        "  Rate ceiling: 1 visitors (3 rows) had more than 1200 requests in a minute, and are "
        "blocked whatever the model scored, as the live classifier blocks them "
        "(`scoring.block_requests_1m`).",
        "each bot kind left out of training:",
        "  scraper              ROC AUC 0.9877  challenged  90.0%  blocked  80.0%  "
        "at 0.1% humans  75.0%",
        "  headless_browser     ROC AUC 0.9877  challenged  90.0%  blocked  80.0%  "
        "at 0.1% humans  75.0%  (never in training)",
        "wrote models/baseline/evaluation.md",
    ]


def test_every_argument_reaches_the_evaluation(recorded):
    argv = ["evaluate", "models/x", "--out", "o", "--seeds", "9", "10", "11"]
    args = build_parser().parse_args(
        [*argv, "--mix", "classic", "--human-rate", "0.01", "--block-requests-1m", "0"]
    )
    evaluate.run(Settings(), args)
    assert recorded == [("evaluate", "models/x", [9, 10, 11], "classic", 0.01, 0), ("write", "o")]


def test_an_unknown_mix_is_a_usage_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--mix", "everything"])


def test_runs_without_a_project_config_and_a_missing_model_is_one_line(tmp_path, capsys):
    absent = str(tmp_path / "absent.json")
    assert main(["--config", absent, "evaluate", str(tmp_path / "no-model")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("botscore: ") and "no-model" in err and err.count("\n") == 1


def test_an_out_that_is_a_file_is_refused_before_evaluating(recorded, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["evaluate", "models/baseline", "--out", str(a_file)]) == 1
    assert capsys.readouterr().err == (
        f"botscore: cannot write into {a_file}: {a_file} is not a directory\n"
    )
    assert recorded == []
