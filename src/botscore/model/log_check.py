"""A model on real traffic nobody simulated: an access log replayed through the feature
stage's code, scored and decided on per visitor, with weak labels.

A public log has no ground truth, but its crawlers name themselves: a visitor whose user
agent declares a bot (``user_agents.declares_bot``) is labelled one, every other visitor
"undeclared" (mostly humans, and whatever bots hide). That label is also a feature, so the
check asks two questions the label cannot answer for the model:

- how many undeclared visitors the thresholds would challenge or block: humans are most of
  them, so a share far above the calibration's says the model does not fit this traffic;
- how many declared bots it would still block with their user agents hidden (the feature
  set to 0): what their behaviour alone gives away.

And it compares every feature of the undeclared visitors' rows with the simulated humans'
the thresholds were chosen on (their calibration traffic), by the two-sample
Kolmogorov-Smirnov distance: 0 alike, 1 apart. A feature whose signal the log cannot carry
(no JavaScript token in the combined format) shows up there first.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import ks_2samp

from botscore.aggregation.offline import FeatureSnapshot, publications
from botscore.aggregation.user_agents import declares_bot
from botscore.errors import ModelError
from botscore.model.features import feature_matrix
from botscore.model.registry import STAGE_FEATURE, ModelManifest, Thresholds, load_model
from botscore.model.scoring import RateCeiling, over_rate_ceiling
from botscore.model.training import (
    PUBLISH_INTERVAL_MS,
    read_calibration_seeds,
    read_training_traffic,
    simulate,
)
from botscore.model.visitor_policy import (
    ALLOW,
    BLOCK,
    PublishedScores,
    RequestTimes,
    VisitorRequests,
    decisions,
    joined_requests,
    summarize,
)
from botscore.settings import AggregationSettings, EnforcementSettings
from botscore.simulator.visits import VisitSummary
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_UNCHECKED, WebLog
from botscore.web_edge.log_files import RequestLog

__all__ = [
    "DECLARED_BOT",
    "FLAGGED_LISTED",
    "HIDDEN_FEATURE",
    "REWRITTEN_MINUTE_SHARE",
    "STATE_TTL_MS",
    "UNDECLARED",
    "FeatureDrift",
    "Flagged",
    "LogCheck",
    "Signals",
    "TimeShape",
    "check_log",
]

DECLARED_BOT = "declared-bot"
UNDECLARED = "undeclared"
# The feature the weak label comes from, set to 0 to ask what behaviour alone says.
HIDDEN_FEATURE = "declared_bot_ua_ratio_1h"
_QUANTILES = (10, 50, 90)
FLAGGED_LISTED = 20
# Over two hours or more, a minute of the hour holding more than this share of the requests
# (1/60 if spread evenly) says the times were rewritten.
REWRITTEN_MINUTE_SHARE = 0.2
_HOUR_MS = 3_600_000
# A visitor idle this long starts over, as the feature state's keys expire in Redis.
STATE_TTL_MS = AggregationSettings().state_ttl_s * 1000


@dataclass(frozen=True)
class Signals:
    """Shares of the log's requests carrying what the edge adds to a request."""

    javascript: float  # with the edge's JavaScript token
    tls_verdict: float  # with a TLS fingerprint verdict
    datacenter: float  # from an address in ``edge.datacenter_networks``


