"""Load a model directory (pickle + manifest) and refuse anything that does not fit.

A model directory holds ``manifest.json`` and the pickle it names. The manifest says the
feature names in column order, the scikit-learn version it was pickled with, the pickle's
SHA-256 and the decision thresholds. Every load goes through ``load_model``: one place
to check a model, and one place to wrap for reloading or shadow scoring.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botscore.errors import ModelError
from botscore.model.features import CATALOG
from botscore.vocabulary import Decision

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LoadedModel",
    "ModelManifest",
    "Thresholds",
    "artifact_path",
    "check_manifest",
    "load_model",
    "read_manifest",
    "resolve_model_dir",
    "sha256_of",
    "unpickle",
]

MANIFEST_NAME = "manifest.json"
# The directory holding the botscore package: resources/ inside the topology jar, src/ in
# a checkout. models/ sits beside it in both (src/models links to the project's models/).
CODE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``challenge`` are challenged, at or above ``block`` blocked."""

    challenge: float
    block: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenge <= self.block <= 1.0:
            raise ModelError(f"thresholds must satisfy 0 <= challenge <= block <= 1, got {self}")

    def decide(self, score: float) -> Decision:
        if score >= self.block:
            return Decision.BLOCK
        if score >= self.challenge:
            return Decision.CHALLENGE
        return Decision.ALLOW


@dataclass(frozen=True)
class ModelManifest:
    name: str
    version: str
    artifact: str
    sha256: str
    sklearn_version: str
    feature_names: tuple[str, ...]
    thresholds: Thresholds

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                artifact=str(data["artifact"]),
                sha256=str(data["sha256"]),
                sklearn_version=str(data["sklearn_version"]),
                feature_names=tuple(data["feature_names"]),
                thresholds=Thresholds(**data["thresholds"]),
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"manifest is missing or mistypes a field: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "sklearn_version": self.sklearn_version,
            "feature_names": list(self.feature_names),
            "thresholds": {"challenge": self.thresholds.challenge, "block": self.thresholds.block},
        }


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
    manifest_path = Path(model_dir) / MANIFEST_NAME
    try:
        return ModelManifest.from_dict(json.loads(manifest_path.read_text()))
    except FileNotFoundError:
        raise ModelError(f"no {MANIFEST_NAME} in {Path(model_dir).resolve()}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{manifest_path} is not valid JSON: {exc}") from None


def artifact_path(directory: Path, artifact: str) -> Path:
    """The manifest's artifact: a plain file name that stays inside ``directory``.

    Anything else (an absolute path, ``..``, a subdirectory, a link leading out) would
    load a pickle from outside the directory that was reviewed and deployed.
    """
    manifest_path = directory / MANIFEST_NAME
    if artifact in {"", ".", ".."} or "\0" in artifact or Path(artifact).name != artifact:
        raise ModelError(
            f"{manifest_path}: artifact {artifact!r} must be a plain file name in {directory}"
        )
    path = directory / artifact
    if path.resolve().parent != directory.resolve():
        raise ModelError(
            f"{manifest_path}: artifact {artifact!r} resolves to {path.resolve()}, "
            f"outside {directory.resolve()}"
        )
    return path


def load_model(model_dir: str | Path, available_features: Iterable[str] = CATALOG) -> LoadedModel:
    """Verify and unpickle the model in ``model_dir`` (see ``check_manifest``, ``unpickle``)."""
    directory = Path(model_dir)
    manifest = read_manifest(directory)
    check_manifest(manifest, available_features)
    artifact = artifact_path(directory, manifest.artifact)
    if not artifact.is_file():
        raise ModelError(f"model artifact {artifact} not found")
    # One read: the bytes that are hashed are the bytes that are unpickled, so a file
    # replaced in between cannot slip past the check.
    return unpickle(manifest, artifact.read_bytes(), str(artifact))


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
    """The estimator in ``pickled`` (read from ``source``), if its hash is the manifest's.

    A pickle whose hash differs is not the model that was reviewed, and is never unpickled.
    """
    actual = hashlib.sha256(pickled).hexdigest()
    if actual != manifest.sha256:
        raise ModelError(f"SHA-256 of {source} is {actual}, manifest says {manifest.sha256}")
    try:
        estimator = pickle.loads(pickled)  # noqa: S301 - hash-verified above
    except Exception as exc:  # unpickling runs the pickle's own code: anything can raise
        raise ModelError(f"cannot unpickle {source}: {exc!r}") from None
    n_in = getattr(estimator, "n_features_in_", len(manifest.feature_names))
    if n_in != len(manifest.feature_names):
        raise ModelError(
            f"estimator expects {n_in} features, manifest lists {len(manifest.feature_names)}"
        )
    classes = list(getattr(estimator, "classes_", [0, 1]))
    if 1 not in classes:
        raise ModelError(f"estimator has no positive class 1 (classes: {classes})")
    return LoadedModel(manifest, estimator, classes.index(1))
