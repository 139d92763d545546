"""Shared fixtures: the project root and a freshly trained small model directory."""

from pathlib import Path

import pytest

from botscore.training import train_baseline

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train_baseline(out, users=2000, seed=3)
    return out
