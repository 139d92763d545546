"""Model directories: what loads, and every way a model is refused."""

import hashlib
import json
import os
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier

from botscore.errors import ModelError
from botscore.model.features import CATALOG
from botscore.model.registry import (
    EarlyBlock,
    Thresholds,
    check_output_dir,
    load_model,
    read_manifest,
    resolve_model_dir,
)
from tests.unit.model.release_fakes import model_variant, repickled


@pytest.fixture
def model_copy(small_model_dir, tmp_path):
    target = tmp_path / "m"
    shutil.copytree(small_model_dir, target)
    return target


def _edit_manifest(directory, **changes):
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_loads_a_verified_model(small_model_dir):
    model = load_model(small_model_dir)
    assert model.manifest.feature_names == CATALOG
    scores = model.predict_scores(np.zeros((3, len(CATALOG))))
    assert scores.shape == (3,)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_committed_baseline_model_loads(project_root):
    assert load_model(project_root / "models" / "baseline").manifest.name == "baseline"


def test_refuses_a_tampered_pickle(model_copy):
    with (model_copy / "model.pkl").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256 of"):
        load_model(model_copy)


def test_refuses_features_the_messages_do_not_carry(model_copy):
    _edit_manifest(model_copy, feature_names=[*CATALOG[:-1], "mouse_entropy"])
    with pytest.raises(ModelError, match="mouse_entropy"):
        load_model(model_copy)


def test_refuses_another_scikit_learn_version(model_copy):
    _edit_manifest(model_copy, sklearn_version="0.24.2")
    with pytest.raises(ModelError, match=r"0\.24\.2"):
        load_model(model_copy)


def test_refuses_a_feature_count_that_does_not_match_the_estimator(model_copy):
    _edit_manifest(model_copy, feature_names=list(CATALOG[:-1]))
    wanted = f"expects {len(CATALOG)} features, manifest lists {len(CATALOG) - 1}"
    with pytest.raises(ModelError, match=wanted):
        load_model(model_copy)


def test_missing_directory_says_where_it_looked(tmp_path):
    with pytest.raises(ModelError, match=r"no manifest\.json"):
        load_model(tmp_path / "nowhere")


def test_thresholds_decide_and_validate():
    thresholds = Thresholds(challenge=0.5, block=0.9)
    assert [thresholds.decide(s) for s in (0.1, 0.5, 0.89, 0.9, 1.0)] == [
        "allow",
        "challenge",
        "challenge",
        "block",
        "block",
    ]
    with pytest.raises(ModelError):
        Thresholds(challenge=0.95, block=0.9)


def test_early_block_stages_decide_the_first_rows_and_validate():
    thresholds = Thresholds(0.5, 0.9, (EarlyBlock(1, 0.6), EarlyBlock(3, 0.8)))
    rows = [(0.7, 1), (0.7, 2), (0.85, 2), (0.85, 3), (0.85, 4), (0.95, 40), (0.7, float("nan"))]
    assert [thresholds.decide(s, n) for s, n in rows] == [
        "block",
        "challenge",
        "block",
        "block",
        "challenge",
        "block",
        "challenge",
    ]
    np.testing.assert_array_equal(
        thresholds.block_for(np.array([0, 1, 2, 3, 4, np.nan])), [0.6, 0.6, 0.8, 0.8, 0.9, 0.9]
    )
    assert Thresholds.from_dict(thresholds.to_dict()) == thresholds
    assert "early_block" not in Thresholds(0.5, 0.9).to_dict()  # older manifests unchanged
    for stages in ((EarlyBlock(3, 0.6), EarlyBlock(1, 0.8)), (EarlyBlock(2, 0.6),) * 2):
        with pytest.raises(ModelError, match="increasing"):
            Thresholds(0.5, 0.9, stages)
    for count, block in ((0, 0.5), (True, 0.5), (1.5, 0.5), (1, 1.5), (1, "0.5")):
        with pytest.raises(ModelError, match="early block"):
            EarlyBlock(count, block)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="early_block"):
        Thresholds.from_dict({"challenge": 0.5, "block": 0.9, "early_block": {"1": 0.6}})


