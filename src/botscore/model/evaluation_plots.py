"""The evaluation's figures as PNG: ROC and precision-recall curves and score histograms.

Every bot kind is drawn against every human row, by the model and by the model fitted
without it. Drawn with matplotlib's Agg backend and saved without a software stamp, so the
same evaluation gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from botscore.model.evaluation import Evaluation

__all__ = ["HISTOGRAMS", "PR", "ROC", "write_plots"]

ROC = "evaluation-roc.png"
PR = "evaluation-pr.png"
HISTOGRAMS = "evaluation-scores.png"

# False-positive rates below this are drawn at it: a log axis has no zero.
_LOWEST_RATE = 1e-5
_DPI = 80


def write_plots(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """Draw the three figures into ``out_dir``; return their paths."""
    written = [out_dir / ROC, out_dir / PR, out_dir / HISTOGRAMS]
    _curves(evaluation, written[0], roc=True)
    _curves(evaluation, written[1], roc=False)
    _histograms(evaluation, written[2])
    return written


def _bot_kinds(evaluation: Evaluation) -> list[str]:
    return [k.kind for k in evaluation.kinds if k.is_bot]


def _colour(evaluation: Evaluation, kind: str) -> tuple[float, float, float, float]:
    names = [k.kind for k in evaluation.kinds]
    colour: tuple[float, float, float, float] = plt.get_cmap("tab10")(names.index(kind) % 10)
    return colour


def _curves(evaluation: Evaluation, path: Path, roc: bool) -> None:
    rows = evaluation.rows
    figure, panels = plt.subplots(1, 2, figsize=(12, 5), sharex=True, sharey=True)
    titles = ("the model", "the model fitted without the kind")
    for panel, title, left_out in zip(panels, titles, (False, True), strict=True):
        for kind in _bot_kinds(evaluation):
            scores = rows.left_out[kind] if left_out else rows.scores
            against_humans = (rows.kinds == kind) | ~rows.is_bot
            truth, mine = rows.is_bot[against_humans], scores[against_humans]
            # PR as steps, as average precision sums it: a straight line between two
            # thresholds would draw precisions no threshold gives.
            if roc:
                x, y, _ = roc_curve(truth, mine)
                x, style = np.maximum(x, _LOWEST_RATE), "default"
            else:
                y, x, _ = precision_recall_curve(truth, mine)
                style = "steps-post"
            panel.plot(
                x, y, label=kind, color=_colour(evaluation, kind), linewidth=1.2, drawstyle=style
            )
        panel.set_title(title)
        _decorate(panel, evaluation, roc)
    panels[1].legend(loc="lower right" if roc else "lower left", fontsize="small")
    name = f"{evaluation.manifest.name} {evaluation.manifest.version}"
    kind_of_curve = "ROC" if roc else "precision-recall"
    figure.suptitle(f"{name}: {kind_of_curve} of each bot kind against every human row")
    figure.tight_layout()
    _save(figure, path)


def _decorate(panel: Axes, evaluation: Evaluation, roc: bool) -> None:
    if roc:
        panel.set_xscale("log")
        panel.set_xlim(_LOWEST_RATE, 1.0)
        panel.axvline(evaluation.human_rate, color="grey", linestyle=":", linewidth=1)
        panel.set_xlabel("human rows flagged (false-positive rate)")
        panel.set_ylabel("bot rows flagged (recall)")
    else:
        panel.set_xlabel("recall")
        panel.set_ylabel("precision")
    panel.set_ylim(0.0, 1.02)
    panel.grid(True, alpha=0.3)


def _histograms(evaluation: Evaluation, path: Path) -> None:
    rows = evaluation.rows
    columns = 5
    lines = -(-len(evaluation.kinds) // columns)
    figure, panels = plt.subplots(
        lines, columns, figsize=(3.2 * columns, 2.6 * lines), sharex=True, squeeze=False
    )
    bins = np.linspace(0.0, 1.0, 41)
    thresholds = evaluation.manifest.thresholds
    refitted = {left.kind for left in evaluation.left_out if left.training_rows is not None}
    for panel, figures in zip(panels.flat, evaluation.kinds, strict=False):
        kind = figures.kind
        mine = rows.kinds == kind
        colour = _colour(evaluation, kind)
        panel.hist(rows.scores[mine], bins=bins, color=colour, alpha=0.7, label="model")
        if kind in refitted:
            panel.hist(
                rows.left_out[kind][mine],
                bins=bins,
                histtype="step",
                color="black",
                linewidth=1,
                label="fitted without it",
            )
        for threshold in (thresholds.challenge, thresholds.block):
            panel.axvline(threshold, color="grey", linestyle=":", linewidth=1)
        for early in thresholds.early_block:
            panel.axvline(early.block, color="grey", linestyle="--", linewidth=0.5)
        panel.set_yscale("log")
        panel.set_title(f"{kind} ({'bot' if figures.is_bot else 'human'})", fontsize="medium")
        panel.tick_params(labelsize="small")
    for panel in list(panels.flat)[len(evaluation.kinds) :]:
        panel.set_visible(False)
    first_refitted = next(
        (p for p, k in zip(panels.flat, evaluation.kinds, strict=False) if k.kind in refitted),
        panels.flat[0],
    )
    first_refitted.legend(fontsize="x-small")
    figure.suptitle("held-out rows by score, per kind (dotted: challenge and block thresholds)")
    figure.tight_layout()
    _save(figure, path)


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=_DPI, metadata={"Software": None})
    plt.close(figure)
