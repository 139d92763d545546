"""The local view's figures, worked out by hand from the samples given."""

import pytest

from botscore.observability.catalog import CATALOG
from botscore.observability.local_view import PANELS, LocalView, render, silent_after
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


ENFORCER_LAG = "botscore.enforcer.lag:{}|g|#component:enforcer,topic:scores,partition:0"
SPOUT_LAG = "botscore.features_spout.lag:0|g|#component:features_spout,topic:features,partition:0"
SILENT = "components silent"


def test_the_bound_is_two_lag_intervals_and_a_late_report_s_2_s():
    assert silent_after(5000) == 12.0
    assert silent_after(100) == 2.2


def test_a_consumer_that_stops_sending_is_silent_after_the_bound_and_not_before():
    """The fault test's hung enforcer: its lag stops, the spout's keeps coming."""
    view = LocalView(window_s=10, silent_after_s=12)
    add(view, 0.0, ENFORCER_LAG.format(3), SPOUT_LAG)
    add(view, 5.0, ENFORCER_LAG.format(1031), SPOUT_LAG)  # then SIGSTOP
    for at in range(10, 61, 5):
        add(view, float(at), SPOUT_LAG)
    assert view.figures(16.9)[SILENT] == {}  # 11.9 s: a report late, not missed
    assert view.figures(17.5)[SILENT] == {"enforcer": 12.5}
    assert view.figures(50.0)[SILENT] == {"enforcer": 45.0}
    # the lag panel alone dropped it, as if it were idle
    assert view.figures(50.0)["consumer lag (largest partition)"] == {"features_spout": 0.0}


def test_a_silent_consumer_is_no_longer_listed_once_it_sends_again():
    view = LocalView(window_s=10, silent_after_s=12)
    add(view, 0.0, ENFORCER_LAG.format(1031))
    assert view.figures(45.0)[SILENT] == {"enforcer": 45.0}
    add(view, 45.5, ENFORCER_LAG.format(900))  # SIGCONT
    assert view.figures(46.0)[SILENT] == {}
    assert view.figures(46.0)["consumer lag (largest partition)"] == {"enforcer": 900.0}


def test_any_metric_of_a_consumer_shows_it_alive():
    """A broker that does not answer end offsets costs the lag, not the component's life:
    it counts ``lag_read_failed`` (on no panel) instead."""
    view = LocalView(window_s=10, silent_after_s=12)
    add(view, 0.0, ENFORCER_LAG.format(0))
    for at in range(5, 41, 5):
        add(view, float(at), "botscore.enforcer.lag_read_failed:1|c|#component:enforcer")
    assert view.figures(41.0)[SILENT] == {}
    assert view.figures(53.0)[SILENT] == {"enforcer": 13.0}


def test_components_that_send_no_lag_are_not_watched():
    """An idle classifier sends nothing at all: only a timer's gauge tells a hang apart."""
    view = LocalView(window_s=10, silent_after_s=12)
    add(view, 0.0, "botscore.classifier.scored:5|c|#component:classifier")
    assert view.figures(100.0)[SILENT] == {}


def test_render_lists_the_silent_components_with_how_long():
    view = LocalView(window_s=10, silent_after_s=12)
    add(view, 0.0, ENFORCER_LAG.format(1031), SPOUT_LAG)
    add(view, 44.0, SPOUT_LAG)
    lines = render(view.snapshot(45.0)).splitlines()
    assert "components silent                  enforcer 45.0 s" in lines
    assert view.history[-1][1][SILENT] == {"enforcer": 45.0}  # drawn by --png as well
