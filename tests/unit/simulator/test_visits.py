"""Per-visitor figures, worked out by hand from a few visits."""

from __future__ import annotations

import pytest

from botscore.simulator.stats import SimulationStats
from botscore.simulator.visits import BLOCK_DEADLINES_S, summarize_visits


def _stats(requests):
    stats = SimulationStats()
    for t, user, is_bot, decision in requests:
        kind = "human" if not is_bot else "crawler" if user == "b3" else "scraper"
        stats.record(t, user, kind, is_bot, decision)
    return stats


REQUESTS = [
    # a human challenged once in 4 requests, one never affected, one blocked then allowed
    (100, "h1", False, "allow"),
    (101, "h1", False, "challenge"),
    (102, "h1", False, "allow"),
    (103, "h1", False, "allow"),
    (100, "h2", False, "allow"),
    (150, "h3", False, "block"),
    (160, "h3", False, "allow"),
    # bots: blocked 4 s, 30 s after their first request; one never blocked
    (110, "b1", True, "allow"),
    (114, "b1", True, "block"),
    (120, "b2", True, "challenge"),
    (150, "b2", True, "block"),
    (130, "b3", True, "allow"),
    # arrived before the scores could reach the edge
    (10, "early", False, "allow"),
    (50, "early", False, "challenge"),
]


def test_each_visitor_counts_once_whatever_its_number_of_requests():
    summary = summarize_visits(_stats(REQUESTS).visits, arrived_from_s=60)
    assert (summary.humans, summary.bots) == (3, 3)
    assert summary.humans_challenged == pytest.approx(1 / 3)
    assert summary.humans_blocked == pytest.approx(1 / 3)
    assert summary.human_requests_affected == pytest.approx(2 / 7)
    assert summary.bots_blocked == pytest.approx(2 / 3)
    assert summary.bots_blocked_within_10s == pytest.approx(1 / 3)
    # b1 blocked after 4 s, b2 after 30 s, b3 never: the distribution of the three
    assert summary.bots_blocked_within == (
        (5.0, pytest.approx(1 / 3)),
        (10.0, pytest.approx(1 / 3)),
        (30.0, pytest.approx(2 / 3)),
        (60.0, pytest.approx(2 / 3)),
        (300.0, pytest.approx(2 / 3)),
    )
    # b2's second request came 30 s after its first, b3 sent one: neither could be blocked
    # within 10 s by any policy.
    assert summary.bots_blockable_within_10s == pytest.approx(1 / 3)
    assert summary.time_to_block_s == (17.0, pytest.approx(27.4), 30.0)


def test_the_figures_of_one_kind_count_its_visitors_only():
    visits = _stats(REQUESTS).visits
    scrapers = summarize_visits(visits, arrived_from_s=60, kind="scraper")
    assert (scrapers.humans, scrapers.bots, scrapers.bots_blocked) == (0, 2, 1.0)
    crawlers = summarize_visits(visits, arrived_from_s=60, kind="crawler")
    assert (crawlers.bots, crawlers.bots_blocked, crawlers.time_to_block_s) == (1, 0.0, None)
    humans = summarize_visits(visits, arrived_from_s=60, kind="human")
    assert (humans.humans, humans.bots) == (3, 0)
    assert humans.humans_text() == (
        "3 humans: 33.33% ever challenged, 33.33% ever blocked, 28.57% of their requests affected"
    )
    assert crawlers.bots_text(20) == (
        "1 bots: 0.0% blocked, 0.0% within 10 s (at most 0.0% could be: the others sent one "
        "request in their first 10 s); within 5, 10, 30, 60, 300 s: 0.0%, 0.0%, 0.0%, 0.0%, "
        "0.0%; no bot blocked (simulated seconds, 20x)"
    )


def test_visitors_who_arrived_before_the_moment_are_left_out():
    everyone = summarize_visits(_stats(REQUESTS).visits)
    assert everyone.humans == 4 and everyone.humans_challenged == pytest.approx(2 / 4)
    nobody = summarize_visits({})
    assert nobody.time_to_block_s is None
    assert nobody.bots_blocked_within == tuple((d, 0.0) for d in BLOCK_DEADLINES_S)


def test_the_sets_of_blocked_bots_and_challenged_humans_come_from_the_visits():
    stats = _stats(REQUESTS)
    assert stats.bots_blocked == {"b1", "b2"}
    assert stats.humans_challenged == {"h1", "early"}


def test_the_text_says_which_clock_its_seconds_are_on():
    summary = summarize_visits(_stats(REQUESTS).visits, arrived_from_s=60)
    assert summary.text().endswith("max 30.0 s")
    assert summary.text(20).endswith("max 30.0 s (simulated seconds, 20x)")
    assert "3 humans: 33.33% ever challenged" in summary.text()
    assert "33.3% within 10 s (at most 33.3% could be: " in summary.text()


def test_a_bot_could_be_blocked_within_10_s_when_its_second_request_came_by_then():
    stats = _stats(
        [
            (100, "b1", True, "allow"),
            (110, "b1", True, "allow"),  # exactly 10 s later: in time
            (100, "b2", True, "allow"),
            (110.5, "b2", True, "allow"),  # too late
            (100, "b3", True, "allow"),  # one request only
        ]
    )
    assert summarize_visits(stats.visits).bots_blockable_within_10s == pytest.approx(1 / 3)


def test_with_no_bot_no_bot_is_counted_blocked():
    nobody = summarize_visits({})
    assert (nobody.bots, nobody.bots_blocked) == (0, 0.0)
    assert nobody.bots_text().startswith("0 bots: 0.0% blocked, 0.0% within 10 s")


def test_the_bots_text_is_on_the_real_clock_unless_told_otherwise():
    summary = summarize_visits(_stats(REQUESTS).visits, arrived_from_s=60)
    assert summary.bots_text().endswith("max 30.0 s")
    assert summary.bots_text(2).endswith("max 30.0 s (simulated seconds, 2x)")
