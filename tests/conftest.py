"""Shared fixtures: the project root, the code generator, a small trained model, and
measured figures."""

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

from botscore.model.registry import Thresholds
from botscore.model.training import train_model
from botscore.simulator.spec import SimulationSpec

ROOT = Path(__file__).resolve().parents[1]

# CI replays the same examples every run, so its verdict never depends on the draw; a
# developer's runs draw new ones (HYPOTHESIS_PROFILE=ci repeats CI's).
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def proto_generator() -> ModuleType:
    """``tools/gen_proto.py`` (what `make proto` runs), for checking the committed code."""
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "tools" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train_model(
        out,
        SimulationSpec(users=300, bot_share=0.3, rate=20, duration_s=600, seed=3),
        calibration_seeds=(4,),
        # Fixed, so that the components' tests see every decision in small samples.
        thresholds=Thresholds(challenge=0.5, block=0.9),
    )
    return out


_FIGURES: list[str] = []


@pytest.fixture(scope="session")
def report_figure():
    """Record a measured figure; all of them are printed at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("measured figures")
        for line in _FIGURES:
            terminalreporter.line(line)