def test_refuses_early_block_thresholds_without_the_feature_they_depend_on(model_copy):
    early = {"challenge": 0.5, "block": 0.9, "early_block": [{"max_requests_1h": 1, "block": 0.6}]}
    _edit_manifest(model_copy, thresholds=early)
    assert load_model(model_copy).manifest.thresholds.early_block == (EarlyBlock(1, 0.6),)
    _edit_manifest(model_copy, feature_names=[n for n in CATALOG if n != "requests_1h"])
    with pytest.raises(
        ModelError, match="early block thresholds need the model to read requests_1h"
    ):
        load_model(model_copy)


def test_relative_model_dirs_resolve_from_the_code_root_not_the_working_dir(
    project_root, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model_dir("models/baseline")
    assert resolved == project_root / "src" / "models" / "baseline"
    assert load_model(resolved).manifest.name == "baseline"
    assert resolve_model_dir(tmp_path) == tmp_path


def test_refuses_an_absolute_artifact_path(model_copy, tmp_path):
    outside = tmp_path / "elsewhere.pkl"
    shutil.copy(model_copy / "model.pkl", outside)
    _edit_manifest(model_copy, artifact=str(outside))
    with pytest.raises(ModelError, match=rf"manifest\.json.*{outside}"):
        load_model(model_copy)


@pytest.mark.parametrize("artifact", ["../elsewhere.pkl", "sub/../../elsewhere.pkl", "./model.pkl"])
def test_refuses_an_artifact_that_is_not_a_plain_file_name(model_copy, tmp_path, artifact):
    shutil.copy(model_copy / "model.pkl", tmp_path / "elsewhere.pkl")
    (model_copy / "sub").mkdir()
    _edit_manifest(model_copy, artifact=artifact)
    with pytest.raises(ModelError, match=rf"manifest\.json.*{re.escape(artifact)}"):
        load_model(model_copy)


def test_refuses_an_artifact_that_links_out_of_the_model_directory(model_copy, tmp_path):
    outside = tmp_path / "elsewhere.pkl"
    (model_copy / "model.pkl").rename(outside)
    (model_copy / "model.pkl").symlink_to(outside)
    with pytest.raises(ModelError, match=r"outside"):
        load_model(model_copy)


def test_a_plain_artifact_name_inside_the_directory_loads(model_copy):
    _edit_manifest(model_copy, artifact="renamed.pkl")
    (model_copy / "model.pkl").rename(model_copy / "renamed.pkl")
    assert load_model(model_copy).manifest.artifact == "renamed.pkl"


def test_the_pickle_is_read_once_and_the_verified_bytes_are_what_is_unpickled(
    model_copy, monkeypatch
):
    """Swapping the file after it was first opened must not change what is loaded."""
    artifact = (model_copy / "model.pkl").resolve()
    swapped = model_copy / "swapped.tmp"
    swapped.write_bytes(pickle.dumps("not the reviewed model"))
    opens = []
    real_open = os.open

    def spying_open(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if Path(path).resolve() == artifact:
            opens.append(path)
            if len(opens) == 1:
                os.replace(swapped, artifact)  # the open descriptor keeps the original bytes
        return fd

    monkeypatch.setattr(os, "open", spying_open)
    model = load_model(model_copy)
    assert model.estimator != "not the reviewed model"
    assert hasattr(model.estimator, "predict_proba")
    assert len(opens) == 1


def _file_as_model_dir(model_copy):
    shutil.rmtree(model_copy)
    model_copy.write_text("not a directory")


def _manifest_as_directory(model_copy):
    (model_copy / "manifest.json").unlink()
    (model_copy / "manifest.json").mkdir()


def _manifest_not_utf8(model_copy):
    (model_copy / "manifest.json").write_bytes(b'{"name": "\xff"}')


def _artifact_a_subdirectory(model_copy):
    (model_copy / "sub").mkdir()
    _edit_manifest(model_copy, artifact="sub")


def _artifact_as_directory(model_copy):
    (model_copy / "model.pkl").unlink()
    (model_copy / "model.pkl").mkdir()


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (_file_as_model_dir, r"m/manifest\.json: Not a directory"),
        (_manifest_as_directory, r"manifest\.json: Is a directory"),
        (_manifest_not_utf8, r"manifest\.json is not valid JSON: 'utf-8' codec"),
        (_artifact_a_subdirectory, r"m/sub: Is a directory"),
        (_artifact_as_directory, r"model\.pkl: Is a directory"),
    ],
)
def test_files_that_cannot_be_read_are_refused_not_raised_as_os_errors(model_copy, tamper, says):
    tamper(model_copy)
    with pytest.raises(ModelError, match=says):
        load_model(model_copy)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("feature_names", [1, 2, 3], "non-empty list of non-empty strings, got \\[1, 2, 3\\]"),
        ("feature_names", [["a"]], "non-empty list of non-empty strings"),
        (
            "feature_names",
            "requests_1m",
            "non-empty list of non-empty strings, got 'requests_1m'",
        ),
        ("feature_names", [], "non-empty list of non-empty strings, got \\[\\]"),
        ("feature_names", [*CATALOG[:-1], ""], "non-empty list of non-empty strings"),
        ("feature_names", [*CATALOG[:-1], CATALOG[0]], f"feature_names repeats {CATALOG[0]}$"),
        ("thresholds", None, "thresholds must be an object, got None"),
        ("thresholds", [0.5, 0.9], "thresholds must be an object"),
        (
            "thresholds",
            {"challenge": 0.5, "block": 0.9, "early_block": [{"max_requests_1h": 1, "block": 2.0}]},
            "an early block's threshold must be a number",
        ),
        (
            "thresholds",
            {
                "challenge": 0.5,
                "block": 0.9,
                "early_block": [{"max_requests_1h": 10**400, "block": 0.9}],
            },
            "max_requests_1h must be an integer in",
        ),
    ],
    ids=[
        "names-numbers",
        "names-lists",
        "names-a-string",
        "names-empty",
        "an-empty-name",
        "a-name-twice",
        "thresholds-null",
        "thresholds-a-list",
        "early-block-over-one",
        "early-block-count-past-a-float",
    ],
)
def test_fields_of_another_shape_are_refused(model_copy, field, value, says):
    _edit_manifest(model_copy, **{field: value})
    with pytest.raises(ModelError, match=says):
        read_manifest(model_copy)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", {"a": 1}),
        ("name", "a/b"),
        ("name", "a b"),
        ("name", ""),
        ("version", ""),
        ("version", 5),
        ("version", "5\n"),
        ("version", "\ud800"),
        ("version", "\x1b[31mred"),
        ("version", "5\0"),
        ("version", "."),
        ("version", ".."),
        ("name", "\u200b"),
        ("version", "7" * 65),
    ],
)
def test_name_and_version_must_make_a_release_id(model_copy, field, value):
    """The release id is ``name/version``: each part a short word a Redis key, a score's
    model field and a log line can carry as it is."""
    _edit_manifest(model_copy, **{field: value})
    with pytest.raises(ModelError, match=f"a model's {field} must be 1 to 64 letters"):
        read_manifest(model_copy)


