"""Who visits: every kind present, addresses flagged right, odd profiles refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from botscore.errors import SimulationSpecError
from botscore.simulator.population import build_population, is_datacenter
from botscore.simulator.profiles import MIXES, PROFILES, profiles_in
from botscore.simulator.spec import SimulationSpec

BOT_KINDS = sorted(k for k, p in PROFILES.items() if p.is_bot)


@pytest.mark.parametrize(("fixture", "mix"), [("traffic", "classic"), ("wide_traffic", "wide")])
def test_every_kind_of_the_mix_is_in_the_population_and_the_traffic(fixture, mix, request):
    population, generator, _, by_kind, _, _ = request.getfixturevalue(fixture)
    counts = population.kind_counts()
    assert list(counts) == list(MIXES[mix])
    assert sum(counts.values()) == 600
    assert sum(counts[k] for k in BOT_KINDS if k in counts) == 180
    for kind in MIXES[mix]:
        assert counts[kind] > 0, kind
        assert len(by_kind[kind]) == generator.stats.sent_by_kind[kind] > 0, kind


def test_the_default_mix_is_the_classic_one_and_wide_has_every_kind():
    assert SimulationSpec().mix == "classic"
    assert build_population(50, 0.3, 1).profiles == profiles_in("classic")
    assert MIXES["wide"] == tuple(PROFILES)
    with pytest.raises(SimulationSpecError, match=r"^mix must be one of classic, wide"):
        SimulationSpec(mix="everything")


def test_humans_are_split_over_the_human_kinds_by_share():
    counts = build_population(1000, 0.3, 1, profiles=profiles_in("wide")).kind_counts()
    # 700 humans: one each, then the 697 left by share 0.9 / 0.05 / 0.05.
    assert (counts["human"], counts["power_user"], counts["corporate_proxy"]) == (628, 36, 36)


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
