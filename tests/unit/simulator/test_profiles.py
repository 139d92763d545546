"""How each kind behaves: every kind recognisable in the traffic it makes."""

from __future__ import annotations

import itertools
import statistics

import crawleruseragents


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


def _ips_per_user(traffic, kind):
    _, _, _, _, by_user, kind_of = traffic
    return [len({e.ip for e in v}) for u, v in by_user.items() if kind_of[u] == kind]


def test_power_users_are_fast_on_several_addresses_and_still_run_javascript(wide_traffic):
    by_kind = wide_traffic[3]
    power = by_kind["power_user"]
    assert _median_gap_s(wide_traffic, "power_user") * 3 < _median_gap_s(wide_traffic, "human")
    assert statistics.median(_ips_per_user(wide_traffic, "power_user")) >= 2
    assert _share(power, lambda e: e.path.startswith("/api/")) > 0.25
    assert _share(power, lambda e: e.js_check_passed) > 0.8


def test_corporate_humans_share_a_few_data_centre_gateways(wide_traffic):
    _, _, _, by_kind, by_user, _ = wide_traffic
    corporate = by_kind["corporate_proxy"]
    users = {e.user_id for e in corporate}
    gateways = {e.ip for e in corporate}
    assert len(gateways) <= 24
    # every gateway address is used by more than one employee on average
    assert sum(len({e.ip for e in by_user[u]}) for u in users) > 2 * len(gateways)
    assert _share(corporate, lambda e: e.ip_is_datacenter) > 0.7
    assert _share(corporate, lambda e: e.js_check_passed) > 0.8
    assert not {e.ip for e in by_kind["human"]} & gateways


def test_residential_scrapers_pace_like_humans_from_many_home_addresses(wide_traffic):
    by_kind = wide_traffic[3]
    human = _median_gap_s(wide_traffic, "human")
    assert human / 3 < _median_gap_s(wide_traffic, "residential_scraper") < human * 3
    scraper = by_kind["residential_scraper"]
    assert not any(e.ip_is_datacenter for e in scraper)
    assert not any(e.js_check_passed for e in scraper)
    assert statistics.median(_ips_per_user(wide_traffic, "residential_scraper")) > 10
    assert not any(crawleruseragents.is_crawler(e.user_agent) for e in scraper)


def test_headless_browsers_run_javascript_and_load_assets_like_humans(wide_traffic):
    _, _, _, by_kind, by_user, _ = wide_traffic
    headless, human = by_kind["headless_browser"], by_kind["human"]

    def is_asset(e):
        return e.path.startswith(("/static/", "/img/", "/favicon"))

    assert _share(headless, lambda e: e.js_check_passed) > 0.8
    assert _share(headless, is_asset) > _share(human, is_asset) / 2
    # one stock user agent per bot, kept like its session
    assert all(len({e.user_agent for e in by_user[e.user_id]}) == 1 for e in headless)
    assert _median_gap_s(wide_traffic, "headless_browser") < _median_gap_s(wide_traffic, "human")
