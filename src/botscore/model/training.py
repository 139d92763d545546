"""Train the model on simulated edge traffic, through the feature stage's own code.

Rows are the features the aggregation topology would publish (``offline.publications``:
the same definitions, the same at-most-once-per-interval rhythm), labelled from the
simulation's ground truth. A second simulation with another seed is held out for the
report. The output (``model.pkl`` + ``manifest.json``) is what ``load_model`` accepts;
the same arguments always give the same model.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from botscore.aggregation.offline import publications
from botscore.model.features import CATALOG, feature_matrix
from botscore.model.registry import MANIFEST_NAME, ModelManifest, Thresholds, sha256_of
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator

__all__ = ["SimulatedTraffic", "TrainingReport", "train_model", "training_rows"]

START_MS = 1_767_225_600_000  # 2026-01-01, any fixed time keeps runs reproducible


@dataclass(frozen=True)
class SimulatedTraffic:
    """Which simulation to learn from: the ``botscore simulate`` parameters."""

    users: int = 3000
    bot_share: float = 0.3
    rate: float = 80.0
    duration_s: float = 3600.0
    seed: int = 7
    publish_interval_ms: int = 2000


DEFAULT_TRAFFIC = SimulatedTraffic()
DEFAULT_THRESHOLDS = Thresholds(challenge=0.5, block=0.9)


@dataclass(frozen=True)
class TrainingReport:
    rows: int
    holdout_rows: int
    holdout_auc: float
    # kind -> share of that kind's held-out rows at or above each threshold
    challenged: dict[str, float]
    blocked: dict[str, float]


def training_rows(traffic: SimulatedTraffic) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature matrix (``CATALOG`` order), bot labels and each row's kind."""
    population = build_population(traffic.users, traffic.bot_share, traffic.seed)
    kind_of = {u.user_id: u.kind for u in population.users}
    events = TrafficGenerator(population, traffic.rate, traffic.duration_s, traffic.seed, START_MS)
    snapshots = list(publications(events, traffic.publish_interval_ms))
    x = feature_matrix([s.features for s in snapshots], CATALOG)
    kinds = [kind_of[s.user_id] for s in snapshots]
    y = np.array([population.profiles[k].is_bot for k in kinds], dtype=np.int64)
    return x, y, kinds


def train_model(
    out_dir: str | Path,
    traffic: SimulatedTraffic = DEFAULT_TRAFFIC,
    holdout_seed: int = 8,
    version: str = "2",
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[ModelManifest, TrainingReport]:
    x, y, _ = training_rows(traffic)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=traffic.seed)
    model.fit(x, y)

    hx, hy, hkinds = training_rows(replace(traffic, seed=holdout_seed))
    scores = model.predict_proba(hx)[:, list(model.classes_).index(1)]
    kinds = np.array(hkinds)

    def share_at(threshold: float) -> dict[str, float]:
        return {k: float(np.mean(scores[kinds == k] >= threshold)) for k in sorted(set(hkinds))}

    report = TrainingReport(
        rows=len(y),
        holdout_rows=len(hy),
        holdout_auc=float(roc_auc_score(hy, scores)),
        challenged=share_at(thresholds.challenge),
        blocked=share_at(thresholds.block),
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / "model.pkl"
    with artifact.open("wb") as handle:
        pickle.dump(model, handle, protocol=5)
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
    (out / "training-report.json").write_text(
        json.dumps({"traffic": traffic.__dict__, **report.__dict__}, indent=2) + "\n"
    )
    return manifest, report
