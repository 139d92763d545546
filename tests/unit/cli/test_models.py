"""`botscore models`: what publish refuses before Redis is asked, and the listing."""

import pytest

from botscore.cli import main, models
from botscore.model.releases import PublishedRelease
from tests.unit.model.release_fakes import model_variant

# Nothing listens there: a test that reached Redis would fail with "Redis at ...".
NO_REDIS = {"BOTSCORE_REDIS_HOST": "127.0.0.1", "BOTSCORE_REDIS_PORT": "1"}


@pytest.fixture
def env(monkeypatch, project_root):
    for name, value in NO_REDIS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BOTSCORE_SCORING_MODEL_SIGNING_KEY", raising=False)
    monkeypatch.chdir(project_root)  # its config.json


@pytest.mark.parametrize(
    ("changes", "argv", "says"),
    [
        ({"sklearn_version": "0.24.2"}, [], "pickled with scikit-learn 0.24.2"),
        ({"feature_names": ["mouse_entropy"]}, [], "mouse_entropy"),
        ({"sha256": "0" * 64}, [], "SHA-256 of release"),
        ({}, ["--sign"], "no signing key: set BOTSCORE_SCORING_MODEL_SIGNING_KEY"),
    ],
)
def test_publish_refuses_before_asking_redis(
    env, small_model_dir, tmp_path, capsys, changes, argv, says
):
    directory = model_variant(small_model_dir, tmp_path / "m", **changes)
    assert main.main(["models", "publish", str(directory), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("botscore: ") and says in err
    assert "Redis at" not in err


def test_a_reachable_redis_is_needed_to_publish(env, small_model_dir, capsys):
    assert main.main(["models", "publish", str(small_model_dir)]) == 1
    assert "Redis at 127.0.0.1:1" in capsys.readouterr().err


def test_the_listing_marks_the_live_release():
    releases = [
        PublishedRelease("m/1", "a" * 64, False, 1_700_000_000_000, 1_700_000_100_000, False),
        PublishedRelease("m/2", "b" * 64, True, 1_700_000_200_000, 1_700_000_200_000, True),
    ]
    header, first, second = models.render(releases, "models/baseline").splitlines()
    assert header.split() == [
        "release",
        "published",
        "(UTC)",
        "made",
        "live",
        "(UTC)",
        "signed",
        "sha256",
    ]
    assert first.startswith("  m/1 ") and "2023-11-14 22:13:20" in first and " no " in first
    assert second.startswith("* m/2 ") and " yes " in second and "b" * 16 in second


def test_an_empty_store_names_the_bundled_model():
    assert models.render([], "models/baseline") == (
        "nothing published: classifiers score with the bundled models/baseline"
    )
