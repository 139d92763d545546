"""Hand-computed features: small request sequences whose expected values are worked out here.

Each expected value is derived in the comment beside it from the README's definitions, not
from ``aggregation/definitions.py``, and every constant (caps, windows, path length) is a
literal, so a changed window, cap, denominator, status rule or path rule fails a test.

How the windows are defined (read from the code, consistent with the README's "counts in
10-second / 1-minute / 10-minute buckets" and "sorted sets value -> last seen"):

- Counters live in epoch-aligned buckets; a window is the bucket holding the latest request
  and the buckets before it (6 x 10 s, 60 x 1 min, 24 x 10 min). A request counts when its
  bucket is one of those, so ``requests_1m`` looks back between 50 and 60 s, the 1-hour
  features between 59 and 60 min and the 4-hour ratio between 3 h 50 min and 4 h.
- Distinct-value sets use exact windows: a value counts when its last sighting is strictly
  later than the window's length before the latest request.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from botscore.aggregation.definitions import UserState, compute_features
from botscore.aggregation.offline import final_features
from botscore.model.features import CATALOG
from botscore.v1.web_log_pb2 import WebLog

# 497,222 whole hours after the epoch: every bucket edge (10 s, 1 min, 10 min) is a round
# offset from here.
H0 = 1_789_999_200_000
SECOND = 1_000
MINUTE = 60_000
HOUR = 3_600_000

_ids = itertools.count()


def log(t_ms: int, **fields: Any) -> WebLog:
    values: dict[str, Any] = {
        "user_id": "u1",
        "ip": "192.0.2.1",
        "method": "GET",
        "path": "/",
        "status": 200,
        "user_agent": "ua",
        "request_id": f"r{next(_ids)}",
        "schema_version": 1,
    }
    values.update(fields)
    return WebLog(time_unix_ms=t_ms, **values)


def features_of(*logs: WebLog) -> dict[str, float]:
    return final_features(logs)["u1"].features


# --- counter windows -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        # 10-s buckets 0, 1, 6: the latest (6) keeps 1..6, so 9_999 (50.001 s back) is out -> 2
        ([9_999, 10_000, 60_000], 2),
        # buckets 0, 1, 6 again: 10_000 is 59.999 s back and still in -> 2
        ([9_999, 10_000, 69_999], 2),
        # buckets 1, 1, 2, 7: the latest keeps 2..7 -> 20_000 and 70_000 -> 2
        ([10_000, 19_999, 20_000, 70_000], 2),
    ],
)
def test_requests_1m_is_the_latest_10s_bucket_and_the_five_before(
    offsets: list[int], expected: int
) -> None:
    assert features_of(*(log(H0 + t) for t in offsets))["requests_1m"] == expected


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        # minute buckets 0, 1, 60: the latest keeps 1..60, so 59_999 (59 min 0.001 s back)
        # is out -> 2
        ([59_999, MINUTE, HOUR], 2),
        # buckets 0, 1, 60: MINUTE is 1 h - 1 ms back and still in -> 2
        ([59_999, MINUTE, HOUR + 59_999], 2),
        # buckets 1, 1, 2, 61: the latest keeps 2..61 -> 2 * MINUTE and the latest -> 2
        ([MINUTE, 2 * MINUTE - 1, 2 * MINUTE, HOUR + MINUTE], 2),
    ],
)
def test_requests_1h_is_the_latest_minute_bucket_and_the_59_before(
    offsets: list[int], expected: int
) -> None:
    assert features_of(*(log(H0 + t) for t in offsets))["requests_1h"] == expected


def test_one_hour_ratios_count_the_requests_of_the_requests_1h_window() -> None:
    logs = [
        # minute bucket 0: outside the window that the latest request (bucket 60) keeps
        log(H0 + MINUTE - 2, method="HEAD", status=500, js_check_passed=True),
        log(H0 + MINUTE - 1, method="POST", path="/login", status=401, js_check_passed=True),
        # buckets 1, 2, 59, 60: inside
        log(H0 + MINUTE, method="HEAD", status=404),
        log(H0 + 2 * MINUTE, method="POST", path="/login", status=302, js_check_passed=True),
        log(H0 + HOUR - 1),
        log(H0 + HOUR, status=503, js_check_passed=True),
    ]
    f = features_of(*logs)
    assert f["requests_1h"] == 4  # the four requests in buckets 1..60
    assert f["error_ratio_1h"] == 0.5  # 404 and 503 of 4 -> 2 / 4
    assert f["head_ratio_1h"] == 0.25  # one HEAD of 4
    assert f["js_check_ratio_1h"] == 0.5  # two passed checks of 4
    assert f["login_attempts_1h"] == 1  # the 302 POST /login; the 401 one is out
    # 10-s buckets 359 and 360 of the latest's 355..360 -> 2
    assert f["requests_1m"] == 2


@pytest.mark.parametrize("latest", [4 * HOUR, 4 * HOUR + 10 * MINUTE - 1])
def test_datacenter_ratio_is_the_latest_24_ten_minute_buckets(latest: int) -> None:
    logs = [
        # 10-min bucket 0: outside the 1..24 the latest request (bucket 24) keeps
        log(H0 + 10 * MINUTE - 1, ip_is_datacenter=True),
        # buckets 1, 12, 24: inside
        log(H0 + 10 * MINUTE, ip_is_datacenter=True),
        log(H0 + 2 * HOUR),
        log(H0 + latest),
    ]
    # 1 data-centre request of the 3 in the window -> 1 / 3 (over one hour it would be 0 / 1)
    assert features_of(*logs)["datacenter_ip_ratio_4h"] == 1 / 3


def test_datacenter_ratio_counts_requests_not_addresses() -> None:
    logs = [log(H0 + i, ip="198.18.0.1", ip_is_datacenter=True) for i in range(3)]
    logs.append(log(H0 + 3, ip="10.0.0.1"))
    # 3 of 4 requests came through the one data-centre address -> 0.75 (by address: 1 / 2)
    assert features_of(*logs)["datacenter_ip_ratio_4h"] == 0.75


def test_ratios_use_their_own_window_as_denominator() -> None:
    latest = H0 + 3 * HOUR
    logs = [
        # two hours before the latest: inside 4 h, outside 1 h
        log(latest - 2 * HOUR, status=500, method="HEAD", ip_is_datacenter=True),
        log(latest - 2 * HOUR + 1, js_check_passed=True, ip_is_datacenter=True),
        # the last minute
        log(latest - 3 * SECOND, status=404),
        log(latest - 2 * SECOND, method="HEAD"),
        log(latest - SECOND, js_check_passed=True),
        log(latest),
    ]
    f = features_of(*logs)
    assert f["requests_1h"] == 4
    assert f["error_ratio_1h"] == 0.25  # 404 of the 4 in the hour (with 4 h: 2 / 6)
    assert f["head_ratio_1h"] == 0.25  # 1 of 4 (with 4 h: 2 / 6)
    assert f["js_check_ratio_1h"] == 0.25  # 1 of 4 (with 4 h: 2 / 6)
    assert f["datacenter_ip_ratio_4h"] == 2 / 6  # 2 of the 6 in 4 h (with 1 h: 0 / 4)


# --- distinct-value windows ----------------------------------------------------------------


def test_addresses_and_agents_count_for_four_hours_after_their_last_sighting() -> None:
    latest = H0 + 4 * HOUR
    logs = [
        log(latest - 4 * HOUR, ip="10.0.0.1", user_agent="a"),  # exactly 4 h back: out
        log(latest - 4 * HOUR + 1, ip="10.0.0.2", user_agent="b"),  # 4 h - 1 ms back: in
        log(latest, ip="10.0.0.3", user_agent="c"),
    ]
    f = features_of(*logs)
    assert f["distinct_ips_4h"] == 2  # .2 and .3
    assert f["distinct_user_agents_4h"] == 2  # b and c


def test_paths_count_for_one_hour_after_their_last_sighting() -> None:
    latest = H0 + HOUR + 30 * SECOND
    logs = [
        log(latest - HOUR, path="/a"),  # exactly 1 h back: out
        log(latest - HOUR + 1, path="/b"),  # 1 h - 1 ms back: in
        log(latest, path="/c"),
    ]
    assert features_of(*logs)["distinct_paths_1h"] == 2  # /b and /c


def test_a_value_counts_from_its_last_sighting_not_its_first() -> None:
    latest = H0 + 6 * HOUR
    logs = [
        log(latest - 5 * HOUR, ip="10.0.0.1", user_agent="a", path="/a"),
        log(latest - 3 * HOUR, ip="10.0.0.1", user_agent="a", path="/b"),
        log(latest - 30 * MINUTE, ip="10.0.0.2", user_agent="b", path="/a"),
        log(latest, ip="10.0.0.2", user_agent="b", path="/b"),
    ]
    f = features_of(*logs)
    assert f["distinct_ips_4h"] == 2  # .1 last seen 3 h back, and .2
    assert f["distinct_user_agents_4h"] == 2  # a last seen 3 h back, and b
    assert f["distinct_paths_1h"] == 2  # /a last seen 30 min back, and /b


# --- caps ----------------------------------------------------------------------------------


def _address(i: int) -> str:
    return f"10.0.{i // 256}.{i % 256}"


@pytest.mark.parametrize(("count", "expected"), [(499, 499), (500, 500), (501, 500)])
def test_distinct_ips_are_capped_at_500(count: int, expected: int) -> None:
    logs = [log(H0 + i, ip=_address(i)) for i in range(count)]
    assert features_of(*logs)["distinct_ips_4h"] == expected  # min(count, 500)


@pytest.mark.parametrize(("count", "expected"), [(99, 99), (100, 100), (101, 100)])
def test_distinct_user_agents_are_capped_at_100(count: int, expected: int) -> None:
    logs = [log(H0 + i, user_agent=f"agent {i}") for i in range(count)]
    assert features_of(*logs)["distinct_user_agents_4h"] == expected  # min(count, 100)


@pytest.mark.parametrize(("count", "expected"), [(1999, 1999), (2000, 2000), (2001, 2000)])
def test_distinct_paths_are_capped_at_2000(count: int, expected: int) -> None:
    logs = [log(H0 + i, path=f"/p/{i}") for i in range(count)]
    assert features_of(*logs)["distinct_paths_1h"] == expected  # min(count, 2000)


def test_a_full_set_drops_its_oldest_value() -> None:
    logs = [log(H0 + i, ip=_address(i)) for i in range(500)]  # addresses 0..499 at H0 + i
    logs.append(log(H0 + 2 * HOUR, ip="192.0.2.7"))  # the 501st: address 0 must go
    logs.append(log(H0 + 4 * HOUR + 250, ip="192.0.2.8"))
    # the latest drops sightings at or before H0 + 250, i.e. addresses 0..250: left are
    # 251..499 (249) + .7 + .8 -> 251 (had .7 been dropped instead: 249 + .8 -> 250)
    assert features_of(*logs)["distinct_ips_4h"] == 251


@pytest.mark.parametrize("reverse", [False, True])
def test_interarrival_uses_the_32_most_recent_times(reverse: bool) -> None:
    # request i at i * (i + 1) / 2 seconds, i = 0..39: the gap before request i is i s
    logs = [log(H0 + SECOND * i * (i + 1) // 2) for i in range(40)]
    if reverse:
        logs.reverse()  # "most recent" is by event time, not by arrival
    f = features_of(*logs)
    # the newest 32 are i = 8..39; their 31 gaps are 9..39 s -> mean (9 + 39) / 2 = 24
    # (33 times would give 23.5, 31 times 24.5)
    assert f["interarrival_mean_s"] == 24.0
    # the variance of 31 consecutive integers is (31 ** 2 - 1) / 12 = 80 -> cv sqrt(80) / 24
    assert f["interarrival_cv"] == pytest.approx(math.sqrt(80) / 24, rel=1e-12)


# --- status classes, methods, paths --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "is_error"),
    [
        (100, False),
        (200, False),
        (204, False),
        (301, False),
        (304, False),
        (399, False),
        (400, True),
        (401, True),
        (404, True),
        (429, True),
        (499, True),
        (500, True),
        (503, True),
        (599, True),
    ],
)
def test_client_and_server_errors_count_as_errors(status: int, is_error: bool) -> None:
    f = features_of(log(H0, status=status), log(H0 + 1))
    # the second request is a 200: 1 / 2 when the first is a 4xx or 5xx, else 0 / 2
    assert f["error_ratio_1h"] == (0.5 if is_error else 0.0)


def test_head_ratio_counts_head_requests_only() -> None:
    methods = ["HEAD", "GET", "POST", "HEAD", "PUT"]
    f = features_of(*(log(H0 + i, method=m) for i, m in enumerate(methods)))
    assert f["head_ratio_1h"] == 0.4  # 2 HEAD of 5


@pytest.mark.parametrize(
    ("method", "path", "status", "counted"),
    [
        ("POST", "/login", 401, True),
        ("POST", "/login", 302, True),  # a successful login is an attempt too
        ("POST", "/login?next=/cart", 403, True),  # the query string is not the page
        ("POST", "/login?", 401, True),
        ("POST", "/login?" + "x" * 300, 401, True),  # longer than the 200-character cut
        ("GET", "/login", 200, False),  # the form, not a post
        ("HEAD", "/login", 200, False),
        ("PUT", "/login", 401, False),
        ("POST", "/login/", 401, False),  # another path: the rule is exact, not a prefix
        ("POST", "/login/reset", 401, False),
        ("POST", "/loginx", 401, False),
        ("POST", "/api/login", 401, False),
        ("POST", "/Login", 401, False),
    ],
)
def test_a_login_attempt_is_a_post_to_exactly_slash_login(
    method: str, path: str, status: int, counted: bool
) -> None:
    f = features_of(log(H0, method=method, path=path, status=status))
    assert f["login_attempts_1h"] == (1 if counted else 0)


def test_login_attempts_are_counted_per_request() -> None:
    f = features_of(*(log(H0 + i * SECOND, method="POST", path="/login") for i in range(7)))
    assert f["login_attempts_1h"] == 7


LONG = "/" + "a" * 199  # exactly 200 characters


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([LONG, LONG + "b", LONG + "cc"], 1),  # all three are LONG once cut to 200
        ([LONG, LONG[:-1] + "b"], 2),  # they differ in the 200th character, which is kept
        ([LONG[:-1], LONG[:-1] + "b"], 2),  # 199 and 200 characters: nothing cut
        # the cut counts characters, not UTF-8 bytes (152 characters, 302 bytes)
        (["/" + "é" * 150 + "x", "/" + "é" * 150 + "y"], 2),
        (["/" + "é" * 199 + "x", "/" + "é" * 199 + "y"], 1),  # 201 characters each
        # no other normalisation: the query string is part of the path
        (["/search", "/search?q=a", "/search?q=b"], 3),
    ],
)
def test_paths_are_cut_to_200_characters(paths: list[str], expected: int) -> None:
    f = features_of(*(log(H0 + i, path=p) for i, p in enumerate(paths)))
    assert f["distinct_paths_1h"] == expected


# --- inter-arrival -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "mean_s", "cv"),
    [
        ([0], 0.0, 0.0),  # one request: no gap
        ([0, 2_500], 2.5, 0.0),  # one gap of 2.5 s: the mean is that gap, with no spread
        ([0, 1_000, 4_000], 2.0, 0.5),  # gaps 1 and 3 s: mean 2, population sd 1 -> 1 / 2
        ([4_000, 0, 1_000], 2.0, 0.5),  # the same requests out of order: gaps by event time
        ([0, 0, 3_000], 1.5, 1.0),  # gaps 0 and 3 s: mean 1.5, sd 1.5 -> 1
        ([0, 0], 0.0, 0.0),  # one gap of 0 s
        ([0, 0, 0], 0.0, 0.0),  # mean 0: the CV is undefined and reported as 0
    ],
)
def test_interarrival_mean_and_cv(offsets: list[int], mean_s: float, cv: float) -> None:
    f = features_of(*(log(H0 + t) for t in offsets))
    assert (f["interarrival_mean_s"], f["interarrival_cv"]) == (mean_s, cv)


def test_a_state_without_requests_has_zero_features() -> None:
    empty = UserState(last_ms=H0, counters={}, distinct={}, recent_ms=())
    assert compute_features(empty) == dict.fromkeys(CATALOG, 0.0)
