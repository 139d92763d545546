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

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import ks_2samp

from botscore.aggregation.offline import publications
from botscore.aggregation.user_agents import declares_bot
from botscore.errors import ModelError
from botscore.model.features import feature_matrix
from botscore.model.registry import ModelManifest, load_model
from botscore.model.training import (
    PUBLISH_INTERVAL_MS,
    read_calibration_seeds,
    read_training_traffic,
    simulate,
)
from botscore.model.visitor_policy import (
    ALLOW,
    BLOCK,
    VisitorRequests,
    decisions,
    summarize,
    visitor_requests,
)
from botscore.settings import EnforcementSettings
from botscore.simulator.visits import VisitSummary
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_UNCHECKED, WebLog

__all__ = [
    "DECLARED_BOT",
    "FLAGGED_LISTED",
    "HIDDEN_FEATURE",
    "REWRITTEN_MINUTE_SHARE",
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
    logs: list[WebLog],
    model_dir: str | Path,
    publish_interval_ms: int = PUBLISH_INTERVAL_MS,
    enforcement: EnforcementSettings | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> LogCheck:
    """Replay ``logs`` (any order) through the feature stage's code and judge ``model_dir``."""
    if not logs:
        raise ModelError("the access log holds no request to check the model on")
    progress(f"replaying {len(logs)} requests through the feature stage's code")
    model = load_model(model_dir)
    manifest = model.manifest
    ordered = sorted(logs, key=lambda log: log.time_unix_ms)  # stable: file order in a second
    snapshots = list(publications(ordered, publish_interval_ms))
    x = feature_matrix([s.features for s in snapshots], manifest.feature_names)
    scores = model.predict_scores(x)
    # A visitor that ever named itself a bot is one (an edge's user id may change agents).
    declared = {log.user_id for log in ordered if declares_bot(log.user_agent)}
    label = {
        log.user_id: DECLARED_BOT if log.user_id in declared else UNDECLARED for log in ordered
    }
    policy = enforcement or EnforcementSettings()
    bot_kinds = frozenset({DECLARED_BOT})
    visits = visitor_requests(ordered, snapshots, scores, label, bot_kinds)
    decided = decisions(visits, manifest.thresholds, policy)
    visitors = summarize(visits, decided)
    if HIDDEN_FEATURE in manifest.feature_names:
        hidden_x = x.copy()
        hidden_x[:, manifest.feature_names.index(HIDDEN_FEATURE)] = 0.0
        hidden_scores = model.predict_scores(hidden_x)
    else:
        hidden_scores = scores
    hidden_visits = visitor_requests(ordered, snapshots, hidden_scores, label, bot_kinds)
    hidden = summarize(hidden_visits, decisions(hidden_visits, manifest.thresholds, policy))
    row_labels = np.array([label[s.user_id] for s in snapshots])
    undeclared_x = x[row_labels == UNDECLARED]
    simulated_seed, drift = _drift(model_dir, manifest, undeclared_x, publish_interval_ms, progress)
    return LogCheck(
        manifest=manifest,
        requests=len(ordered),
        first_ms=ordered[0].time_unix_ms,
        last_ms=ordered[-1].time_unix_ms,
        rows=len(snapshots),
        time_shape=_time_shape(ordered),
        signals=Signals(
            javascript=_share([log.js_check_passed for log in ordered]),
            tls_verdict=_share(
                [log.tls_fingerprint != TLS_FINGERPRINT_UNCHECKED for log in ordered]
            ),
            datacenter=_share([log.ip_is_datacenter for log in ordered]),
        ),
        users={
            name: sum(1 for v in label.values() if v == name) for name in (UNDECLARED, DECLARED_BOT)
        },
        visitors=visitors,
        hidden=hidden,
        bots_scored=_bots_scored(visits),
        flagged=_flagged(ordered, visits, decided),
        score_quantiles={
            name: tuple(float(q) for q in np.quantile(scores[row_labels == name], (0.5, 0.9, 0.99)))
            for name in (UNDECLARED, DECLARED_BOT)
            if np.any(row_labels == name)
        },
        simulated_seed=simulated_seed,
        drift=drift,
    )


def _time_shape(logs: list[WebLog]) -> TimeShape | None:
    times = np.array([log.time_unix_ms for log in logs], dtype=np.int64)
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
    logs: list[WebLog], visits: VisitorRequests, decided: np.ndarray
) -> tuple[Flagged, ...]:
    n = len(visits.kinds)
    worst = np.zeros(n, dtype=np.int8)
    np.maximum.at(worst, visits.user, decided)
    highest = np.full(n, -np.inf)
    np.fmax.at(highest, visits.user, visits.score)
    requests = np.bincount(visits.user, minlength=n)
    users = sorted({log.user_id for log in logs})  # visitor_requests' user indexes
    first: dict[str, WebLog] = {}
    for log in logs:
        first.setdefault(log.user_id, log)
    chosen = [u for u in range(n) if worst[u] != ALLOW and not visits.is_bot[u]]
    chosen.sort(key=lambda u: (-requests[u], users[u]))
    return tuple(
        Flagged(
            ip=first[users[u]].ip,
            user_agent=first[users[u]].user_agent,
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


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0
