"""Load a model directory (pickle + manifest) and refuse anything that does not fit.

A model directory holds ``manifest.json`` and the pickle it names. The manifest says the
feature names in column order, the scikit-learn version it was pickled with, the pickle's
SHA-256 and the decision thresholds. Every load goes through ``load_model``: one place
to check a model, and one place to wrap for reloading or shadow scoring.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import stat
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from botscore.errors import ModelError
from botscore.model.features import CATALOG
from botscore.vocabulary import Decision

__all__ = [
    "STAGE_FEATURE",
    "EarlyBlock",
    "LoadedModel",
    "ModelManifest",
    "Thresholds",
    "artifact_path",
    "check_id_part",
    "check_manifest",
    "check_output_dir",
    "load_model",
    "parse_manifest",
    "read_artifact",
    "read_manifest",
    "resolve_model_dir",
    "sha256_of",
    "unpickle",
]

MANIFEST_NAME = "manifest.json"
# The directory holding the botscore package: resources/ inside the topology jar, src/ in
# a checkout. models/ sits beside it in both (src/models links to the project's models/).
CODE_ROOT = Path(__file__).resolve().parents[2]


# The feature that tells how far into a visit a row is, for the early block thresholds.
STAGE_FEATURE = "requests_1h"
# A name or version: part of a Redis key, of every score's model field and of log lines.
ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
# How much of an unusable value a refusal quotes: a reason goes into one log line.
SHOWN_CHARS = 200


def _cut(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARS``: a manifest's megabyte string stays out of the logs."""
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text):,} chars)"


def _brief(value: object) -> str:
    return _cut(repr(value))


@dataclass(frozen=True)
class EarlyBlock:
    """A block threshold for the rows of a user's first requests: at most ``max_requests_1h``
    in the last hour. A human's first rows carry little evidence either way, so the highest
    human score there is lower than later in a visit, and a bot can be blocked sooner."""

    max_requests_1h: int
    block: float

    def __post_init__(self) -> None:
        count = self.max_requests_1h
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 2**53:
            raise ModelError(
                "an early block's max_requests_1h must be an integer in [1, 2**53], "
                f"got {_brief(count)}"
            )
        if not _probability(self.block):
            raise ModelError(
                f"an early block's threshold must be a number in [0, 1], got {_brief(self.block)}"
            )


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``challenge`` are challenged, at or above ``block`` blocked; a row of
    the first stage of ``early_block`` its requests fit (in increasing ``max_requests_1h``)
    is blocked at that stage's threshold instead."""

    challenge: float
    block: float
    early_block: tuple[EarlyBlock, ...] = ()

    def __post_init__(self) -> None:
        # Numbers only: a manifest's true or false would otherwise count as 1 or 0.
        if not all(_probability(t) for t in (self.challenge, self.block)):
            raise ModelError(
                "thresholds must be numbers in [0, 1], "
                f"got challenge {_brief(self.challenge)}, block {_brief(self.block)}"
            )
        if not self.challenge <= self.block:
            raise ModelError(
                "thresholds must satisfy 0 <= challenge <= block <= 1, "
                f"got challenge {self.challenge}, block {self.block}"
            )
        if not isinstance(self.early_block, tuple) or not all(
            isinstance(e, EarlyBlock) for e in self.early_block
        ):
            raise ModelError(
                f"early_block must be a tuple of EarlyBlock, got {_brief(self.early_block)}"
            )
        counts = [e.max_requests_1h for e in self.early_block]
        if counts != sorted(set(counts)):
            raise ModelError(
                f"early block stages must have increasing max_requests_1h, got {counts}"
            )

    @classmethod
    def from_dict(cls, data: object) -> Thresholds:
        if not isinstance(data, dict):
            raise ModelError(f"thresholds must be an object, got {_brief(data)}")
        early = data.get("early_block", [])
        if not isinstance(early, list) or not all(isinstance(e, dict) for e in early):
            raise ModelError(
                f"thresholds.early_block must be a list of objects, got {_brief(early)}"
            )
        rest = {k: v for k, v in data.items() if k != "early_block"}
        return cls(**rest, early_block=tuple(EarlyBlock(**e) for e in early))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"challenge": self.challenge, "block": self.block}
        if self.early_block:
            out["early_block"] = [
                {"max_requests_1h": e.max_requests_1h, "block": e.block} for e in self.early_block
            ]
        return out

    def block_for(self, requests_1h: np.ndarray) -> np.ndarray:
        """Each row's block threshold, from its ``requests_1h`` (NaN: the general one)."""
        counts = np.asarray(requests_1h, dtype=np.float64)
        out = np.full(counts.shape, self.block)
        with np.errstate(invalid="ignore"):
            for stage in reversed(self.early_block):
                out[counts <= stage.max_requests_1h] = stage.block
        return out

    def block_at(self, requests_1h: float) -> float:
        """The block threshold for a row with ``requests_1h`` requests in the last hour."""
        for stage in self.early_block:
            if requests_1h <= stage.max_requests_1h:
                return stage.block
        return self.block

    def decide(self, score: float, requests_1h: float = math.nan) -> Decision:
        """The decision for a row's score; without ``requests_1h``, by the general thresholds."""
        if score >= self.block_at(requests_1h):
            return Decision.BLOCK
        if score >= self.challenge:
            return Decision.CHALLENGE
        return Decision.ALLOW


