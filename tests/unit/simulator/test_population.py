"""Who visits and how each kind behaves: every kind present and recognisable."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import replace

import crawleruseragents
import pytest

from botscore.errors import SimulationSpecError
from botscore.simulator.population import PROFILES, build_population, is_datacenter

BOT_KINDS = sorted(k for k, p in PROFILES.items() if p.is_bot)


def _median_gap_s(traffic, kind):
    """Median over the kind's users of their median time between requests."""
    _, _, _, _, by_user, kind_of = traffic
    gaps = [
        statistics.median(
            (b.time_unix_ms - a.time_unix_ms) / 1000 for a, b in itertools.pairwise(v)
        )
        for user, v in by_user.items()
        if kind_of[user] == kind and len(v) > 2
    ]
    return statistics.median(gaps)


def _share(events, predicate):
    return sum(1 for e in events if predicate(e)) / len(events)


def test_every_kind_is_in_the_population_and_the_traffic(traffic):
    population, generator, _, by_kind, _, _ = traffic
    counts = population.kind_counts()
    assert sum(counts.values()) == 600
    assert sum(counts[k] for k in BOT_KINDS) == 180
    for kind in PROFILES:
        assert counts[kind] > 0, kind
        assert len(by_kind[kind]) == generator.stats.sent_by_kind[kind] > 0, kind


def test_scrapers_request_far_faster_than_humans(traffic):
    assert _median_gap_s(traffic, "scraper") * 5 < _median_gap_s(traffic, "human")


def test_credential_stuffers_hammer_login_and_fail(traffic):
    by_kind = traffic[3]
    stuffers = by_kind["credential_stuffer"]
    logins = [e for e in stuffers if e.method == "POST" and e.path == "/login"]
    assert len(logins) / len(stuffers) > 0.8
    assert _share(logins, lambda e: e.status in (401, 403)) > 0.8
    assert _share(by_kind["human"], lambda e: e.method == "POST") < 0.05


def test_crawlers_declare_themselves_and_humans_do_not(traffic):
    by_kind = traffic[3]
    assert all(crawleruseragents.is_crawler(e.user_agent) for e in by_kind["crawler"])
    assert not any(crawleruseragents.is_crawler(e.user_agent) for e in by_kind["human"])
    assert any(e.path == "/robots.txt" for e in by_kind["crawler"])
    assert _share(by_kind["crawler"], lambda e: e.method == "HEAD") > 0.05


def test_spoofers_rotate_data_centre_ips_behind_browser_agents(traffic):
    _, _, _, by_kind, by_user, kind_of = traffic
    assert all(e.ip_is_datacenter for e in by_kind["spoofer"])
    assert not any(crawleruseragents.is_crawler(e.user_agent) for e in by_kind["spoofer"])
    ips = {
        k: [len({e.ip for e in v}) for u, v in by_user.items() if kind_of[u] == k]
        for k in ("spoofer", "human")
    }
    assert statistics.median(ips["spoofer"]) > 20
    assert max(ips["human"]) <= 2
    assert _share(by_kind["human"], lambda e: e.ip_is_datacenter) < 0.2


def test_stealthy_bots_pace_like_humans_but_never_run_javascript(traffic):
    by_kind = traffic[3]
    human, stealth = _median_gap_s(traffic, "human"), _median_gap_s(traffic, "stealth")
    assert human / 3 < stealth < human * 3
    assert not any(e.js_check_passed for e in by_kind["stealth"])
    assert not any(e.ip_is_datacenter for e in by_kind["stealth"])
    assert _share(by_kind["human"], lambda e: e.js_check_passed) > 0.8


def test_datacenter_flag_matches_the_address(traffic):
    events = traffic[2]
    assert all(e.ip_is_datacenter == is_datacenter(e.ip) for e in events[:5000])


def test_a_population_without_a_human_kind_needs_every_user_to_be_a_bot():
    bots_only = {k: p for k, p in PROFILES.items() if p.is_bot}
    assert len(build_population(10, 1.0, 1, profiles=bots_only).users) == 10
    with pytest.raises(SimulationSpecError, match="no human kind"):
        build_population(10, 0.5, 1, profiles=bots_only)


def test_a_profile_with_an_unknown_user_agent_source_is_refused():
    odd = {k: replace(p, ua_source="telnet") for k, p in PROFILES.items()}
    with pytest.raises(SimulationSpecError, match="unknown ua_source 'telnet'"):
        build_population(10, 0.3, 1, profiles=odd)
