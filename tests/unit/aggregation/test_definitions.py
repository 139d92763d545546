"""Feature definitions and the in-memory store: windows, caps, order independence."""

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botscore.aggregation.definitions import (
    DISTINCT_SETS,
    MAX_USER_AGENT_BYTES,
    RECENT_REQUESTS,
    counter_flags,
    request_record,
    update_for,
)
from botscore.aggregation.offline import MemoryFeatureStore, final_features, publications
from botscore.model.features import CATALOG, DOMAINS
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import (
    TLS_FINGERPRINT_CONTRADICTS_USER_AGENT,
    TLS_FINGERPRINT_MATCHES_USER_AGENT,
    TLS_FINGERPRINT_UNCHECKED,
    WebLog,
)
from botscore.wire.records import RequestRecord, SourceRef

T0 = 1_790_000_000_000
SRC = SourceRef("t", 0, 0)


def log(t_ms: int, **fields) -> WebLog:
    defaults = dict(
        user_id="u1",
        ip="192.0.2.1",
        method="GET",
        path="/",
        status=200,
        user_agent="ua",
        request_id=f"r{t_ms}",
        schema_version=1,
    )
    defaults.update(fields)
    return WebLog(time_unix_ms=t_ms, **defaults)


def features_of(*logs: WebLog) -> dict[str, float]:
    return final_features(logs)["u1"].features


def test_flags_name_what_a_request_counts_towards():
    assert counter_flags(log(T0)) == ["req"]
    assert counter_flags(
        log(T0, method="POST", path="/login?next=/", status=401, ip_is_datacenter=True)
    ) == ["req", "err", "login", "dc"]
    assert counter_flags(log(T0, method="HEAD", js_check_passed=True)) == ["req", "head", "js"]
    assert "login" not in counter_flags(log(T0, method="GET", path="/login"))
    # Only the first "?" starts the query: a later one belongs to it.
    assert "login" in counter_flags(log(T0, method="POST", path="/login?next=/a?b=1"))
    assert "login" not in counter_flags(log(T0, method="POST", path="/login/x?a?b"))


def test_a_user_agent_that_declares_a_bot_is_counted():
    browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    for agent, flagged in (
        (browser, False),
        (crawler, True),
        ("python-requests/2.32.3", True),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36", True),
        ("", False),
    ):
        assert ("botua" in counter_flags(log(T0, user_agent=agent))) is flagged, agent
    # Judged on the agent as stored: a name past the byte limit does not count.
    hidden = "M" * MAX_USER_AGENT_BYTES + " Googlebot/2.1"
    assert "botua" not in counter_flags(log(T0, user_agent=hidden))
    f = features_of(log(T0, user_agent=browser), log(T0 + 1, user_agent=crawler))
    assert f["declared_bot_ua_ratio_1h"] == 0.5


def test_only_a_handshake_that_contradicts_the_user_agent_is_counted():
    for verdict, flagged in (
        (TLS_FINGERPRINT_UNCHECKED, False),  # also what an edge without fingerprints sends
        (TLS_FINGERPRINT_MATCHES_USER_AGENT, False),
        (TLS_FINGERPRINT_CONTRADICTS_USER_AGENT, True),
        (7, False),  # a verdict from a newer edge this stage does not know
    ):
        assert ("tlsua" in counter_flags(log(T0, tls_fingerprint=verdict))) is flagged, verdict
    f = features_of(
        log(T0, tls_fingerprint=TLS_FINGERPRINT_CONTRADICTS_USER_AGENT),
        log(T0 + 1, tls_fingerprint=TLS_FINGERPRINT_MATCHES_USER_AGENT),
        log(T0 + 2),
        log(T0 + 3, tls_fingerprint=TLS_FINGERPRINT_CONTRADICTS_USER_AGENT),
    )
    assert f["tls_contradicts_ua_ratio_1h"] == 0.5


def test_a_request_record_carries_the_request_its_source_and_the_replay_floor():
    entry = log(
        T0 + 5,
        user_id="u7",
        ip="198.51.100.4",
        user_agent="curl/8.5",
        method="POST",
        path="/login?next=/",
        request_id="r-9",
    )
    source = SourceRef("web-logs", 3, 41)
    assert request_record(entry, source, replay_floor=17) == RequestRecord(
        user_id="u7",
        time_ms=T0 + 5,
        request_id="r-9",
        ip="198.51.100.4",
        user_agent="curl/8.5",
        path="/login?next=/",
        flags=["req", "login", "botua"],
        source=source,
        replay_floor=17,
    )
    # Without a floor (the offline store), nothing is below it.
    assert request_record(entry, source).replay_floor == 0


def test_every_catalog_feature_is_computed_in_catalog_order():
    assert tuple(features_of(log(T0))) == CATALOG


def test_request_windows_end_at_the_latest_request():
    # 10 requests two minutes ago, 3 in the last 30 s
    logs = [log(T0 + i * 1000) for i in range(10)]
    logs += [log(T0 + 120_000 + i * 10_000) for i in range(3)]
    f = features_of(*logs)
    assert f["requests_1m"] == 3
    assert f["requests_1h"] == 13
    # an hour and a bit later, only the new request is in the 1-hour window
    f = features_of(*logs, log(T0 + 3_700_000))
    assert f["requests_1h"] == 1
    assert f["requests_1m"] == 1


def test_ratios_and_logins():
    logs = [
        log(T0, status=404),
        log(T0 + 1, method="HEAD"),
        log(T0 + 2, js_check_passed=True, ip_is_datacenter=True),
        log(T0 + 3, method="POST", path="/login", status=401),
    ]
    f = features_of(*logs)
    assert f["error_ratio_1h"] == 0.5
    assert f["head_ratio_1h"] == 0.25
    assert f["js_check_ratio_1h"] == 0.25
    assert f["datacenter_ip_ratio_4h"] == 0.25
    assert f["login_attempts_1h"] == 1


