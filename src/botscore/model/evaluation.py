"""Judge a trained model on traffic it has not seen, so that the figures can fail.

The held-out rows come from simulations with other seeds than training, by default of the
wide mix: humans that look unusual and bots that imitate humans, which a model trained on
the classic mix has never seen. Leave-one-kind-out asks the same of every kind the model
was trained on: for each bot kind, a model fitted like the real one (``fit_classifier``, the
same training rows) but without that kind's rows scores the held-out rows of that kind.
Rows are scored one by one, as the classifier scores each publication of a user's features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from botscore.errors import ModelError
from botscore.model.detection_metrics import (
    Detection,
    check_human_rate,
    detection,
    separation,
    share_at_or_above,
)
from botscore.model.registry import ModelManifest, Thresholds, load_model
from botscore.model.scoring import RateCeiling, over_rate_ceiling
from botscore.model.training import (
    Simulated,
    bot_scores,
    fit_classifier,
    read_calibration_seeds,
    read_training_traffic,
    simulate,
    stage_counts,
    training_rows,
)
from botscore.model.visitor_policy import (
    DECISION_LATENCY_S,
    combined,
    decisions,
    summarize,
    visitor_requests,
)
from botscore.settings import EnforcementSettings, ScoringSettings
from botscore.simulator.profiles import MIXES, PROFILES
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.visits import VisitSummary

__all__ = [
    "EVALUATION_MIX",
    "EVALUATION_SEEDS",
    "HUMAN_RATE",
    "Evaluation",
    "KindFigures",
    "LeftOut",
    "ScoredRows",
    "VisitorFigures",
    "evaluate",
    "left_out_training",
]

# Seeds neither ``botscore train``'s training (7) nor its report (8) used.
EVALUATION_SEEDS = (101, 102)
EVALUATION_MIX = "wide"
# Share of human rows a threshold may challenge for the "bots caught at that cost" figure.
HUMAN_RATE = 0.001

Progress = Callable[[str], None]


@dataclass(frozen=True)
class KindFigures:
    """One kind's held-out rows under the model; AUCs only for bots (against every human row)."""

    kind: str
    is_bot: bool
    rows: int
    challenged: float
    blocked: float
    # at the overall threshold that challenges ``human_rate`` of the human rows
    at_human_rate: float
    roc_auc: float | None
    pr_auc: float | None


@dataclass(frozen=True)
class LeftOut:
    """A bot kind scored by a model that never saw it, against every human row."""

    kind: str
    # Rows the left-out model was fitted on; None when the model was not trained on this
    # kind anyway, so that it is its own left-out model.
    training_rows: int | None
    detection: Detection


@dataclass(frozen=True)
class ScoredRows:
    """The held-out rows' truth and scores, for the curves and histograms."""

    kinds: np.ndarray
    is_bot: np.ndarray
    scores: np.ndarray
    # bot kind -> the scores of its left-out model, for every held-out row
    left_out: dict[str, np.ndarray]


@dataclass(frozen=True)
class VisitorFigures:
    """What the held-out visitors would feel at the edge under the model's thresholds."""

    latency_s: float
    enforcement: EnforcementSettings
    rate_ceiling: RateCeiling
    overall: VisitSummary
    kinds: tuple[tuple[str, VisitSummary], ...]


@dataclass(frozen=True)
class Evaluation:
    manifest: ModelManifest
    training: SimulationSpec
    publish_interval_ms: int
    # the held-out traffic: ``training`` with ``mix`` and each of ``seeds``
    mix: str
    seeds: tuple[int, ...]
    human_rate: float
    overall: Detection
    kinds: tuple[KindFigures, ...]
    left_out: tuple[LeftOut, ...]
    visitors: VisitorFigures
    rows: ScoredRows


def _quiet(_: str) -> None:
    pass


