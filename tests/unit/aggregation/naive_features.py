"""A second, deliberately naive implementation of every feature, and the requests it is fed.

``naive_features`` reads the README's Features section, not ``aggregation/definitions.py``:
it keeps no state, no buckets and no incremental sets, and recomputes each feature from the
full list of one user's requests. The property tests compare it with the offline store
(``test_naive_oracle.py``) and the Redis store (``tests/integration/test_naive_oracle_redis.py``),
so a wrong window, cap, denominator, status or path rule in the shared definitions shows up
as a disagreement with code that was written independently of them.

Every constant is written here as a literal on purpose: importing it from the code under
test would make a changed constant agree with itself.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence

import crawleruseragents
import pytest
from hypothesis import strategies as st

from botscore.simulator.population import is_datacenter
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_CONTRADICTS_USER_AGENT as _CONTRADICTS
from botscore.v1.web_log_pb2 import WebLog

__all__ = [
    "CAPS",
    "RECENT",
    "USER",
    "assert_same_features",
    "naive_features",
    "request_sequences",
]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS

# The README's caps: distinct IPs / user agents / paths, and the request times kept for
# inter-arrival statistics.
CAPS: Mapping[str, int] = {"ip": 500, "ua": 100, "path": 2000}
RECENT = 32
# A path is cut to this many characters (code points) before it counts as a distinct path,
# a user agent to the whole characters that fit in this many UTF-8 bytes.
PATH_CHARS = 200
USER_AGENT_BYTES = 512

USER = "u1"


def _in_buckets(time_ms: int, last_ms: int, bucket_ms: int, buckets: int) -> bool:
    """Whether a request falls in the ``buckets`` newest buckets of ``bucket_ms``.

    The counters are kept in fixed, epoch-aligned buckets and the newest bucket is the one
    holding the latest request, so a "1 minute" window of six 10-second buckets starts at
    the start of the fifth bucket before the latest one: it spans between 50 and 60 s
    depending on where in its bucket the latest request fell. This is the README's
    "counts in 10-second / 1-minute / 10-minute buckets", modelled exactly.
    """
    return time_ms // bucket_ms > last_ms // bucket_ms - buckets


def _in_window(time_ms: int, last_ms: int, window_ms: int) -> bool:
    """Exact windows (the distinct-value sets): newer than ``window_ms`` before the latest."""
    return time_ms > last_ms - window_ms


def _distinct(sightings: Iterable[tuple[str, int]], last_ms: int, window_ms: int, cap: int) -> int:
    """Distinct values whose last sighting is inside the window, at most ``cap`` of them."""
    last_seen: dict[str, int] = {}
    for value, time_ms in sightings:
        last_seen[value] = max(last_seen.get(value, time_ms), time_ms)
    return min(cap, sum(1 for seen in last_seen.values() if _in_window(seen, last_ms, window_ms)))


def _cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of whole characters whose UTF-8 encoding fits in ``limit`` bytes."""
    kept, size = [], 0
    for char in text:
        size += len(char.encode("utf-8"))
        if size > limit:
            break
        kept.append(char)
    return "".join(kept)


def _is_error(log: WebLog) -> bool:
    # HTTP's client-error (4xx) and server-error (5xx) classes.
    return log.status // 100 in (4, 5)


# Every pattern of the crawler-user-agents list (the README's source), one by one.
_BOT_PATTERNS = [
    re.compile(entry["pattern"]) for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
]


@functools.cache
def _declares_bot(user_agent: str) -> bool:
    return any(pattern.search(user_agent) for pattern in _BOT_PATTERNS)


def _is_login(log: WebLog) -> bool:
    # A form post to the login page; its query string does not change the page.
    return log.method == "POST" and log.path.partition("?")[0] == "/login"


def _interarrival(logs: Sequence[WebLog], recent: int) -> tuple[float, float]:
    """Mean gap in seconds and coefficient of variation (population) of the newest times.

    Fewer than one gap gives zeros; so does a mean of zero, where the CV is undefined.
    """
    times = sorted(log.time_unix_ms for log in logs)[-recent:]
    gaps = [(later - earlier) / 1000 for earlier, later in itertools.pairwise(times)]
    if not gaps:
        return 0.0, 0.0
    mean = statistics.fmean(gaps)
    if mean == 0:
        return 0.0, 0.0
    return mean, statistics.pstdev(gaps) / mean