def test_distinct_values_have_windows_and_caps():
    ips = [log(T0 + i, ip=f"10.0.{i // 256}.{i % 256}") for i in range(700)]
    f = features_of(*ips)
    cap = {s.name: s.cap for s in DISTINCT_SETS}
    assert f["distinct_ips_4h"] == cap["ip"]
    # paths have a 1-hour window: old ones drop out
    paths = [log(T0, path="/a"), log(T0 + 1, path="/b"), log(T0 + 3_600_001, path="/c")]
    assert features_of(*paths)["distinct_paths_1h"] == 1
    assert features_of(*paths)["distinct_user_agents_4h"] == 1


def test_interarrival_statistics_from_recent_requests():
    steady = [log(T0 + i * 2000) for i in range(50)]
    f = features_of(*steady)
    assert f["interarrival_mean_s"] == pytest.approx(2.0)
    assert f["interarrival_cv"] == pytest.approx(0.0)
    bursty = [log(T0), log(T0 + 100), log(T0 + 10_100)]
    f = features_of(*bursty)
    assert f["interarrival_mean_s"] == pytest.approx(5.05)
    assert f["interarrival_cv"] == pytest.approx(4.95 / 5.05)
    one = features_of(log(T0))
    assert (one["interarrival_mean_s"], one["interarrival_cv"]) == (0.0, 0.0)
    store = MemoryFeatureStore()
    for entry in steady:
        store.apply("u1", update_for(request_record(entry, SRC)))
    assert len(store.state("u1").recent_ms) == RECENT_REQUESTS


def test_final_state_does_not_depend_on_arrival_order():
    population = build_population(80, 0.4, 3)
    logs = list(TrafficGenerator(population, 20, 900, 3, T0))
    shuffled = logs[:]
    random.Random(5).shuffle(shuffled)
    assert final_features(logs) == final_features(shuffled)


def test_a_user_idle_past_the_state_ttl_starts_over_as_when_its_keys_expire():
    ttl = 4 * 3600 * 1000
    earlier = [log(T0 + i * 1000, ip=f"192.0.2.{i}", path=f"/p{i}") for i in range(5)]
    other = log(T0 + ttl + 5000, user_id="u2")
    back = log(T0 + 4000 + ttl + 10_000, ip="198.51.100.7")
    rows = list(publications([*earlier, other, back], interval_ms=2000, idle_ttl_ms=ttl))
    assert [r.user_id for r in rows] == ["u1", "u1", "u1", "u2", "u1"]
    # Its state and its last publication went with the TTL: the request is a first one.
    assert rows[-1].features == features_of(back)
    kept = list(publications([*earlier, other, back], interval_ms=2000))
    assert kept[-1].features != features_of(back)  # without the TTL, the old state counts


def test_the_store_forgets_only_users_idle_past_the_ttl():
    store = MemoryFeatureStore()
    for user, t in (("a", T0), ("b", T0 + 10), ("a", T0 + 20), ("c", T0 + 30)):
        store.apply(user, update_for(request_record(log(t, user_id=user), SRC)))
    assert store.forget_idle(T0 + 100, ttl_ms=85) == ["b"]  # a's last request is newer
    assert store.forget_idle(T0 + 100, ttl_ms=85) == []
    assert store.users() == ["a", "c"]
    assert store.forget_idle(T0 + 1000, ttl_ms=85) == ["a", "c"]


def test_publications_are_at_most_once_per_interval_in_event_time():
    logs = [log(T0 + i * 300) for i in range(40)]  # 12 s of requests every 300 ms
    rows = list(publications(logs, interval_ms=2000))
    times = [r.window_end_ms for r in rows]
    assert all(b - a >= 2000 for a, b in itertools.pairwise(times))
    assert len(rows) == 6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5 * 3_600_000),  # ms after T0
            st.sampled_from(["GET", "HEAD", "POST"]),
            st.sampled_from([200, 404, 500]),
            st.booleans(),  # js
            st.booleans(),  # data centre
            st.sampled_from(["/", "/login", "/a"]),
            st.sampled_from(["192.0.2.1", "198.51.100.9", "2001:db8::1"]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_every_feature_the_stage_publishes_is_within_its_domain(requests):
    """What the feature stage can publish, the scoring spout must never refuse."""
    logs = [
        log(T0 + at, method=m, status=s, js_check_passed=js, ip_is_datacenter=dc, path=p, ip=ip)
        for at, m, s, js, dc, p, ip in requests
    ]
    for snapshot in publications(logs, 1000, 4 * 3_600_000):
        for name, value in snapshot.features.items():
            assert value in DOMAINS[name], (name, value)


def test_ratios_of_equal_counts_are_exactly_one_and_gaps_of_zero_are_allowed():
    same_ms = [log(T0, request_id=f"r{i}", method="HEAD", status=500) for i in range(3)]
    features = features_of(*same_ms)
    assert features["head_ratio_1h"] == features["error_ratio_1h"] == 1.0
    assert features["interarrival_mean_s"] == features["interarrival_cv"] == 0.0
    assert all(value in DOMAINS[name] for name, value in features.items())


def test_an_address_spelt_several_ways_is_one_distinct_address_offline_as_live():
    spellings = ("::1", "::0001", "0:0:0:0:0:0:0:1")
    logs = [log(T0 + i, ip=ip) for i, ip in enumerate(spellings)]
    assert features_of(*logs)["distinct_ips_4h"] == 1.0
    assert {request_record(one, SRC).ip for one in logs} == {"::1"}
