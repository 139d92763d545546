"""The features, defined once: what a request contributes, and what the state yields.

Serving keeps the per-user state in Redis (``redis_state``), training keeps it in memory
(``offline.MemoryFeatureStore``). Memory applies the ``StateUpdate`` that ``update_for``
derives from a request; Redis's script derives the same update from the request's time,
``counter_flags`` and ``distinct_values`` with these granularities and sets, for a whole
batch at once. Both hand a ``UserState`` to ``compute_features``, and tests replay logs
through both and through an independent oracle.

Every window ends at the user's latest request (event time, not arrival time), and every
update is order-independent: a replayed or late request gives the same final state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from botscore.aggregation.user_agents import declares_bot
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_CONTRADICTS_USER_AGENT, WebLog
from botscore.wire.codec import ip_spelling
from botscore.wire.records import RequestRecord, SourceRef

__all__ = [
    "DISTINCT_SETS",
    "GRANULARITIES",
    "MAX_PATH_CHARS",
    "MAX_USER_AGENT_BYTES",
    "RECENT_REQUESTS",
    "DistinctSet",
    "Granularity",
    "StateUpdate",
    "UserState",
    "compute_features",
    "counter_flags",
    "cut_user_agent",
    "distinct_values",
    "request_record",
    "update_for",
]

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Granularity:
    """Counters kept in ``keep`` time buckets of ``size_ms``: a window of that length."""

    name: str
    size_ms: int
    keep: int
    counters: tuple[str, ...]

    def bucket(self, time_ms: int) -> int:
        return time_ms // self.size_ms

    def lowest_kept(self, last_ms: int) -> int:
        return self.bucket(last_ms) - self.keep + 1


@dataclass(frozen=True)
class DistinctSet:
    """Distinct values seen in ``window_ms``, counted up to ``cap`` (memory stays bounded)."""

    name: str
    window_ms: int
    cap: int


GRANULARITIES: tuple[Granularity, ...] = (
    Granularity("s10", 10_000, 6, ("req",)),
    Granularity("m1", 60_000, 60, ("req", "err", "head", "js", "login", "botua", "tlsua")),
    Granularity("m10", 600_000, 24, ("req", "dc")),
)
DISTINCT_SETS: tuple[DistinctSet, ...] = (
    DistinctSet("ip", 4 * HOUR_MS, 500),
    DistinctSet("ua", 4 * HOUR_MS, 100),
    DistinctSet("path", HOUR_MS, 2000),
)
# Inter-arrival statistics come from this many most recent requests.
RECENT_REQUESTS = 32
# Longer paths and user agents are cut: the sets measure variety, and a bot must not
# inflate memory. A user agent is cut to whole characters within its byte limit.
MAX_PATH_CHARS = 200
MAX_USER_AGENT_BYTES = 512


def counter_flags(log: WebLog) -> list[str]:
    """The counters one request increments."""
    flags = ["req"]
    if log.status >= 400:
        flags.append("err")
    if log.method == "HEAD":
        flags.append("head")
    if log.js_check_passed:
        flags.append("js")
    if log.method == "POST" and log.path.split("?", 1)[0] == "/login":
        flags.append("login")
    if log.ip_is_datacenter:
        flags.append("dc")
    if declares_bot(cut_user_agent(log.user_agent)):
        flags.append("botua")
    if log.tls_fingerprint == TLS_FINGERPRINT_CONTRADICTS_USER_AGENT:
        flags.append("tlsua")
    return flags


def cut_user_agent(user_agent: str) -> str:
    """``user_agent`` cut to whole characters within ``MAX_USER_AGENT_BYTES``."""
    return user_agent.encode()[:MAX_USER_AGENT_BYTES].decode(errors="ignore")


def request_record(log: WebLog, source: SourceRef, replay_floor: int = 0) -> RequestRecord:
    """What the store counts of ``log``, live and offline alike: its address in its one
    spelling, its user agent and path cut."""
    return RequestRecord(
        user_id=log.user_id,
        time_ms=log.time_unix_ms,
        request_id=log.request_id,
        ip=ip_spelling(log.ip),
        user_agent=cut_user_agent(log.user_agent),
        path=log.path[:MAX_PATH_CHARS],
        flags=counter_flags(log),
        source=source,
        replay_floor=replay_floor,
    )


@dataclass(frozen=True)
class StateUpdate:
    """What one request changes in its user's state; applied by Redis or by memory."""

    time_ms: int
    request_id: str
    # (granularity, bucket index, counters to increment)
    counters: tuple[tuple[Granularity, int, tuple[str, ...]], ...]
    # (set, member)
    members: tuple[tuple[DistinctSet, str], ...]