def naive_features(
    logs: Sequence[WebLog], caps: Mapping[str, int] = CAPS, recent: int = RECENT
) -> dict[str, float]:
    """Every catalog feature of one user's requests (unique request ids), in catalog order.

    ``caps`` and ``recent`` default to the README's; a test may shrink them together with
    the code's, to reach the caps with a handful of requests.
    """
    last_ms = max(log.time_unix_ms for log in logs)
    last_minute = [log for log in logs if _in_buckets(log.time_unix_ms, last_ms, 10_000, 6)]
    last_hour = [log for log in logs if _in_buckets(log.time_unix_ms, last_ms, MINUTE_MS, 60)]
    last_4h = [log for log in logs if _in_buckets(log.time_unix_ms, last_ms, 10 * MINUTE_MS, 24)]
    mean_s, cv = _interarrival(logs, recent)
    ips = [(log.ip, log.time_unix_ms) for log in logs]
    agents = [(_cut_to_bytes(log.user_agent, USER_AGENT_BYTES), log.time_unix_ms) for log in logs]
    paths = [(log.path[:PATH_CHARS], log.time_unix_ms) for log in logs]

    def share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    return {
        "requests_1m": float(len(last_minute)),
        "requests_1h": float(len(last_hour)),
        "distinct_ips_4h": float(_distinct(ips, last_ms, 4 * HOUR_MS, caps["ip"])),
        "distinct_user_agents_4h": float(_distinct(agents, last_ms, 4 * HOUR_MS, caps["ua"])),
        "distinct_paths_1h": float(_distinct(paths, last_ms, HOUR_MS, caps["path"])),
        "error_ratio_1h": share(sum(map(_is_error, last_hour)), len(last_hour)),
        "head_ratio_1h": share(sum(log.method == "HEAD" for log in last_hour), len(last_hour)),
        "datacenter_ip_ratio_4h": share(sum(log.ip_is_datacenter for log in last_4h), len(last_4h)),
        "interarrival_mean_s": mean_s,
        "interarrival_cv": cv,
        "js_check_ratio_1h": share(sum(log.js_check_passed for log in last_hour), len(last_hour)),
        "login_attempts_1h": float(sum(map(_is_login, last_hour))),
        "declared_bot_ua_ratio_1h": share(
            sum(
                _declares_bot(_cut_to_bytes(log.user_agent, USER_AGENT_BYTES)) for log in last_hour
            ),
            len(last_hour),
        ),
        "tls_contradicts_ua_ratio_1h": share(
            sum(log.tls_fingerprint == _CONTRADICTS for log in last_hour), len(last_hour)
        ),
    }


def assert_same_features(got: Mapping[str, float], expected: Mapping[str, float]) -> None:
    """Equal names in equal order, and equal values.

    Values are compared exactly except the CV: both sides sum the same gaps with ``fsum``,
    so counts, ratios and the mean are bit-identical, but the CV's variance is a float sum
    in the code and an exact rational one in ``statistics.pstdev``.
    """
    assert list(got) == list(expected)
    for name, value in expected.items():
        if name == "interarrival_cv":
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
        else:
            assert got[name] == value, name


# --- random request sequences -------------------------------------------------------------

# An hour-aligned start, so that bucket edges of every size fall on round offsets; requests
# fall in the 5 hours after it.
H0 = 1_789_999_200_000
SPAN_MS = 5 * HOUR_MS
_EDGE_UNITS = (SECOND_MS, 10_000, MINUTE_MS, 10 * MINUTE_MS, HOUR_MS)
_WINDOWS = (MINUTE_MS, HOUR_MS, 4 * HOUR_MS)