@pytest.mark.parametrize("field", ["artifact", "sha256", "sklearn_version"])
def test_text_fields_must_be_strings(model_copy, field):
    _edit_manifest(model_copy, **{field: 5})
    with pytest.raises(ModelError, match=f"manifest field {field} must be a string, got 5"):
        read_manifest(model_copy)


@pytest.mark.parametrize(
    "thresholds",
    [
        {"challenge": False, "block": True},
        {"challenge": "0.5", "block": 0.9},
        {"challenge": 10**400, "block": 0.9},  # float() of it would overflow
    ],
)
def test_thresholds_must_be_numbers(model_copy, thresholds):
    _edit_manifest(model_copy, thresholds=thresholds)
    with pytest.raises(ModelError, match="thresholds must be numbers"):
        read_manifest(model_copy)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b'{"name": ' + b"1" * 5000 + b"}", "digits"),
        (b"[" * 30_000 + b"]" * 30_000, "recursion"),
    ],
    ids=["a-5000-digit-number", "nested-30000-deep"],
)
def test_a_manifest_json_cannot_hold_is_refused_as_such(model_copy, text, says):
    (model_copy / "manifest.json").write_bytes(text)
    with pytest.raises(ModelError, match=f"manifest\\.json is not valid JSON: .*{says}"):
        read_manifest(model_copy)


