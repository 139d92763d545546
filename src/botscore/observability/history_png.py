"""The local view's figures over a run, drawn as one PNG (a graph per panel).

Drawn with matplotlib's Agg backend: no display is needed, and the same arguments give
the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from botscore.observability.local_view import PANELS, Figures, Panel, Reduce

__all__ = ["axis_label", "series", "write_png"]

# The y axis of a panel that does not name its own (``Panel.axis``); a gauge's panel must.
AXES = {Reduce.RATE: "per second", Reduce.P99_MS: "ms", Reduce.SILENT_S: "seconds silent"}


def axis_label(panel: Panel) -> str:
    """What ``panel``'s y axis counts; ``ValueError`` for a gauge's panel that does not say."""
    label = panel.axis or AXES.get(panel.reduce)
    if label is None:
        raise ValueError(f"panel {panel.title!r} shows a gauge and names no unit (Panel.axis)")
    return label


def series(
    history: Sequence[tuple[float, Figures]], panel: Panel
) -> dict[str, tuple[list[float], list[float]]]:
    """Per group of ``panel``, seconds since the first snapshot and its figure at each one.

    A rate that a snapshot lacks was 0 then (nothing was counted in its window): dead
    letters come in bursts, and a line through the snapshots that had some hid the bursts
    seen once and joined the others across the quiet between. A latency or a gauge that a
    snapshot lacks is unknown then (NaN, a gap in its line).
    """
    start = history[0][0] if history else 0.0
    absent = 0.0 if panel.reduce is Reduce.RATE else math.nan
    groups = sorted({g for _, figures in history for g in figures.get(panel.title, {})})
    xs = [at - start for at, _ in history]
    return {
        group: (xs, [figures.get(panel.title, {}).get(group, absent) for _, figures in history])
        for group in groups
    }


def write_png(
    history: Sequence[tuple[float, Figures]], path: Path, panels: Sequence[Panel] = PANELS
) -> None:
    """One graph per panel, seconds since the first snapshot on x, a line per group."""
    if not history:
        raise ValueError("nothing to draw: no snapshot was taken")
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(12, 2.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        lines = series(history, panel)
        groups = sorted(lines)
        for group in groups:
            xs, ys = lines[group]
            # dots where a figure between gaps (or in one snapshot) has no line to draw
            dots = panel.reduce is not Reduce.RATE or len(xs) == 1
            ax.plot(xs, ys, label=group or None, marker="." if dots else None, markersize=3)
        if not groups:
            ax.text(0.5, 0.5, "nothing received", ha="center", va="center", color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(panel.title, fontsize=10)
        ax.set_ylabel(axis_label(panel), fontsize=8)
        ax.tick_params(labelsize=8)
        if any(groups):
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("seconds", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(figure)
