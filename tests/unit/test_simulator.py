"""The edge traffic simulator: reproducible, each kind recognisable, labels kept apart."""

import itertools
import re
import statistics
import time
from collections import defaultdict

import crawleruseragents
import pytest

from botscore.errors import BotscoreError
from botscore.settings import Settings
from botscore.simulator import run
from botscore.simulator.labels import HEADER, read_labels, write_labels
from botscore.simulator.population import PROFILES, build_population, is_datacenter
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog

START_MS = 1_700_000_000_000
BOT_KINDS = sorted(k for k, p in PROFILES.items() if p.is_bot)


def _events(users=600, bot_share=0.3, seed=11, rate=100.0, duration_s=400.0, **kwargs):
    population = build_population(users, bot_share, seed)
    generator = TrafficGenerator(population, rate, duration_s, seed, START_MS, **kwargs)
    return population, generator, list(generator)


@pytest.fixture(scope="module")
def traffic():
    population, generator, events = _events()
    kind_of = {u.user_id: u.kind for u in population.users}
    by_kind = defaultdict(list)
    by_user = defaultdict(list)
    for event in events:
        by_kind[kind_of[event.user_id]].append(event)
        by_user[event.user_id].append(event)
    return population, generator, events, by_kind, by_user, kind_of


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


def test_same_seed_gives_identical_events_and_labels(tmp_path):
    first = _events(seed=5, rate=50, duration_s=60)
    second = _events(seed=5, rate=50, duration_s=60)
    assert [e.SerializeToString() for e in first[2]] == [e.SerializeToString() for e in second[2]]
    write_labels(first[0], tmp_path / "a.csv")
    write_labels(second[0], tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_different_seed_gives_different_events_and_labels(tmp_path):
    first = _events(seed=5, rate=50, duration_s=60)
    other = _events(seed=6, rate=50, duration_s=60)
    assert [e.SerializeToString() for e in first[2]] != [e.SerializeToString() for e in other[2]]
    assert {u.user_id for u in first[0].users}.isdisjoint(u.user_id for u in other[0].users)
    write_labels(first[0], tmp_path / "a.csv")
    write_labels(other[0], tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "b.csv").read_bytes()


def test_rate_and_simulated_clock(traffic):
    _, generator, events, *_ = traffic
    assert len(events) / 400 == pytest.approx(100, rel=0.1)
    times = [e.time_unix_ms for e in events]
    assert times == sorted(times)
    assert times[0] >= START_MS and times[-1] < START_MS + 400_000
    assert generator.stats.sent == len(events)
    assert all(e.schema_version == 1 for e in events)


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


def test_labels_stay_out_of_the_messages(traffic, tmp_path):
    population, _, events, _, _, kind_of = traffic
    assert write_labels(population, tmp_path / "labels.csv") == 600
    assert (tmp_path / "labels.csv").read_text().splitlines()[0] == ",".join(HEADER)
    labels = read_labels(tmp_path / "labels.csv")
    assert labels == {u.user_id: (u.kind, PROFILES[u.kind].is_bot) for u in population.users}
    # User ids are opaque cookies of one shape for every kind; no kind name inside.
    pattern = re.compile(r"c-[0-9a-f]{16}")
    assert all(pattern.fullmatch(user_id) for user_id in kind_of)
    words = [k.split("_")[0] for k in PROFILES] + ["bot"]
    for event in events:
        assert not any(w in event.user_id or w in event.request_id for w in words)
    assert not any(f.name in ("kind", "is_bot", "label") for f in WebLog.DESCRIPTOR.fields)


def test_blocked_users_produce_no_events_and_others_are_unchanged():
    population, _, allowed = _events(seed=3, rate=60, duration_s=120)
    blocked = {u.user_id for u in population.users if u.kind == "scraper"}
    blocked |= {u.user_id for u in population.users[:50]}
    _, generator, kept = _events(
        seed=3,
        rate=60,
        duration_s=120,
        decision_for=lambda user_id: "block" if user_id in blocked else "allow",
    )
    expected = [e for e in allowed if e.user_id not in blocked]
    assert len(expected) < len(allowed)
    assert kept == expected
    assert generator.stats.blocked == len(allowed) - len(kept)
    assert generator.stats.blocked_by_kind["scraper"] > 0
    assert generator.stats.sent_by_kind["scraper"] == 0


def test_a_challenge_stops_clients_without_javascript():
    _, generator, events = _events(
        seed=4, rate=40, duration_s=120, decision_for=lambda _: "challenge"
    )
    assert generator.stats.challenged == len(events)
    assert all(e.status == 403 for e in events if not e.js_check_passed)
    assert any(e.status != 403 for e in events if e.js_check_passed)


def test_unknown_decision_is_an_error():
    with pytest.raises(ValueError, match="returned 'deny'"):
        _events(rate=10, duration_s=10, decision_for=lambda _: "deny")


def test_rate_beyond_the_population_is_an_error():
    with pytest.raises(ValueError, match="raise users"):
        _events(users=20, rate=5000, duration_s=1)


class _FakeFuture:
    def __init__(self, error):
        self.error = error

    def add_errback(self, callback):
        if self.error:
            callback(self.error)


class _FakeProducer:
    def __init__(self, error=None):
        self.sent, self.error, self.flushed = [], error, False

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))
        return _FakeFuture(self.error)

    def flush(self):
        self.flushed = True

    def close(self, timeout=None):
        pass


def _patch_kafka(monkeypatch, producer):
    monkeypatch.setattr(run, "create_producer", lambda settings, client_id: producer)
    monkeypatch.setattr(run, "ensure_topics", lambda settings, topics: [])


def test_simulate_sends_keyed_weblogs_paced_to_the_rate(monkeypatch, tmp_path):
    producer = _FakeProducer()
    _patch_kafka(monkeypatch, producer)
    started = time.monotonic()
    stats = run.simulate(
        Settings(), 150, 1.0, 9, tmp_path / "labels.csv", 600, 0.3, False, topic="t"
    )
    elapsed = time.monotonic() - started
    assert producer.flushed and stats.sent == len(producer.sent) > 100
    assert elapsed > 0.8  # paced in real time, not as fast as possible
    labels = read_labels(tmp_path / "labels.csv")
    for topic, key, value in producer.sent:
        event = WebLog.FromString(value)
        assert topic == "t" and key == event.user_id.encode() and event.user_id in labels
    assert sum(stats.sent_by_kind.values()) == stats.sent


def test_simulate_fails_loudly_when_kafka_rejects(monkeypatch, tmp_path):
    _patch_kafka(monkeypatch, _FakeProducer(error=RuntimeError("broker down")))
    with pytest.raises(BotscoreError, match="not confirmed"):
        run.simulate(Settings(), 50, 0.2, 9, tmp_path / "labels.csv", 300, 0.3, False)
