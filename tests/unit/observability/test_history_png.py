"""The local view's PNG: each graph's y axis says what it counts."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from botscore.observability.history_png import axis_label, series, write_png
from botscore.observability.local_view import PANELS, Panel, Reduce


def test_every_panel_of_the_view_says_what_its_axis_counts():
    labels = {panel.title: axis_label(panel) for panel in PANELS}
    assert labels["access log not shipped (bytes)"] == "bytes"
    assert labels["consumer lag (largest partition)"] == "messages"
    assert labels["users scored"] == "per second"


def test_a_gauge_panel_without_a_unit_is_refused_rather_than_drawn_as_messages():
    with pytest.raises(ValueError, match="names no unit"):
        axis_label(Panel("queue depth", "botscore.x.depth", Reduce.MAX_LATEST))


def test_the_png_has_a_graph_per_panel(tmp_path):
    history = [(10.0, {"users scored": {"": 3.0}}), (11.0, {"users scored": {"": 4.0}})]
    write_png(history, tmp_path / "view.png")
    with Image.open(tmp_path / "view.png") as image:
        assert image.format == "PNG" and image.height > image.width


def test_a_rate_seen_in_one_snapshot_is_drawn_as_zero_around_it():
    """Dead letters come in bursts: one seen in a single snapshot must still show, and two
    bursts must not be joined across the quiet between them."""
    panel = next(p for p in PANELS if p.title == "dead letters")
    history = [
        (100.0, {"dead letters": {}}),
        (102.0, {"dead letters": {"undecodable": 0.5}}),
        (104.0, {"dead letters": {}}),
        (106.0, {"dead letters": {"undecodable": 0.2, "too_large": 0.1}}),
    ]
    assert series(history, panel) == {
        "too_large": ([0.0, 2.0, 4.0, 6.0], [0.0, 0.0, 0.0, 0.1]),
        "undecodable": ([0.0, 2.0, 4.0, 6.0], [0.0, 0.5, 0.0, 0.2]),
    }


def test_a_latency_a_snapshot_lacks_is_a_gap_not_a_zero():
    panel = next(p for p in PANELS if p.reduce is Reduce.P99_MS)
    history = [(0.0, {panel.title: {"": 30.0}}), (2.0, {}), (4.0, {panel.title: {"": 40.0}})]
    [(xs, ys)] = series(history, panel).values()
    assert xs == [0.0, 2.0, 4.0] and ys[0] == 30.0 and math.isnan(ys[1]) and ys[2] == 40.0