def evaluate(
    model_dir: str | Path,
    seeds: Sequence[int] = EVALUATION_SEEDS,
    mix: str = EVALUATION_MIX,
    human_rate: float = HUMAN_RATE,
    progress: Progress = _quiet,
    block_requests_1m: int = ScoringSettings().block_requests_1m,
) -> Evaluation:
    """The model in ``model_dir`` on held-out traffic, and every bot kind left out.

    The per-visitor figures are the edge's decisions, so a row past ``block_requests_1m``
    requests in a minute blocks its visitor, as the live classifier's rate ceiling does (0:
    no ceiling); the per-row figures stay the model's own."""
    check_human_rate(human_rate)
    model = load_model(model_dir)
    manifest = model.manifest
    training, interval = read_training_traffic(model_dir)
    held_out = _held_out_specs(training, seeds, mix, read_calibration_seeds(model_dir))
    simulations = _simulations(held_out, interval, progress)
    names = manifest.feature_names
    x, is_bot, kinds = _rows(simulations, names)
    missing = [k for k in MIXES[mix] if not np.any(kinds == k)]
    if missing:
        raise ModelError(
            f"the held-out traffic has no rows of {', '.join(missing)}: simulate more users "
            "or a longer time (train the model on larger traffic)"
        )
    scores = model.predict_scores(x)
    thresholds = manifest.thresholds
    blocks = thresholds.block_for(np.concatenate([stage_counts(s.snapshots) for s in simulations]))
    overall = detection(scores, is_bot, thresholds.challenge, blocks, human_rate)
    kind_figures = tuple(
        _kind_figures(kind, scores, kinds, is_bot, overall, thresholds.challenge, blocks)
        for kind in MIXES[mix]
    )
    left_out, left_out_scores = _leave_each_kind_out(
        training,
        interval,
        names,
        x,
        kinds,
        is_bot,
        scores,
        mix,
        human_rate,
        (thresholds.challenge, blocks),
        progress,
    )
    return Evaluation(
        manifest=manifest,
        training=training,
        publish_interval_ms=interval,
        mix=mix,
        seeds=tuple(seeds),
        human_rate=human_rate,
        overall=overall,
        kinds=kind_figures,
        left_out=left_out,
        visitors=_visitor_figures(
            simulations,
            scores,
            over_rate_ceiling(manifest, x, block_requests_1m),
            block_requests_1m,
            thresholds,
            mix,
        ),
        rows=ScoredRows(kinds, is_bot, scores, left_out_scores),
    )


