"""The edge traffic simulator: reproducible, each kind recognisable, labels kept apart."""

import io
import itertools
import re
import statistics
import time
from collections import defaultdict
from dataclasses import replace

import crawleruseragents
import pytest

from botscore.errors import BotscoreError, SimulationSpecError
from botscore.settings import Settings
from botscore.simulator import run
from botscore.simulator.labels import HEADER, read_labels, write_labels
from botscore.simulator.population import (
    PROFILES,
    build_population,
    is_datacenter,
    population_for,
)
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.status import StatusLine, status_text
from botscore.simulator.traffic import EdgeCounts, SimulationStats, TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog

START_MS = 1_700_000_000_000
BOT_KINDS = sorted(k for k, p in PROFILES.items() if p.is_bot)


def _events(users=600, bot_share=0.3, seed=11, rate=100.0, duration_s=400.0, **kwargs):
    spec = SimulationSpec(
        users=users, bot_share=bot_share, rate=rate, duration_s=duration_s, seed=seed
    )
    population = population_for(spec)
    generator = TrafficGenerator.from_spec(population, spec, START_MS, **kwargs)
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
    with pytest.raises(SimulationSpecError, match="raise users"):
        _events(users=20, rate=5000, duration_s=1)


def test_the_spec_has_the_simulate_defaults():
    assert SimulationSpec() == SimulationSpec(
        users=2000, bot_share=0.3, rate=100.0, duration_s=600.0, seed=1, speedup=1.0
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("users", 0),
        ("users", 2.5),
        ("users", True),
        ("bot_share", -0.1),
        ("bot_share", 1.5),
        ("bot_share", float("nan")),
        ("rate", 0),
        ("rate", -5.0),
        ("rate", float("inf")),
        ("duration_s", 0),
        ("duration_s", float("nan")),
        ("seed", "7"),
        ("speedup", 0),
        ("speedup", -1.0),
    ],
)
def test_a_spec_that_cannot_work_is_refused_naming_the_field(field, value):
    with pytest.raises(SimulationSpecError, match=rf"^{field} must be"):
        SimulationSpec(**{field: value})


def test_population_and_generator_check_their_fields_like_the_spec():
    with pytest.raises(SimulationSpecError, match=r"^users must be"):
        build_population(0, 0.3, 1)
    with pytest.raises(SimulationSpecError, match=r"^bot_share must be"):
        build_population(10, 1.2, 1)
    population = build_population(50, 0.3, 1)
    with pytest.raises(SimulationSpecError, match=r"^rate must be"):
        TrafficGenerator(population, 0, 10, 1, START_MS)
    with pytest.raises(SimulationSpecError, match=r"^duration_s must be"):
        TrafficGenerator(population, 5, -1, 1, START_MS)


def test_a_spec_and_its_fields_give_the_same_traffic():
    spec = SimulationSpec(users=200, bot_share=0.4, rate=30, duration_s=60, seed=8)
    by_spec = list(TrafficGenerator.from_spec(population_for(spec), spec, START_MS))
    by_fields = list(TrafficGenerator(build_population(200, 0.4, 8), 30, 60, 8, START_MS))
    assert [e.SerializeToString() for e in by_spec] == [e.SerializeToString() for e in by_fields]


def test_a_population_without_a_human_kind_needs_every_user_to_be_a_bot():
    bots_only = {k: p for k, p in PROFILES.items() if p.is_bot}
    assert len(build_population(10, 1.0, 1, profiles=bots_only).users) == 10
    with pytest.raises(SimulationSpecError, match="no human kind"):
        build_population(10, 0.5, 1, profiles=bots_only)


def test_a_profile_with_an_unknown_user_agent_source_is_refused():
    odd = {k: replace(p, ua_source="telnet") for k, p in PROFILES.items()}
    with pytest.raises(SimulationSpecError, match="unknown ua_source 'telnet'"):
        build_population(10, 0.3, 1, profiles=odd)


