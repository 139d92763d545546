"""`botscore models`: what publish refuses before Redis is asked, and the listing."""

import pytest

from botscore.cli import main, models
from botscore.model.releases import PublishedRelease
from tests.unit.model.release_fakes import model_variant, repickled
from tests.unit.model.test_shadow_report import score

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


def _a_file(source, target):
    target.write_text("")
    return target


def _as_directory(name):
    def make(source, target):
        model_variant(source, target)
        (target / name).unlink()
        (target / name).mkdir()
        return target

    return make


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_a_file, "m/manifest.json: Not a directory"),
        (_as_directory("manifest.json"), "m/manifest.json: Is a directory"),
        (_as_directory("model.pkl"), "m/model.pkl: Is a directory"),
        (
            lambda source, target: model_variant(source, target, feature_names=[1, 2, 3]),
            "feature_names must be a non-empty list",
        ),
        (
            lambda source, target: model_variant(source, target, name="a/b"),
            "name must be 1 to 64 letters",
        ),
        (lambda source, target: repickled(source, target, {"a": 1}), "holds no classifier"),
    ],
    ids=["dir-a-file", "manifest-a-dir", "pickle-a-dir", "numbered-features", "name", "dict"],
)
def test_publish_refuses_a_bad_directory_in_one_line(
    env, small_model_dir, tmp_path, capsys, make, says
):
    assert main.main(["models", "publish", str(make(small_model_dir, tmp_path / "m"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("botscore: ") and err.count("\n") == 1 and says in err
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


def test_the_listing_says_why_a_release_is_unusable():
    releases = [
        PublishedRelease("m/1", "a" * 64, False, 1_700_000_000_000, 0, True),
        PublishedRelease("x/1", "", False, 0, 0, False, problem="no sha256 in the manifest"),
    ]
    _, sound, unusable = models.render(releases, "models/baseline").splitlines()
    assert sound.endswith("a" * 16)
    assert unusable.startswith("  x/1 ")
    assert unusable.endswith("unusable: no sha256 in the manifest")


def test_an_empty_store_names_the_bundled_model():
    assert models.render([], "models/baseline") == (
        "nothing published: classifiers started from now on score with the bundled models/baseline "
        "(a running one keeps the model it has)"
    )


def test_the_listing_marks_the_challenger():
    releases = [
        PublishedRelease("m/1", "a" * 64, False, 1_700_000_000_000, 1_700_000_100_000, True),
        PublishedRelease("m/2", "b" * 64, False, 1_700_000_200_000, 0, False, shadow=True),
    ]
    _, live, shadow = models.render(releases, "models/baseline").splitlines()
    assert live.startswith("* m/1 ") and shadow.startswith("~ m/2 ")


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "shadow"],
        ["models", "shadow", "m/1", "--off"],
        ["models", "compare", "--last", "0"],
        ["models", "compare", "--last", "x"],
    ],
    ids=["shadow-nothing", "shadow-both", "last-zero", "last-not-a-number"],
)
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main.build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_compare_reads_both_score_topics_and_reports(env, monkeypatch, tmp_path, capsys):
    champion = [score(i, 0.2, "allow") for i in range(3)]
    challenger = [score(i, 0.6, "challenge", version="3") for i in range(2)]
    topics = {"threat-scores": (champion, 0), "threat-scores-shadow": (challenger, 1)}
    read = []

    def read_scores(settings, topic, last):
        read.append((topic, last))
        return topics[topic]

    monkeypatch.setattr(models, "_read_scores", read_scores)
    labels = tmp_path / "labels.csv"
    labels.write_text("user_id,kind,is_bot\nu0,human,0\nu1,scraper,1\n")
    assert main.main(["models", "compare", "--last", "100", "--labels", str(labels)]) == 0
    assert read == [("threat-scores", 100), ("threat-scores-shadow", 100)]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("threat-scores against threat-scores-shadow (undecodable, left out: 0 and 1)")
    assert out[2].startswith("joined 2 messages scored by both (only the champion's: 1,")
    assert "  allow     -> challenge        2 (100.0%)  changed" in out
    per_kind = out[-2:]
    assert [line.split() for line in per_kind] == [
        ["human", "1", "0.0%", "0.0%", "/", "0.0%", "100.0%", "/", "0.0%"],
        ["scraper", "1", "0.0%", "0.0%", "/", "0.0%", "100.0%", "/", "0.0%"],
    ]


def test_compare_refuses_a_file_that_is_not_labels(env, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main.main(["models", "compare", "--labels", str(other)]) == 1
    assert "is not a simulation labels file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("previous", "says"),
    [("m/3", "shadow scoring with m/3 stopped"), (None, "no challenger was set")],
)
def test_shadow_off_says_what_it_stopped(env, monkeypatch, capsys, previous, says):
    class Store:
        def stop_shadow(self):
            return previous

    monkeypatch.setattr(models, "create_redis", lambda settings: None)
    monkeypatch.setattr(models, "ReleaseStore", lambda client: Store())
    assert main.main(["models", "shadow", "--off"]) == 0
    assert capsys.readouterr().out == f"{says}\n"
