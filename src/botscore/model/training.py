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
from botscore.errors import ModelError, SimulationSpecError
from botscore.model.features import CATALOG, feature_matrix
from botscore.model.registry import MANIFEST_NAME, ModelManifest, Thresholds, sha256_of
from botscore.settings import AggregationSettings
from botscore.simulator.population import population_for
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.traffic import TrafficGenerator

__all__ = [
    "DEFAULT_VERSION",
    "HOLDOUT_SEED",
    "PUBLISH_INTERVAL_MS",
    "REPORT_NAME",
    "TRAINING_TRAFFIC",
    "TrainingReport",
    "bot_scores",
    "fit_classifier",
    "read_training_traffic",
    "train_model",
    "training_rows",
]

START_MS = 1_767_225_600_000  # 2026-01-01, any fixed time keeps runs reproducible

# A simulated hour, longer and larger than ``botscore simulate``'s default, so every
# feature window fills and every bot kind is well represented.
TRAINING_TRAFFIC = SimulationSpec(users=3000, bot_share=0.3, rate=80.0, duration_s=3600.0, seed=7)
# The held-out simulation is the same traffic from this seed.
HOLDOUT_SEED = 8
# Rows are published at the serving topology's rhythm, so the model sees what it will score.
PUBLISH_INTERVAL_MS = AggregationSettings().publish_interval_ms


DEFAULT_THRESHOLDS = Thresholds(challenge=0.5, block=0.9)
REPORT_NAME = "training-report.json"


@dataclass(frozen=True)
class TrainingReport:
    rows: int
    holdout_rows: int
    holdout_auc: float
    # kind -> share of that kind's held-out rows at or above each threshold
    challenged: dict[str, float]
    blocked: dict[str, float]


def training_rows(
    traffic: SimulationSpec, publish_interval_ms: int = PUBLISH_INTERVAL_MS
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature matrix (``CATALOG`` order), bot labels and each row's kind."""
    population = population_for(traffic)
    kind_of = {u.user_id: u.kind for u in population.users}
    events = TrafficGenerator.from_spec(population, traffic, START_MS)
    snapshots = list(publications(events, publish_interval_ms))
    x = feature_matrix([s.features for s in snapshots], CATALOG)
    kinds = [kind_of[s.user_id] for s in snapshots]
    y = np.array([population.profiles[k].is_bot for k in kinds], dtype=np.int64)
    return x, y, kinds


def fit_classifier(x: np.ndarray, y: np.ndarray, seed: int) -> HistGradientBoostingClassifier:
    """The model and its parameters, in one place: the evaluation's left-out runs fit here too."""
    model = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    model.fit(x, y)
    return model


def bot_scores(model: HistGradientBoostingClassifier, x: np.ndarray) -> np.ndarray:
    """The probability of the bot class for each row of ``x``."""
    scores: np.ndarray = model.predict_proba(x)[:, list(model.classes_).index(1)]
    return scores


def read_training_traffic(model_dir: str | Path) -> tuple[SimulationSpec, int]:
    """The traffic a model directory was trained on and its publish interval, from its report."""
    path = Path(model_dir) / REPORT_NAME
    try:
        traffic = json.loads(path.read_text())["traffic"]
        spec = SimulationSpec(
            users=traffic["users"],
            bot_share=traffic["bot_share"],
            rate=traffic["rate"],
            duration_s=traffic["duration_s"],
            seed=traffic["seed"],
            mix=traffic["mix"],
        )
        return spec, int(traffic["publish_interval_ms"])
    except (OSError, ValueError, KeyError, TypeError, SimulationSpecError) as exc:
        raise ModelError(
            f"{path}: cannot tell what the model was trained on ({exc!r}); botscore train writes it"
        ) from exc


# The committed model's: a retrained model to publish needs a new one.
DEFAULT_VERSION = "2"


def train_model(
    out_dir: str | Path,
    traffic: SimulationSpec = TRAINING_TRAFFIC,
    holdout_seed: int = HOLDOUT_SEED,
    version: str = DEFAULT_VERSION,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    publish_interval_ms: int = PUBLISH_INTERVAL_MS,
) -> tuple[ModelManifest, TrainingReport]:
    """Train on ``traffic``, judge on the same traffic from ``holdout_seed``, write both."""
    x, y, _ = training_rows(traffic, publish_interval_ms)
    model = fit_classifier(x, y, traffic.seed)

    hx, hy, hkinds = training_rows(replace(traffic, seed=holdout_seed), publish_interval_ms)
    scores = bot_scores(model, hx)
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
    # The fields that decide the rows; speedup only paces a live run.
    simulated = {
        "users": traffic.users,
        "bot_share": traffic.bot_share,
        "rate": traffic.rate,
        "duration_s": traffic.duration_s,
        "seed": traffic.seed,
        "mix": traffic.mix,
        "publish_interval_ms": publish_interval_ms,
    }
    (out / REPORT_NAME).write_text(
        json.dumps({"traffic": simulated, **report.__dict__}, indent=2) + "\n"
    )
    return manifest, report
