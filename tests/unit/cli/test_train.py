"""`botscore train`: the traffic it trains on and the report it prints."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from botscore.cli import train
from botscore.cli.main import build_parser, main
from botscore.model import training
from botscore.model.features import CATALOG
from botscore.model.registry import EarlyBlock, Thresholds
from botscore.model.training import TRAINING_TRAFFIC
from botscore.settings import Settings


@pytest.fixture(autouse=True)
def evaluations(monkeypatch):
    """The model directories ``train`` evaluated after writing them."""
    evaluated = []
    monkeypatch.setattr(train, "evaluate_and_report", evaluated.append)
    return evaluated


def fake_train_model(calls, features_asked=None):
    features_asked = [] if features_asked is None else features_asked

    def train_model(
        out,
        traffic,
        calibration_seeds,
        block_calibration_seeds,
        early_stages,
        version,
        thresholds,
        humans_challenged,
        confidence,
        progress,
        features,
        name,
    ):
        given = (calibration_seeds, block_calibration_seeds, thresholds)
        calls.append((out, traffic, *given, humans_challenged, confidence, early_stages))
        features_asked.append(features)
        progress("fitting")
        chosen = Thresholds(0.97, 0.9995, tuple(EarlyBlock(s, 0.99) for s in early_stages))
        written = thresholds or chosen
        manifest = SimpleNamespace(
            name=name, version=version, thresholds=written, feature_names=tuple(features)
        )
        report = SimpleNamespace(
            rows=1234,
            calibration_seeds=calibration_seeds,
            block_calibration_seeds=block_calibration_seeds,
            block_calibration_users=4 * traffic.users if block_calibration_seeds else 0,
            calibration_rows=567,
            calibration_auc=0.98765,
            challenged={"human": 0.01, "scraper": 0.9},
            blocked={"human": 0.0, "scraper": 0.755},
            humans_challenged_target=None if thresholds else humans_challenged,
            confidence=None if thresholds else confidence,
            calibration_visitors="the visitors' figures",
        )
        return manifest, report

    return train_model


def test_trains_with_the_simulation_asked_for_reports_and_evaluates(
    monkeypatch, capsys, evaluations
):
    calls = []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls))
    argv = ["train", "--out", "m", "--users", "10", "--rate", "5", "--duration", "60"]
    args = build_parser().parse_args([*argv, "--seed", "3", "--version", "3", "--mix", "wide"])
    assert train.run(Settings(), args) == 0
    traffic = replace(TRAINING_TRAFFIC, users=10, rate=5.0, duration_s=60.0, seed=3, mix="wide")
    assert calls == [("m", traffic, [8, 9, 10], [11, 12], None, 0.005, 0.95, [1])]
    assert evaluations == ["m"]
    captured = capsys.readouterr()
    assert captured.err == "train: fitting\n"
    assert captured.out.splitlines() == [
        "wrote m: baseline 3, 1234 rows",
        "thresholds: challenge 0.970000, block 0.999500 "
        "(chosen for at most 0.50% of humans challenged, 95% sure)",
        "  block 0.990000 where requests_1h <= 1",
        "calibration visitors: the visitors' figures",
        "calibration seeds 8, 9, 10: 567 rows, AUC 0.9877",
        "block threshold also above every human of seeds 11, 12 (40 users each)",
        "  human                challenged   1.0%  blocked   0.0%",
        "  scraper              challenged  90.0%  blocked  75.5%",
    ]


def test_defaults_are_the_default_simulated_traffic(monkeypatch):
    calls = []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls))
    train.run(Settings(), build_parser().parse_args(["train"]))
    default = ("models/baseline", TRAINING_TRAFFIC, [8, 9, 10], [11, 12], None, 0.005, 0.95, [1])
    assert calls == [default]


def test_a_model_reads_every_feature_but_those_left_out(monkeypatch, capsys):
    calls, features = [], []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls, features))
    train.run(Settings(), build_parser().parse_args(["train"]))
    argv = ["train", "--without", "js_check_ratio_1h", "datacenter_ip_ratio_4h"]
    train.run(Settings(), build_parser().parse_args(argv))
    assert features[0] == list(CATALOG)
    assert features[1] == [n for n in CATALOG if n not in argv[2:]] and len(features[1]) == 12
    out = capsys.readouterr().out
    assert out.count("features: ") == 1 and "js_check_ratio_1h" not in out.split("features: ")[1]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--without", "no_such_feature"])
    train.run(Settings(), build_parser().parse_args(["train", "--name", "no-sensor"]))
    assert "wrote models/baseline: no-sensor 7, 1234 rows" in capsys.readouterr().out


def test_early_block_stages_are_asked_for_or_none(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls))
    train.run(Settings(), build_parser().parse_args(["train", "--early-block-stages", "1", "3"]))
    train.run(Settings(), build_parser().parse_args(["train", "--early-block-stages"]))
    assert [c[-1] for c in calls] == [[1, 3], []]
    out = capsys.readouterr().out
    assert "  block 0.990000 where requests_1h <= 3\n" in out
    assert out.count("where requests_1h") == 2


def test_thresholds_are_chosen_for_the_share_asked_or_given(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls))
    argv = ["train", "--humans-challenged", "0.01", "--confidence", "0.9"]
    train.run(Settings(), build_parser().parse_args(argv))
    train.run(Settings(), build_parser().parse_args(["train", "--thresholds", "0.6", "0.8"]))
    assert [c[4:7] for c in calls] == [(None, 0.01, 0.9), (Thresholds(0.6, 0.8), 0.005, 0.95)]
    assert "block 0.800000 (given)" in capsys.readouterr().out


def test_runs_without_a_project_config(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(train, "train_model", fake_train_model(calls))
    argv = ["--config", str(tmp_path / "absent.json"), "train", "--calibration-seeds", "9", "11"]
    assert main(argv) == 0
    assert calls[0][2] == [9, 11]
    # No larger simulations for the block threshold: an empty list.
    assert main([*argv[:3], "--block-calibration-seeds"]) == 0
    assert calls[1][3] == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--version", ""], "version must be 1 to 64 letters"),
        (["--version", "a/b"], "version must be 1 to 64 letters"),
        (["--name", "no sensor"], "name must be 1 to 64 letters"),
        (["--humans-challenged", "2"], "share of humans challenged must be in [0, 1), got 2.0"),
        (["--confidence", "1"], "confidence must be in [0, 1), got 1.0"),
        (["--out", "{file}"], "{file} is not a directory"),
        (["--block-calibration-seeds", "9"], "block calibration seeds [9] must differ"),
        (["--without", "requests_1h"], "early block stages need the model to read requests_1h"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_any_work(
    monkeypatch, tmp_path, capsys, evaluations, argv, says
):
    """The real ``train_model``, stopped if it got as far as simulating (minutes)."""

    def no_work(*args, **kwargs):
        raise AssertionError("simulated before checking the arguments")

    monkeypatch.setattr(training, "simulate", no_work)
    a_file = tmp_path / "file"
    a_file.write_text("")
    argv = [arg.format(file=a_file) for arg in argv]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "m")]
    assert main(["--config", str(tmp_path / "absent.json"), "train", *out, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("botscore: ") and err.count("\n") == 1
    assert says.format(file=a_file) in err
    assert evaluations == []