def distinct_values(record: RequestRecord) -> dict[str, str]:
    """The value a request adds to each distinct set, by set name."""
    return {"ip": record.ip, "ua": record.user_agent, "path": record.path}


def update_for(record: RequestRecord) -> StateUpdate:
    flags = set(record.flags)
    values = distinct_values(record)
    return StateUpdate(
        time_ms=record.time_ms,
        request_id=record.request_id,
        counters=tuple(
            (g, g.bucket(record.time_ms), tuple(c for c in g.counters if c in flags))
            for g in GRANULARITIES
        ),
        members=tuple((s, values[s.name]) for s in DISTINCT_SETS),
    )


@dataclass(frozen=True)
class UserState:
    """A user's state as read back: what ``compute_features`` needs, nothing more."""

    last_ms: int
    # "<granularity>:<bucket>:<counter>" -> count, for kept buckets only
    counters: Mapping[str, int]
    # set name -> distinct values in its window (at most its cap)
    distinct: Mapping[str, int]
    # times of the most recent requests, ascending
    recent_ms: tuple[int, ...]


def compute_features(state: UserState) -> dict[str, float]:
    """Every feature in ``botscore.model.features.CATALOG``, in its order, from one user's state."""
    sums = {(g.name, c): 0 for g in GRANULARITIES for c in g.counters}
    lowest = {g.name: g.lowest_kept(state.last_ms) for g in GRANULARITIES}
    for field_name, count in state.counters.items():
        gran, bucket, counter = field_name.split(":")
        if int(bucket) >= lowest[gran]:
            sums[(gran, counter)] += count
    requests_1h = sums[("m1", "req")]
    mean_gap, cv = _interarrival(state.recent_ms)
    features = {
        "requests_1m": float(sums[("s10", "req")]),
        "requests_1h": float(requests_1h),
        "distinct_ips_4h": float(state.distinct.get("ip", 0)),
        "distinct_user_agents_4h": float(state.distinct.get("ua", 0)),
        "distinct_paths_1h": float(state.distinct.get("path", 0)),
        "error_ratio_1h": _ratio(sums[("m1", "err")], requests_1h),
        "head_ratio_1h": _ratio(sums[("m1", "head")], requests_1h),
        "datacenter_ip_ratio_4h": _ratio(sums[("m10", "dc")], sums[("m10", "req")]),
        "interarrival_mean_s": mean_gap,
        "interarrival_cv": cv,
        "js_check_ratio_1h": _ratio(sums[("m1", "js")], requests_1h),
        "login_attempts_1h": float(sums[("m1", "login")]),
        "declared_bot_ua_ratio_1h": _ratio(sums[("m1", "botua")], requests_1h),
        "tls_contradicts_ua_ratio_1h": _ratio(sums[("m1", "tlsua")], requests_1h),
    }
    return features


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _interarrival(times_ms: tuple[int, ...]) -> tuple[float, float]:
    """Mean gap in seconds and its coefficient of variation; zeros below two gaps."""
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times_ms)]
    if len(gaps) < 2:
        return (gaps[0] if gaps else 0.0), 0.0
    mean = math.fsum(gaps) / len(gaps)
    if mean == 0:
        return 0.0, 0.0
    variance = math.fsum((g - mean) ** 2 for g in gaps) / len(gaps)
    return mean, math.sqrt(variance) / mean