@dataclass(frozen=True)
class TimeShape:
    """How the log's times spread. Real traffic over hours fills every minute of the hour;
    a log whose times were rewritten (anonymised, sampled) may not, and then the rates,
    gaps and bursts the features measure are not the visitors' own."""

    whole_seconds: bool  # no time has milliseconds (the combined format has none)
    minutes_used: int  # of the 60 minutes of the hour, those holding a request
    busiest_minute_share: float  # share of the requests in the busiest minute of the hour

    @property
    def looks_rewritten(self) -> bool:
        return self.busiest_minute_share > REWRITTEN_MINUTE_SHARE


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of the undeclared visitors' rows against the simulated humans'."""

    name: str
    ks_distance: float
    log_quantiles: tuple[float, ...]  # p10, p50, p90
    simulated_quantiles: tuple[float, ...]


@dataclass(frozen=True)
class Flagged:
    """An undeclared visitor the policy would challenge or block: worth a look, as a bot
    that hides or as a human the model mistakes."""

    ip: str
    user_agent: str
    requests: int
    decision: str  # the strongest it would get: challenge or block
    highest_score: float


@dataclass(frozen=True)
class LogCheck:
    manifest: ModelManifest
    requests: int
    first_ms: int
    last_ms: int
    rows: int
    signals: Signals
    # None for a log spanning less than two hours, too short to tell
    time_shape: TimeShape | None
    users: dict[str, int]  # weak label -> visitors
    # Decisions per visitor: "humans" are the undeclared visitors, "bots" the declared ones.
    visitors: VisitSummary
    rate_ceiling: RateCeiling
    # The declared bots again, their user agents' feature set to 0.
    hidden: VisitSummary
    # Share of declared bots with a request while a score of theirs was in force: the most
    # any thresholds could block (a bot gone before its first score cannot be).
    bots_scored: float
    # The undeclared visitors flagged, most requests first (at most ``FLAGGED_LISTED``).
    flagged: tuple[Flagged, ...]
    # weak label -> p50, p90, p99 of its rows' scores
    score_quantiles: dict[str, tuple[float, ...]]
    # None when the model directory does not say what it was calibrated on.
    simulated_seed: int | None
    drift: tuple[FeatureDrift, ...]


def check_log(
    logs: Sequence[WebLog],
    model_dir: str | Path,
    publish_interval_ms: int = PUBLISH_INTERVAL_MS,
    enforcement: EnforcementSettings | None = None,
    progress: Callable[[str], None] = lambda _: None,
    block_requests_1m: int = 0,
) -> LogCheck:
    """Replay ``logs`` (any order) through the feature stage's code and judge ``model_dir``,
    a visitor past ``block_requests_1m`` blocked as the live classifier blocks it.

    One pass in time order, each request read once (a ``RequestLog`` parses it then) and
    kept as a few numbers, each published row as its features, and a visitor's state only
    while it is active (``STATE_TTL_MS``): a log of millions of requests fits where its
    ``WebLog`` objects would not.
    """
    if not logs:
        raise ModelError("the access log holds no request to check the model on")
    progress(f"replaying {len(logs)} requests through the feature stage's code")
    model = load_model(model_dir)
    manifest = model.manifest
    times = logs.times_ms if isinstance(logs, RequestLog) else _times(logs)
    order = np.argsort(times, kind="stable")  # stable: file order in a second
    walk = _Walk(logs, order)
    rows = _Rows(manifest.feature_names)
    for snapshot in publications(walk, publish_interval_ms, STATE_TTL_MS):
        rows.add(snapshot, walk.index[snapshot.user_id])
    x = rows.matrix()
    scores = model.predict_scores(x)
    # Users by sorted id, as visitor_requests numbers them (the walk numbers them by first
    # request).
    users = sorted(walk.index)
    renumbered = np.empty(len(users), dtype=np.int64)
    renumbered[[walk.index[user] for user in users]] = np.arange(len(users))
    # A visitor that ever named itself a bot is one (an edge's user id may change agents).
    label = {
        user: DECLARED_BOT if walk.declared[walk.index[user]] else UNDECLARED for user in users
    }
    policy = enforcement or EnforcementSettings()
    requests = RequestTimes(users, renumbered[walk.users()], times[order])
    row_users = renumbered[rows.users()]
    published = rows.published(row_users, scores)
    over = over_rate_ceiling(manifest, x, block_requests_1m)
    visits, decided = _decided(requests, published, over, label, manifest.thresholds, policy)
    row_labels = np.array([label[users[u]] for u in row_users])
    undeclared_x = x[row_labels == UNDECLARED]
    if HIDDEN_FEATURE in manifest.feature_names:
        x[:, manifest.feature_names.index(HIDDEN_FEATURE)] = 0.0
        hidden_published = replace(published, score=model.predict_scores(x))
    else:
        hidden_published = published
    del x
    hidden = summarize(
        *_decided(requests, hidden_published, over, label, manifest.thresholds, policy)
    )
    simulated_seed, drift = _drift(model_dir, manifest, undeclared_x, publish_interval_ms, progress)
    return LogCheck(
        manifest=manifest,
        requests=len(logs),
        first_ms=int(times[order[0]]),
        last_ms=int(times[order[-1]]),
        rows=rows.count,
        time_shape=_time_shape(times[order]),
        signals=walk.signals(),
        users={
            name: sum(1 for v in label.values() if v == name) for name in (UNDECLARED, DECLARED_BOT)
        },
        visitors=summarize(visits, decided),
        rate_ceiling=RateCeiling.of(block_requests_1m, over, row_users),
        hidden=hidden,
        bots_scored=_bots_scored(visits),
        flagged=_flagged(visits, decided, [walk.first[walk.index[user]] for user in users]),
        score_quantiles={
            name: tuple(float(q) for q in np.quantile(scores[row_labels == name], (0.5, 0.9, 0.99)))
            for name in (UNDECLARED, DECLARED_BOT)
            if np.any(row_labels == name)
        },
        simulated_seed=simulated_seed,
        drift=drift,
    )


def _decided(
    requests: RequestTimes,
    published: PublishedScores,
    over: np.ndarray,
    label: Mapping[str, str],
    thresholds: Thresholds,
    policy: EnforcementSettings,
) -> tuple[VisitorRequests, np.ndarray]:
    """The visits with the model's scores, and the edge's decision on each request: where
    the score in force came from a row past the rate ceiling (``over``), a block."""
    bot_kinds = frozenset({DECLARED_BOT})  # the weak labels
    visits = joined_requests(requests, published, label, bot_kinds)
    if not over.any():
        return visits, decisions(visits, thresholds, policy)
    ceiled = replace(published, score=np.where(over, 1.0, published.score))
    return visits, decisions(
        joined_requests(requests, ceiled, label, bot_kinds), thresholds, policy
    )


def _times(logs: Sequence[WebLog]) -> np.ndarray:
    return np.fromiter((log.time_unix_ms for log in logs), dtype=np.int64, count=len(logs))


class _Walk(Iterator[WebLog]):
    """``logs`` in ``order``, each read once, keeping what the check needs of it: the
    user's number (by first request), per user whether it ever declared a bot and its
    first address and agent, and the counts of what the edge added."""

    def __init__(self, logs: Sequence[WebLog], order: np.ndarray) -> None:
        self._logs = logs
        self._order = iter(order.tolist())
        self.index: dict[str, int] = {}
        self._user = array("q")
        self.declared: list[bool] = []
        self.first: list[tuple[str, str]] = []  # (ip, user agent)
        self._javascript = self._tls_verdict = self._datacenter = 0

    def __next__(self) -> WebLog:
        log = self._logs[int(next(self._order))]
        user = self.index.get(log.user_id)
        if user is None:
            user = self.index[log.user_id] = len(self.index)
            self.declared.append(False)
            self.first.append((log.ip, log.user_agent))
        self._user.append(user)
        if not self.declared[user] and declares_bot(log.user_agent):
            self.declared[user] = True
        self._javascript += log.js_check_passed
        self._tls_verdict += log.tls_fingerprint != TLS_FINGERPRINT_UNCHECKED
        self._datacenter += log.ip_is_datacenter
        return log

    def users(self) -> np.ndarray:
        """Each request's user number, in time order."""
        return np.array(self._user, dtype=np.int64)

    def signals(self) -> Signals:
        n = len(self._user)
        return Signals(
            javascript=self._javascript / n,
            tls_verdict=self._tls_verdict / n,
            datacenter=self._datacenter / n,
        )