def test_a_file_that_is_not_a_labels_file_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("user,label\nc-1,bot\n")
    with pytest.raises(SimulationSpecError, match="not a simulation labels file"):
        read_labels(path)


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
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=1.0, seed=9)
    stats = run.simulate(Settings(), spec, tmp_path / "labels.csv", topic="t")
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
        run.simulate(
            Settings(),
            SimulationSpec(users=300, bot_share=0.3, rate=50, duration_s=0.2, seed=9),
            tmp_path / "labels.csv",
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_realised_rate_is_the_target_from_the_first_second(seed):
    # Sessions that all began at once ran 40% fast for the first seconds, and opening
    # sessions until the expected rates reached the target ran 4% fast for good.
    _, _, events = _events(users=2000, seed=seed, rate=200, duration_s=60)
    seconds = [(e.time_unix_ms - START_MS) / 1000 for e in events]
    assert len(seconds) == pytest.approx(200 * 60, rel=0.03)
    assert sum(1 for s in seconds if s < 3) == pytest.approx(200 * 3, rel=0.15)
    for start in range(0, 60, 10):
        in_window = sum(1 for s in seconds if start <= s < start + 10)
        assert in_window == pytest.approx(200 * 10, rel=0.08), start


def test_realised_rate_is_the_target_at_low_rates():
    # Here one session is a large part of the target, so overshooting it showed most (7%).
    counts = [len(_events(users=2000, seed=s, rate=20, duration_s=1200)[2]) for s in (1, 2, 3)]
    assert statistics.mean(counts) == pytest.approx(20 * 1200, rel=0.03)


def test_the_edge_is_asked_at_each_requests_time_blocked_ones_included():
    paced: list[float] = []
    asked: list[float] = []

    def decide(user_id: str) -> str:
        asked.append(paced[-1])
        return "block" if len(asked) % 2 else "allow"

    _, generator, events = _events(rate=50, duration_s=30, decision_for=decide, pace=paced.append)
    assert len(asked) == len(paced) == generator.stats.sent + generator.stats.blocked
    assert paced == sorted(paced) and paced[-1] < 30
    assert [START_MS + int(t * 1000) for t in paced[1::2]] == [e.time_unix_ms for e in events]


def test_stats_judge_the_edge_per_simulated_minute_from_the_ground_truth():
    population = build_population(600, 0.3, 12)
    is_bot = {u.user_id: PROFILES[u.kind].is_bot for u in population.users}
    now: list[float] = [0.0]

    def edge(user_id: str) -> str:
        if now[0] < 120:  # no scores yet during the first two minutes
            return "allow"
        return "block" if is_bot[user_id] else "challenge"

    generator = TrafficGenerator(
        population, 80, 300, 12, START_MS, decision_for=edge, pace=lambda t: now.__setitem__(0, t)
    )
    events = list(generator)
    stats = generator.stats
    assert sorted(stats.by_minute) == [0, 1, 2, 3, 4]
    for minute, counts in stats.by_minute.items():
        if minute < 2:
            assert counts.bots.allowed == counts.bots.requests > 0
            assert counts.humans.challenged == 0
        else:
            assert counts.bots.blocked == counts.bots.requests > 0
            assert counts.humans.challenged == counts.humans.requests > 0
    assert stats.bots.requests == sum(m.bots.requests for m in stats.by_minute.values())
    assert stats.bots.blocked == stats.blocked
    assert stats.humans.requests + stats.bots.allowed == len(events) == stats.sent
    late = {e.user_id for e in events if e.time_unix_ms >= START_MS + 120_000}
    assert stats.humans_challenged == {u for u in late if not is_bot[u]}
    assert stats.bots_blocked and all(is_bot[u] for u in stats.bots_blocked)
    assert not any(is_bot[e.user_id] for e in events if e.time_unix_ms >= START_MS + 120_000)
    assert stats.bot_allowed_share(end_s=120) == 1.0
    assert stats.bot_allowed_share(start_s=120) == 0.0


def test_allowed_share_leaves_out_the_minute_the_scores_arrived_in():
    stats = SimulationStats()
    for t, decision in [(10, "allow"), (70, "allow"), (80, "block"), (130, "block")]:
        stats.record(t, "c-bot", True, decision)
    stats.record(20, "c-human", False, "challenge")
    assert stats.by_minute[0].humans == EdgeCounts(requests=1, challenged=1)
    assert stats.bot_allowed_share() == pytest.approx(2 / 4)
    assert stats.bot_allowed_share(end_s=75) == 1.0  # minute 0 only
    assert stats.bot_allowed_share(start_s=75) == 0.0  # minute 2 only
    assert stats.bot_allowed_share(start_s=200) is None
    assert stats.bots_blocked == {"c-bot"} and stats.humans_challenged == {"c-human"}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_rewrites_itself_on_a_terminal():
    out = _Terminal()
    line = StatusLine(out)
    line.show("first")
    line.show("second")
    assert out.getvalue().startswith("\rfirst") and "\rsecond" in out.getvalue()
    assert "\n" not in out.getvalue()
    line.close()
    assert out.getvalue().endswith("\n")


def test_status_line_in_a_log_is_a_plain_line_now_and_then():
    out, clock = io.StringIO(), [0.0]
    line = StatusLine(out, plain_interval_s=10, clock=lambda: clock[0])
    for second in range(25):
        clock[0] = second
        line.show(f"at {second}")
    line.close()
    assert out.getvalue().splitlines() == ["at 0", "at 10", "at 20", "at 24"]
    assert "\r" not in out.getvalue()


def test_status_text_says_what_the_edge_does_to_bots_and_humans():
    stats = SimulationStats(sent=1234)
    for decision in ("block", "block", "allow"):
        stats.record(5, "c-b", True, decision)
    stats.record(5, "c-h", False, "challenge")
    text = status_text(stats, 3725, 201.4, 12)
    assert text.startswith("1:02:05  201 req/s  scored 12  bots blocked 1  ")
    assert "bot req blocked 2 allowed 1" in text
    assert "humans challenged 1 (1 req)" in text and text.endswith("sent 1,234")
    assert "scored -" in status_text(stats, 0, 0, None)


def test_speedup_runs_simulated_time_faster_than_the_wall(monkeypatch, tmp_path):
    producer = _FakeProducer()
    _patch_kafka(monkeypatch, producer)
    started = time.monotonic()
    spec = SimulationSpec(users=600, bot_share=0.3, rate=150, duration_s=10.0, seed=9, speedup=10)
    stats = run.simulate(Settings(), spec, tmp_path / "labels.csv")
    elapsed = time.monotonic() - started
    times = [WebLog.FromString(value).time_unix_ms for _, _, value in producer.sent]
    assert stats.sent == len(times) == pytest.approx(1500, rel=0.15)
    assert 0.8 < elapsed < 3.0  # ten simulated seconds in one wall second, plus set-up
    assert 9_000 < times[-1] - times[0] < 10_000  # event times stay simulated time
    assert {topic for topic, _, _ in producer.sent} == {Settings().aggregation.web_logs_topic}