@pytest.mark.parametrize(
    ("estimator", "says"),
    [
        ({"a": 1}, "holds no classifier: dict has no predict_proba"),
        (None, "holds no classifier: NoneType has no predict_proba"),
        (42, "holds no classifier: int has no predict_proba"),
        (HistGradientBoostingClassifier(), r"never fitted \(no n_features_in_\)"),
    ],
    ids=["dict", "none", "int", "unfitted"],
)
def test_a_pickle_that_is_not_a_fitted_classifier_is_refused(
    small_model_dir, tmp_path, estimator, says
):
    with pytest.raises(ModelError, match=says):
        load_model(repickled(small_model_dir, tmp_path / "m", estimator))


def test_an_output_directory_must_be_one_or_possible(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    check_output_dir(tmp_path)
    check_output_dir(tmp_path / "new" / "deeper")
    for path in (a_file, a_file / "sub", tmp_path / "dangling"):
        with pytest.raises(ModelError, match=f"cannot write into {path}: .* is not a directory"):
            check_output_dir(path)


class _Scores:
    """Looks like a fitted classifier for the catalogue; ``predict_proba`` gives ``kind``'s."""

    n_features_in_ = len(CATALOG)

    def __init__(self, kind: str, classes=(0, 1)) -> None:
        self.kind = kind
        self.classes_ = np.array(classes)

    def predict_proba(self, x):
        rows = len(x)
        return {
            "probabilities": lambda: np.full((rows, 2), 0.5),
            "one-column": lambda: np.full((rows, 1), 0.5),
            "flat": lambda: np.full(rows, 0.5),
            "a-list": lambda: [[0.5, 0.5]] * rows,
            "a-row-more": lambda: np.full((rows + 1, 2), 0.5),
            "nan": lambda: np.full((rows, 2), np.nan),
            "over-one": lambda: np.full((rows, 2), 1.5),
            "raises": lambda: 1 / 0,
        }[self.kind]()


class _ExitsWhenUnpickled:
    def __reduce__(self):
        return (sys.exit, ("unpickled",))


@pytest.mark.parametrize(
    ("estimator", "says"),
    [
        (_Scores("one-column"), "not two rows of two probabilities"),
        (_Scores("flat"), "not two rows of two probabilities"),
        (_Scores("a-list"), "not two rows of two probabilities"),
        (_Scores("a-row-more"), "not two rows of two probabilities"),
        (_Scores("nan"), "not two rows of two probabilities"),
        (_Scores("over-one"), "not two rows of two probabilities"),
        (_Scores("probabilities", classes=(1,)), r"two classes 0 \(human\) and 1 \(bot\)"),
        (_Scores("probabilities", classes=(0, 1, 2)), r"two classes 0 \(human\) and 1 \(bot\)"),
        (_Scores("probabilities", classes=("human", "bot")), "two classes"),
        (_ExitsWhenUnpickled(), "cannot unpickle .*SystemExit"),
    ],
    ids=[
        "one-column",
        "flat",
        "a-list",
        "a-row-more",
        "nan",
        "over-one",
        "only-bots",
        "three-classes",
        "named-classes",
        "exits-when-unpickled",
    ],
)
def test_a_classifier_whose_scores_cannot_be_used_is_refused_before_it_scores(
    small_model_dir, tmp_path, estimator, says
):
    """Such a model would go live, then fail every batch (or block every user): the load
    asks it for two rows of scores first, and a pickle that exits refuses, not ends, it."""
    with pytest.raises(ModelError, match=says):
        load_model(repickled(small_model_dir, tmp_path / "m", estimator))


@pytest.mark.parametrize("kind", ["probabilities", "raises"])
def test_a_classifier_with_usable_scores_loads(small_model_dir, tmp_path, kind):
    """One that raises on the two rows of zeros may raise on some rows only (a log of a
    count that is 0): it is taken, and a batch it raises on is replayed, then dead-lettered."""
    loaded = load_model(repickled(small_model_dir, tmp_path / "m", _Scores(kind)))
    assert loaded.positive_column == 1


def test_the_scikit_learn_version_that_pickled_the_estimator_is_checked_not_the_manifest(
    small_model_dir, tmp_path
):
    """The manifest's sklearn_version is what its author wrote; scikit-learn records the
    version in every estimator it pickles."""
    ours = sklearn.__version__.encode()
    other = (b"1" if ours[:1] != b"1" else b"0") + ours[1:]
    pickled = (small_model_dir / "model.pkl").read_bytes()
    assert pickled.count(ours) >= 1
    older = pickled.replace(ours, other)  # the same length: the pickle's framing holds
    target = model_variant(
        small_model_dir, tmp_path / "m", sha256=hashlib.sha256(older).hexdigest()
    )
    (target / "model.pkl").write_bytes(older)
    with pytest.raises(ModelError, match=f"pickled with scikit-learn {re.escape(other.decode())}"):
        load_model(target)


def test_an_estimator_fitted_on_other_feature_names_is_refused(small_model_dir, tmp_path):
    estimator = load_model(small_model_dir).estimator
    estimator.feature_names_in_ = np.array(list(reversed(CATALOG)), dtype=object)
    with pytest.raises(ModelError, match="fitted on features"):
        load_model(repickled(small_model_dir, tmp_path / "m", estimator))


def test_a_fifo_in_place_of_the_pickle_is_refused_without_waiting_for_a_writer(model_copy):
    (model_copy / "model.pkl").unlink()
    os.mkfifo(model_copy / "model.pkl")
    with pytest.raises(ModelError, match="not a regular file"):
        load_model(model_copy)


def test_a_manifest_that_links_out_of_the_model_directory_is_refused(model_copy, tmp_path):
    outside = tmp_path / "elsewhere.json"
    (model_copy / "manifest.json").rename(outside)
    (model_copy / "manifest.json").symlink_to(outside)
    with pytest.raises(ModelError, match="outside"):
        load_model(model_copy)


def test_a_loop_of_links_at_the_artifact_is_refused(model_copy):
    (model_copy / "model.pkl").unlink()
    (model_copy / "model.pkl").symlink_to(model_copy / "model.pkl")
    with pytest.raises(ModelError, match="cannot resolve"):
        load_model(model_copy)


@pytest.mark.parametrize(
    "changes",
    [
        {"thresholds": {"challenge": "x" * 100_000, "block": 0.9}},
        {"version": "x" * 100_000},
        {"feature_names": [*(f"n{i}" for i in range(20_000)), 1]},
        {"artifact": "a/" * 50_000},
    ],
    ids=["threshold", "version", "feature-names", "artifact"],
)
def test_a_refusal_quotes_a_huge_value_only_in_part(model_copy, changes):
    """The reason goes into one log line and ``models list``."""
    _edit_manifest(model_copy, **changes)
    with pytest.raises(ModelError) as refused:
        load_model(model_copy)
    assert len(str(refused.value)) < 1000
