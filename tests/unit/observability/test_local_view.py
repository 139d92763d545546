"""The local view's figures, worked out by hand from the samples given."""

import pytest

from botscore.observability.catalog import CATALOG
from botscore.observability.local_view import PANELS, LocalView, render
from botscore.observability.statsd_lines import parse_line


def add(view: LocalView, at: float, *lines: str) -> None:
    view.add([parse_line(line) for line in lines], at)


def test_every_panel_graphs_declared_metrics():
    names = [
        f"botscore.{component}.{what}" for component, found in CATALOG.items() for what in found
    ]
    for panel in PANELS:
        assert any(panel.matches(name) for name in names), panel


def test_counts_become_a_rate_over_the_window():
    view = LocalView(window_s=10)
    add(view, 100.0, "botscore.classifier.scored:500|c")
    add(view, 104.0, "botscore.classifier.scored:500|c", "botscore.classifier.scored:1000|c")
    # watched for 5 s so far: 2,000 users in 5 s
    assert view.figures(105.0)["users scored"] == {"": 400.0}
    # at 112 the first sample (at 100) has left the 10 s window: 1,500 in 10 s
    assert view.figures(112.0)["users scored"] == {"": 150.0}
    assert view.figures(130.0)["users scored"] == {}


def test_rates_split_by_a_tag_and_summed_over_components():
    view = LocalView(window_s=10)
    add(
        view,
        0.0,
        "botscore.enforcer.scores:6|c|#outcome:block,component:enforcer",
        "botscore.enforcer.scores:4|c|#outcome:allow,component:enforcer",
        "botscore.features_spout.dead_lettered:2|c|#reason:undecodable",
        "botscore.web_logs_spout.dead_lettered:3|c|#reason:undecodable",
        "botscore.enforcer.dead_lettered:5|c|#reason:missing_user_id",
    )
    figures = view.figures(10.0)
    assert figures["scores enforced"] == {"block": 0.6, "allow": 0.4}
    assert figures["dead letters"] == {"undecodable": 0.5, "missing_user_id": 0.5}


def test_histograms_show_their_99th_percentile_in_ms():
    view = LocalView(window_s=10)
    add(view, 0.0, *(f"botscore.classifier.predict_seconds:{i / 1000}|h" for i in range(1, 101)))
    assert view.figures(1.0)["model call p99"][""] == pytest.approx(99.01)


def test_lag_is_the_largest_latest_gauge_per_component():
    view = LocalView(window_s=10)
    spout = "botscore.features_spout.lag:{}|g|#component:features_spout,partition:{}"
    add(view, 0.0, spout.format(900, 0), spout.format(50, 1))
    add(view, 5.0, spout.format(10, 0))  # partition 0 caught up; partition 1's 50 stays
    add(view, 6.0, "botscore.enforcer.lag:7|g|#component:enforcer,partition:0")
    assert view.figures(7.0)["consumer lag (largest partition)"] == {
        "features_spout": 50.0,
        "enforcer": 7.0,
    }
    # a gauge not sent again within the window is no longer shown
    assert view.figures(15.5)["consumer lag (largest partition)"] == {"enforcer": 7.0}


def test_metrics_no_panel_shows_are_not_kept():
    view = LocalView(window_s=10)
    add(view, 0.0, "kafka.consumer_lag:5|g", "botscore.aggregate.batch_size:256|h")
    assert view._samples == type(view._samples)() and view._latest == {}


def test_render_shows_a_line_per_panel_and_a_dash_when_nothing_came():
    view = LocalView(window_s=10)
    add(view, 0.0, "botscore.enforcer.scores:20|c|#outcome:block")
    text = render(view.snapshot(10.0))
    lines = text.splitlines()
    assert len(lines) == len(PANELS)
    assert "scores enforced" in text and "block 2.0/s" in text
    assert any(line.startswith("users scored") and line.endswith(" -") for line in lines)
    assert len(view.history) == 1