class _Rows:
    """The published rows: their features as a matrix, built in chunks, and per row its
    user's number, time and ``requests_1h``."""

    _CHUNK = 10_000

    def __init__(self, names: Sequence[str]) -> None:
        self._names = names
        self._pending: list[dict[str, float]] = []
        self._chunks: list[np.ndarray] = [np.empty((0, len(names)))]
        self._user = array("q")
        self._end_ms = array("q")
        self._requests_1h = array("d")

    @property
    def count(self) -> int:
        return len(self._user)

    def add(self, snapshot: FeatureSnapshot, user: int) -> None:
        self._user.append(user)
        self._end_ms.append(snapshot.window_end_ms)
        self._requests_1h.append(float(snapshot.features.get(STAGE_FEATURE, np.nan)))
        self._pending.append(snapshot.features)
        if len(self._pending) == self._CHUNK:
            self._flush()

    def _flush(self) -> None:
        self._chunks.append(feature_matrix(self._pending, self._names))
        self._pending = []

    def matrix(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self._chunks)

    def users(self) -> np.ndarray:
        return np.array(self._user, dtype=np.int64)

    def published(self, users: np.ndarray, scores: np.ndarray) -> PublishedScores:
        return PublishedScores(
            users,
            np.array(self._end_ms, dtype=np.int64),
            np.array(self._requests_1h, dtype=float),
            scores,
        )