def left_out_training(
    x: np.ndarray, y: np.ndarray, kinds: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """The training rows without ``kind``'s, every other row as it was."""
    keep = kinds != kind
    return x[keep], y[keep]


def _held_out_specs(
    training: SimulationSpec, seeds: Sequence[int], mix: str, calibration: Sequence[int] = ()
) -> list[SimulationSpec]:
    if not seeds:
        raise ModelError("at least one held-out seed is needed")
    if len(set(seeds)) != len(seeds):
        raise ModelError(f"held-out seeds repeat: {list(seeds)}")
    if training.seed in seeds:
        raise ModelError(
            f"held-out seed {training.seed} is the one the model was trained on: choose others"
        )
    chose = sorted(set(seeds) & set(calibration))
    if chose:
        raise ModelError(f"held-out seeds {chose} chose the model's thresholds: choose others")
    return [replace(training, seed=seed, mix=mix) for seed in seeds]


def _simulations(
    specs: Sequence[SimulationSpec], interval: int, progress: Progress
) -> list[Simulated]:
    simulations = []
    for spec in specs:
        progress(f"simulating held-out traffic, seed {spec.seed} ({spec.mix} mix)")
        simulations.append(simulate(spec, interval))
    return simulations


def _rows(
    simulations: Sequence[Simulated], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, kinds = [], [], []
    for simulation in simulations:
        x, y, k = simulation.rows(names)
        xs.append(x)
        ys.append(y)
        kinds.extend(k)
    return np.concatenate(xs), np.concatenate(ys).astype(bool), np.array(kinds)


def _visitor_figures(
    simulations: Sequence[Simulated],
    scores: np.ndarray,
    over: np.ndarray,
    block_requests_1m: int,
    thresholds: Thresholds,
    mix: str,
) -> VisitorFigures:
    """Each simulation's requests under the decisions its scores make, at the default TTLs;
    a row past the rate ceiling (``over``) decides a block."""
    enforcement = EnforcementSettings()
    decided_scores = np.where(over, 1.0, scores)
    visitors = np.array(
        [f"{i}/{s.user_id}" for i, sim in enumerate(simulations) for s in sim.snapshots]
    )
    parts, start = [], 0
    for simulation in simulations:
        end = start + len(simulation.snapshots)
        parts.append(
            visitor_requests(
                simulation.logs,
                simulation.snapshots,
                decided_scores[start:end],
                simulation.kind_of,
                simulation.bot_kinds,
                DECISION_LATENCY_S,
            )
        )
        start = end
    requests = combined(parts)
    decided = decisions(requests, thresholds, enforcement)
    return VisitorFigures(
        latency_s=DECISION_LATENCY_S,
        enforcement=enforcement,
        rate_ceiling=RateCeiling.of(block_requests_1m, over, visitors),
        overall=summarize(requests, decided),
        kinds=tuple((kind, summarize(requests, decided, kind)) for kind in MIXES[mix]),
    )


def _kind_figures(
    kind: str,
    scores: np.ndarray,
    kinds: np.ndarray,
    is_bot: np.ndarray,
    overall: Detection,
    challenge: float,
    blocks: np.ndarray,
) -> KindFigures:
    mine = kinds == kind
    own = scores[mine]
    roc_auc = pr_auc = None
    if PROFILES[kind].is_bot:
        against_humans = mine | ~is_bot
        roc_auc, pr_auc = separation(scores[against_humans], is_bot[against_humans])
    return KindFigures(
        kind=kind,
        is_bot=PROFILES[kind].is_bot,
        rows=int(own.size),
        challenged=share_at_or_above(own, challenge),
        blocked=share_at_or_above(own, blocks[mine]),
        at_human_rate=share_at_or_above(own, overall.human_rate_threshold),
        roc_auc=roc_auc,
        pr_auc=pr_auc,
    )


def _leave_each_kind_out(
    training: SimulationSpec,
    interval: int,
    names: Sequence[str],
    x: np.ndarray,
    kinds: np.ndarray,
    is_bot: np.ndarray,
    scores: np.ndarray,
    mix: str,
    human_rate: float,
    thresholds: tuple[float, np.ndarray],
    progress: Progress,
) -> tuple[tuple[LeftOut, ...], dict[str, np.ndarray]]:
    bot_kinds = [k for k in MIXES[mix] if PROFILES[k].is_bot]
    trained_on = [k for k in bot_kinds if k in MIXES[training.mix]]
    if trained_on:
        progress(f"simulating the training traffic again (seed {training.seed})")
        tx, ty, tkinds_list = training_rows(training, interval, names)
        tkinds = np.array(tkinds_list)
    results, all_scores = [], {}
    for kind in bot_kinds:
        training_size = None
        kind_scores = scores
        if kind in trained_on:
            progress(f"fitting without {kind} ({trained_on.index(kind) + 1}/{len(trained_on)})")
            lx, ly = left_out_training(tx, ty, tkinds, kind)
            model = fit_classifier(lx, ly, training.seed)
            kind_scores = bot_scores(model, x)
            training_size = len(ly)
        against_humans = (kinds == kind) | ~is_bot
        figures = detection(
            kind_scores[against_humans],
            is_bot[against_humans],
            thresholds[0],
            thresholds[1][against_humans],
            human_rate,
        )
        results.append(LeftOut(kind, training_size, figures))
        all_scores[kind] = kind_scores
    return tuple(results), all_scores
