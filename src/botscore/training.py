"""Train the baseline model and write it as a verified model directory.

The output (``model.pkl`` + ``manifest.json``) is exactly what ``load_model`` accepts, so
anything this writes can be served. Training is seeded and reproducible.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier

from botscore.features import CATALOG, feature_matrix
from botscore.model_registry import MANIFEST_NAME, ModelManifest, Thresholds, sha256_of
from botscore.sample_users import sample_users

__all__ = ["train_baseline"]


def train_baseline(
    out_dir: str | Path,
    users: int = 20_000,
    seed: int = 7,
    version: str = "1",
    thresholds: Thresholds | None = None,
) -> ModelManifest:
    sample = list(sample_users(users, seed))
    x = feature_matrix([u.features for u in sample], CATALOG)
    y = np.array([u.is_bot for u in sample], dtype=np.int64)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    model.fit(x, y)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / "model.pkl"
    with artifact.open("wb") as handle:
        pickle.dump(model, handle, protocol=5)
    if thresholds is None:
        thresholds = Thresholds(challenge=0.5, block=0.9)
    manifest = ModelManifest(
        name="baseline",
        version=version,
        artifact=artifact.name,
        sha256=sha256_of(artifact),
        sklearn_version=sklearn.__version__,
        feature_names=CATALOG,
        thresholds=thresholds,
    )
    (out / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest
