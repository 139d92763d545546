"""``botscore simulate``: simulated edge WebLogs (humans and bots) onto Kafka."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from botscore.cli.command import Subparsers, not_negative, sigterm_as_ctrl_c
from botscore.enforcement.edge import EdgeDecisions
from botscore.settings import Settings
from botscore.simulator.profiles import MIXES, PROFILES
from botscore.simulator.run import simulate
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.visits import summarize_visits
from botscore.transport.redis_client import create_edge_redis
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="produce simulated edge WebLogs (humans and bots)"
    )
    defaults = SimulationSpec()
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="requests per simulated second (%(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=defaults.duration_s,
        help="simulated seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--speedup",
        type=float,
        default=defaults.speedup,
        help="simulated seconds per wall second (%(default)s)",
    )
    parser.add_argument(
        "--users", type=int, default=defaults.users, help="population (default: %(default)s)"
    )
    parser.add_argument(
        "--bot-share", type=float, default=defaults.bot_share, help="share of users that are bots"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--mix",
        choices=MIXES,
        default=defaults.mix,
        help="which kinds visit: wide adds unusual humans and human-like bots (%(default)s)",
    )
    parser.add_argument("--labels", default="simulation-labels.csv", help="ground-truth CSV path")
    parser.add_argument("--topic", help="default: the aggregation's web-logs topic")
    parser.add_argument(
        "--enforce", action="store_true", help="apply the edge's decisions from Redis to requests"
    )
    parser.add_argument(
        "--edge-cache-ms",
        type=not_negative,
        default=1000,
        help="how long the edge caches a decision (0: never)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no live status line")
    parser.set_defaults(run=run, role=Role.EDGE)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def run(settings: Settings, args: argparse.Namespace) -> int:
    spec = SimulationSpec(
        users=args.users,
        bot_share=args.bot_share,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        speedup=args.speedup,
        mix=args.mix,
    )
    if spec.clock_lead_ms:
        print(
            f"speedup {spec.speedup:g}: requests are stamped up to {spec.clock_lead_ms} ms ahead "
            "of the clock; the feature stage and the enforcer must allow that much "
            "(BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS, BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS)",
            file=sys.stderr,
        )
    edge = None
    if args.enforce:
        edge = EdgeDecisions(
            create_edge_redis(settings), args.edge_cache_ms, retry_ms=settings.edge.redis_retry_ms
        )
    try:
        with sigterm_as_ctrl_c():  # `make run` stops it so: the figures still come out
            stats = simulate(
                settings,
                spec,
                args.labels,
                progress=not args.no_progress,
                topic=args.topic,
                edge=edge,
            )
    finally:
        if edge is not None:
            edge.client.close()
    print(
        f"sent {stats.sent}, blocked {stats.blocked}, by kind {stats.sent_by_kind}", file=sys.stderr
    )
    if stats.decision_latencies_s:
        p50, p95, p99 = np.percentile(stats.decision_latencies_s, [50, 95, 99])
        print(
            f"request to decision at the edge, {len(stats.decision_latencies_s)} decisions "
            f"changed: p50 {p50:.1f} s, p95 {p95:.1f} s, p99 {p99:.1f} s",
            file=sys.stderr,
        )
    if stats.first_scores_s is not None:
        # scores arrived between the last sample without any and the first with some
        before = stats.bot_allowed_share(end_s=stats.unscored_until_s)
        after = stats.bot_allowed_share(start_s=stats.first_scores_s)
        print(
            f"first scores at simulated {stats.first_scores_s:.0f} s; bot requests allowed "
            f"before: {_share(before)}, after: {_share(after)} (whole minutes)",
            file=sys.stderr,
        )
        visits = summarize_visits(stats.visits, arrived_from_s=stats.first_scores_s)
        print(f"visitors who arrived after that: {visits.text(spec.speedup)}", file=sys.stderr)
        seen = {v.kind for v in stats.visits.values()}
        for kind in (k for k in PROFILES if k in seen):
            figures = summarize_visits(stats.visits, stats.first_scores_s, kind)
            text = (
                figures.bots_text(spec.speedup) if PROFILES[kind].is_bot else figures.humans_text()
            )
            print(f"  {kind:<20} {text}", file=sys.stderr)
    return 0