_LONG = "/" + "x" * 199  # exactly 200 characters
# Paths at the edges of the login rule, drawn half of the time so logins are common.
LOGIN_LIKE_PATHS = (
    "/login",
    "/login?next=/cart",
    "/login/",
    "/loginx",
    "/api/login",
    "/Login",
)
# Paths at the edges of the 200-character cut, and query strings.
OTHER_PATHS = (
    "/",
    "/a",
    "/search?q=a",
    "/search?q=b",
    _LONG,
    _LONG + "a",  # the same path once cut to 200 characters
    _LONG + "b",
    _LONG[:-1] + "y",  # differs in the 200th character
)
# Datacenter addresses (198.18.0.0/15, 203.0.113.0/24, 2001:db8::/33) and residential ones.
IPS = ("198.18.0.1", "198.18.0.2", "203.0.113.9", "2001:db8::1", "100.64.0.1", "10.0.0.1")
_LONG_AGENT = "M" + "é" * 255 + "x"  # exactly 512 bytes
USER_AGENTS = (
    "",
    "curl/8.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 A",
    "Mozilla/5.0 B",
    _LONG_AGENT,
    _LONG_AGENT + "y",  # the same agent once cut to 512 bytes
    "M" + "é" * 256,  # the 512th byte is half a character
)
METHODS = ("GET", "POST", "POST", "HEAD", "PUT")
STATUSES = (100, 200, 204, 301, 304, 399, 400, 401, 403, 404, 429, 499, 500, 502, 503, 599)


def _near_edge(top: int) -> st.SearchStrategy[int]:
    """A whole number of seconds or of bucket lengths in ``[0, top]``, give or take 1 ms."""
    edge = st.sampled_from(_EDGE_UNITS).flatmap(
        lambda unit: st.integers(0, top // unit).map(lambda k: k * unit)
    )
    return st.builds(
        lambda at, nudge: min(max(at + nudge, 0), top), edge, st.sampled_from((-1, 0, 1))
    )


def _ages() -> st.SearchStrategy[int]:
    """How long before the sequence's end a request is: every window's scale, and its edges."""
    return st.one_of(
        st.integers(0, 2 * MINUTE_MS),
        st.integers(0, 2 * HOUR_MS),
        st.integers(0, SPAN_MS),
        _near_edge(SPAN_MS),
    )


@st.composite
def _request(draw: st.DrawFn, index: int, end: int, ages: st.SearchStrategy[int]) -> WebLog:
    ip = draw(st.sampled_from(IPS))
    return WebLog(
        time_unix_ms=H0 + max(end - draw(ages), 0),
        user_id=USER,
        ip=ip,
        # The edge's verdict for the address, as the simulator gives it.
        ip_is_datacenter=is_datacenter(ip),
        method=draw(st.sampled_from(METHODS)),
        path=draw(st.one_of(st.sampled_from(LOGIN_LIKE_PATHS), st.sampled_from(OTHER_PATHS))),
        status=draw(st.sampled_from(STATUSES)),
        user_agent=draw(st.sampled_from(USER_AGENTS)),
        js_check_passed=draw(st.booleans()),
        # Unchecked, matching, contradicting, and a value a newer edge may send.
        tls_fingerprint=draw(st.sampled_from((0, 1, 2, 3))),  # type: ignore[arg-type]
        request_id=f"r{index}",
        schema_version=1,
    )


@st.composite
def request_sequences(draw: st.DrawFn, max_size: int = 80) -> list[WebLog]:
    """One user's requests in arrival order (not time order), each with its own id."""
    # The end lies in the span's last hour, often on a bucket edge (H0 + 4 h is one).
    end = SPAN_MS - HOUR_MS + draw(st.one_of(st.integers(0, HOUR_MS), _near_edge(HOUR_MS)))
    # Often very short: one request (no gap), two (the single gap) or three.
    size = draw(st.one_of(st.integers(1, 3), st.integers(1, max_size)))
    logs = [draw(_request(i, end, _ages())) for i in range(size)]
    # A few requests exactly a window's length (give or take 1 ms) before the latest one:
    # the edges of the exact windows, which random ages alone rarely hit.
    latest = max(log.time_unix_ms for log in logs) - H0
    edges = st.builds(operator.add, st.sampled_from(_WINDOWS), st.sampled_from((-1, 0, 1)))
    count = draw(st.integers(0, 3))
    logs += [draw(_request(size + i, latest, edges)) for i in range(count)]
    return draw(st.permutations(logs))
