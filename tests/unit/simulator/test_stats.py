"""What a run counts: the edge's decisions by group and by whole simulated minute."""

from __future__ import annotations

import pytest

from botscore.simulator.stats import EdgeCounts, SimulationStats


def test_allowed_share_leaves_out_the_minute_the_scores_arrived_in():
    stats = SimulationStats()
    for t, decision in [(10, "allow"), (70, "allow"), (80, "block"), (130, "block")]:
        stats.record(t, "c-bot", "scraper", True, decision)
    stats.record(20, "c-human", "human", False, "challenge")
    assert stats.by_minute[0].humans == EdgeCounts(requests=1, challenged=1)
    assert stats.bot_allowed_share() == pytest.approx(2 / 4)
    assert stats.bot_allowed_share(end_s=75) == 1.0  # minute 0 only
    assert stats.bot_allowed_share(start_s=75) == 0.0  # minute 2 only
    assert stats.bot_allowed_share(start_s=200) is None
    assert stats.bots_blocked == {"c-bot"} and stats.humans_challenged == {"c-human"}


def test_first_enforced_is_the_earliest_block_or_challenge_of_anyone():
    stats = SimulationStats()
    stats.record(5, "c-bot", "scraper", True, "allow")
    assert stats.first_enforced_s is None
    stats.record(30, "c-human", "human", False, "challenge")
    stats.record(12, "c-bot", "scraper", True, "block")
    stats.record(40, "c-bot", "scraper", True, "block")
    assert stats.first_enforced_s == 12
