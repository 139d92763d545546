"""The local view's PNG: each graph's y axis says what it counts."""

from __future__ import annotations

import pytest
from PIL import Image

from botscore.observability.history_png import axis_label, write_png
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