def _time_shape(times: np.ndarray) -> TimeShape | None:
    if times[-1] - times[0] < 2 * _HOUR_MS:
        return None
    minutes = np.bincount((times % _HOUR_MS) // 60_000, minlength=60)
    return TimeShape(
        whole_seconds=bool(np.all(times % 1000 == 0)),
        minutes_used=int(np.count_nonzero(minutes)),
        busiest_minute_share=float(minutes.max() / len(times)),
    )


def _bots_scored(visits: VisitorRequests) -> float:
    n = len(visits.kinds)
    scored = np.bincount(visits.user[np.isfinite(visits.score)], minlength=n) > 0
    return float(scored[visits.is_bot].mean()) if visits.is_bot.any() else 0.0


def _flagged(
    visits: VisitorRequests, decided: np.ndarray, first: Sequence[tuple[str, str]]
) -> tuple[Flagged, ...]:
    """``first``: each user's first (address, agent), by ``visits``' user numbers."""
    n = len(visits.kinds)
    worst = np.zeros(n, dtype=np.int8)
    np.maximum.at(worst, visits.user, decided)
    highest = np.full(n, -np.inf)
    np.fmax.at(highest, visits.user, visits.score)
    requests = np.bincount(visits.user, minlength=n)
    chosen = [u for u in range(n) if worst[u] != ALLOW and not visits.is_bot[u]]
    chosen.sort(key=lambda u: -requests[u])  # stable: by user id among equals
    return tuple(
        Flagged(
            ip=first[u][0],
            user_agent=first[u][1],
            requests=int(requests[u]),
            decision="block" if worst[u] == BLOCK else "challenge",
            highest_score=float(highest[u]),
        )
        for u in chosen[:FLAGGED_LISTED]
    )


def _drift(
    model_dir: str | Path,
    manifest: ModelManifest,
    rows: np.ndarray,
    publish_interval_ms: int,
    progress: Callable[[str], None],
) -> tuple[int | None, tuple[FeatureDrift, ...]]:
    """Each feature of ``rows`` against the simulated humans of the model's first calibration
    traffic, most different first; none without such traffic or rows."""
    try:
        traffic, _ = read_training_traffic(model_dir)
        seeds = read_calibration_seeds(model_dir)
    except ModelError:
        return None, ()
    if not seeds or not len(rows):
        return None, ()
    progress(f"simulating the model's calibration traffic (seed {seeds[0]}) to compare with")
    run = simulate(replace(traffic, seed=seeds[0]), publish_interval_ms)
    is_human = np.array([run.kind_of[s.user_id] not in run.bot_kinds for s in run.snapshots])
    humans = feature_matrix(
        [s.features for s, h in zip(run.snapshots, is_human, strict=True) if h],
        manifest.feature_names,
    )
    drift = [
        FeatureDrift(
            name=name,
            ks_distance=float(ks_2samp(rows[:, i], humans[:, i]).statistic),
            log_quantiles=tuple(float(q) for q in np.percentile(rows[:, i], _QUANTILES)),
            simulated_quantiles=tuple(float(q) for q in np.percentile(humans[:, i], _QUANTILES)),
        )
        for i, name in enumerate(manifest.feature_names)
    ]
    drift.sort(key=lambda d: (-d.ks_distance, d.name))
    return seeds[0], tuple(drift)