def _probability(value: object) -> bool:
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    try:
        return 0.0 <= float(value) <= 1.0
    except OverflowError:  # an integer of hundreds of digits
        return False


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    artifact: str
    sha256: str
    sklearn_version: str
    feature_names: tuple[str, ...]
    thresholds: Thresholds

    def __post_init__(self) -> None:
        if self.thresholds.early_block and STAGE_FEATURE not in self.feature_names:
            raise ModelError(
                f"early block thresholds need the model to read {STAGE_FEATURE}, "
                "which is not among its feature_names"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        """Every field checked here, as it is read: each later use takes its type for granted."""
        try:
            return cls(
                name=check_id_part("name", data["name"]),
                version=check_id_part("version", data["version"]),
                artifact=_string("artifact", data["artifact"]),
                sha256=_string("sha256", data["sha256"]),
                sklearn_version=_string("sklearn_version", data["sklearn_version"]),
                feature_names=_feature_names(data["feature_names"]),
                thresholds=Thresholds.from_dict(data["thresholds"]),
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"manifest is missing or mistypes a field: {_cut(str(exc))}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "sklearn_version": self.sklearn_version,
            "feature_names": list(self.feature_names),
            "thresholds": self.thresholds.to_dict(),
        }


def check_id_part(field: str, value: object) -> str:
    """A model's name or version: the release id is ``name/version`` (a Redis key, and the
    model every score and log line names), so 1 to 64 letters, digits, ``.``, ``_``,
    ``+`` or ``-``, starting with a letter or digit."""
    if not isinstance(value, str) or not ID_PART.fullmatch(value):
        raise ModelError(
            f"a model's {field} must be 1 to 64 letters, digits, '.', '_', '+' or '-', "
            f"starting with a letter or digit, got {_brief(value)}"
        )
    return value


def _string(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ModelError(f"manifest field {field} must be a string, got {_brief(value)}")
    return value


def _feature_names(value: object) -> tuple[str, ...]:
    """The columns the model reads, in order: a string here would be taken letter by letter."""
    if not isinstance(value, list) or not value or not all(isinstance(n, str) and n for n in value):
        raise ModelError(
            "manifest field feature_names must be a non-empty list of non-empty strings, "
            f"got {_brief(value)}"
        )
    repeated = sorted(name for name, n in Counter(value).items() if n > 1)
    if repeated:
        raise ModelError(f"manifest field feature_names repeats {_cut(', '.join(repeated))}")
    return tuple(value)


@dataclass(frozen=True)
class LoadedModel:
    manifest: ModelManifest
    estimator: Any
    positive_column: int

    def predict_scores(self, matrix: np.ndarray) -> np.ndarray:
        """Bot probability per row: one ``predict_proba`` call for the whole batch."""
        scores: np.ndarray = self.estimator.predict_proba(matrix)[:, self.positive_column]
        return scores


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model_dir(model_dir: str | Path) -> Path:
    """An absolute path as given; a relative one from the code root, not the working dir.

    Storm starts components in the worker's code directory, which is not where the
    project's files are, so a path relative to the working directory means nothing there.
    """
    path = Path(model_dir)
    return path if path.is_absolute() else CODE_ROOT / path


def read_manifest(model_dir: str | Path) -> ModelManifest:
    """The manifest alone: enough to know which features a model needs."""
    directory = Path(model_dir)
    path = _inside(directory, MANIFEST_NAME, MANIFEST_NAME)
    missing = f"no {MANIFEST_NAME} in {directory.resolve()}"
    return parse_manifest(_read(path, missing), str(path))


def parse_manifest(manifest_json: bytes, source: str) -> ModelManifest:
    """The manifest in ``manifest_json`` (read from ``source``): a JSON object, fields checked."""
    try:
        data = json.loads(manifest_json)
    except (ValueError, RecursionError) as exc:  # also a 5000-digit number, deep nesting
        raise ModelError(f"{source} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{source} is not a JSON object")
    return ModelManifest.from_dict(data)


def read_artifact(path: Path) -> bytes:
    """The pickle's bytes, read once (see ``load_model``)."""
    return _read(path, f"model artifact {path} not found")


def _read(path: Path, missing: str) -> bytes:
    """``path``'s bytes; not being a regular file (absent, a directory, a FIFO that would
    block the read for ever, in a "directory" that is a file) is a ``ModelError``,
    ``missing`` when absent."""
    try:
        # Non-blocking, so that opening a FIFO returns and is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelError(missing) from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ModelError(f"cannot read {path}: Is a directory")
        if not stat.S_ISREG(mode):
            raise ModelError(f"cannot read {path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def check_output_dir(out_dir: str | Path) -> None:
    """Refuse, before minutes of work, an output directory that cannot be made: writing
    into it comes last."""
    target = Path(out_dir).absolute()
    # The nearest path that is there (a dangling link counts: mkdir would fail on it).
    there = next(p for p in (target, *target.parents) if p.exists() or p.is_symlink())
    if not there.is_dir():
        raise ModelError(f"cannot write into {out_dir}: {there} is not a directory")


def artifact_path(directory: Path, artifact: str) -> Path:
    """The manifest's artifact: a plain file name that stays inside ``directory``.

    Anything else (an absolute path, ``..``, a subdirectory, a link leading out) would
    load a pickle from outside the directory that was reviewed and deployed.
    """
    source = f"{directory / MANIFEST_NAME}: artifact"
    if artifact in {"", ".", ".."} or "\0" in artifact or Path(artifact).name != artifact:
        raise ModelError(f"{source} {_brief(artifact)} must be a plain file name in {directory}")
    return _inside(directory, artifact, f"{source} {artifact!r}")


def _inside(directory: Path, name: str, what: str) -> Path:
    """``directory / name``, refused when it resolves outside ``directory`` (a link out)."""
    path = directory / name
    try:
        resolved, home = path.resolve(), directory.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise ModelError(f"{what}: cannot resolve {path}: {exc}") from None
    if resolved.parent != home:
        raise ModelError(f"{what} resolves to {resolved}, outside {home}")
    return path


def load_model(model_dir: str | Path, available_features: Iterable[str] = CATALOG) -> LoadedModel:
    """Verify and unpickle the model in ``model_dir`` (see ``check_manifest``, ``unpickle``)."""
    directory = Path(model_dir)
    manifest = read_manifest(directory)
    check_manifest(manifest, available_features)
    artifact = artifact_path(directory, manifest.artifact)
    # One read: the bytes that are hashed are the bytes that are unpickled, so a file
    # replaced in between cannot slip past the check.
    return unpickle(manifest, read_artifact(artifact), str(artifact))


def check_manifest(manifest: ModelManifest, available_features: Iterable[str] = CATALOG) -> None:
    """Refuse a model that needs features the feature stage does not publish, or one pickled
    by another scikit-learn version (unpickling across versions is unsupported and can
    silently change predictions)."""
    # Imported here: the features spout reads manifests too, and scikit-learn adds about a
    # second to its start, which a restarted worker waits for.
    import sklearn

    unknown = sorted(set(manifest.feature_names) - set(available_features))
    if unknown:
        raise ModelError(
            f"model {manifest.name} {manifest.version} needs features the messages do not "
            f"carry: {', '.join(unknown)}"
        )
    if manifest.sklearn_version != sklearn.__version__:
        raise ModelError(
            f"model was pickled with scikit-learn {manifest.sklearn_version}, "
            f"this process has {sklearn.__version__}"
        )


def unpickle(manifest: ModelManifest, pickled: bytes, source: str) -> LoadedModel:
    """The estimator in ``pickled`` (read from ``source``), if its hash is the manifest's and
    it is a fitted two-class classifier for the manifest's features that gives usable scores.

    A pickle whose hash differs is not the model that was reviewed, and is never unpickled.
    """
    from sklearn.exceptions import InconsistentVersionWarning

    actual = hashlib.sha256(pickled).hexdigest()
    if actual != manifest.sha256:
        raise ModelError(f"SHA-256 of {source} is {actual}, manifest says {manifest.sha256}")
    try:
        # The manifest's sklearn_version is a claim; scikit-learn records in each estimator
        # the version that pickled it, and warns on a difference: that refuses it here.
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            estimator = pickle.loads(pickled)  # noqa: S301 - hash-verified above
    except InconsistentVersionWarning as exc:
        raise ModelError(
            f"{source} was pickled with scikit-learn {exc.original_sklearn_version}, "
            f"this process has {exc.current_sklearn_version}"
        ) from None
    # Unpickling runs the pickle's own code: anything can raise, SystemExit included, and
    # it must refuse the model, not end the thread or the worker that loads it.
    except BaseException as exc:
        raise ModelError(f"cannot unpickle {source}: {_brief(exc)}") from None
    try:
        column = _positive_column(estimator, manifest, source)
    except ModelError:
        raise
    except BaseException as exc:  # the estimator's own code, as above
        raise ModelError(f"{source}: the estimator failed its checks: {_brief(exc)}") from None
    return LoadedModel(manifest, estimator, column)


def _positive_column(estimator: Any, manifest: ModelManifest, source: str) -> int:
    """The bot class's column of ``predict_proba``, once the estimator is shown to be a fitted
    two-class classifier for the manifest's features whose scores, for two rows of zeros,
    are two rows of two probabilities: anything else (a dict, an unfitted model, one that
    knows only bots, one column) would go live and then fail, or block, every batch."""
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ModelError(
            f"{source} holds no classifier: {type(estimator).__name__} has no predict_proba"
        )
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is None:
        raise ModelError(f"{source} holds an estimator that was never fitted (no n_features_in_)")
    if not isinstance(n_in, Integral) or isinstance(n_in, bool):
        raise ModelError(f"{source}: the estimator's n_features_in_ is {_brief(n_in)}, not a count")
    n_features = len(manifest.feature_names)
    if n_in != n_features:
        raise ModelError(f"estimator expects {n_in} features, manifest lists {n_features}")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and tuple(names) != manifest.feature_names:
        raise ModelError(
            f"{source}: the estimator was fitted on features {_brief(list(names))}, "
            f"the manifest lists {_brief(list(manifest.feature_names))}"
        )
    classes = list(np.ravel(getattr(estimator, "classes_", [])))
    if len(classes) != 2 or set(classes) != {0, 1}:
        raise ModelError(
            f"estimator must have the two classes 0 (human) and 1 (bot), has {_brief(classes)}"
        )
    column = classes.index(1)
    try:
        probe = estimator.predict_proba(np.zeros((2, n_features)))
    except Exception:
        # A model may raise on some rows only (a log of a count that is 0): it is taken,
        # and a batch it raises on fails and is replayed, then dead-lettered, as any other.
        return column
    if not (
        isinstance(probe, np.ndarray)
        and probe.shape == (2, 2)
        and np.isfinite(probe).all()
        and ((probe >= 0) & (probe <= 1)).all()
    ):
        raise ModelError(
            f"{source}: predict_proba on two rows gave {_brief(probe)}, "
            "not two rows of two probabilities"
        )
    return column
