"""``botscore replay-log``: an access log nobody simulated through the feature stage's code and a
model, with weak labels from the crawlers that name themselves (``model.log_check``).

It needs no settings: ``main`` does not read ``config.json`` for it. To send a log to the
live feature stage instead, ``botscore edge ship`` reads the same formats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from botscore.cli.command import Subparsers, not_negative
from botscore.model.log_check import check_log
from botscore.model.log_check_report import write_log_check
from botscore.model.registry import check_output_dir, load_model
from botscore.settings import AccessLogFormat, ScoringSettings, Settings
from botscore.web_edge.access_log import Networks
from botscore.web_edge.log_files import read_log_files

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "replay-log",
        help="score an access log offline with a model, weakly labelled by declared crawlers",
    )
    parser.add_argument("logs", nargs="+", type=Path, help="access log files (.gz too)")
    parser.add_argument(
        "--format",
        choices=get_args(AccessLogFormat),
        default="combined",
        help="combined: the common or combined format of nginx, Apache and most servers; "
        "botscore: nginx's botscore format (default: %(default)s)",
    )
    parser.add_argument(
        "--model", default="models/baseline", help="model directory (default: %(default)s)"
    )
    parser.add_argument(
        "--out", default="replay-log", help="where replay-log.md and .json go (%(default)s)"
    )
    parser.add_argument(
        "--block-requests-1m",
        type=not_negative,
        default=ScoringSettings().block_requests_1m,
        help="block a visitor with more requests in the last minute whatever the model "
        "scores, as the live classifier does (scoring.block_requests_1m; 0: never; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--datacenter-networks",
        default="",
        help="comma-separated CIDRs the edge would mark as data centres (default: none)",
    )
    parser.set_defaults(run=run, needs_settings=False)


def run(settings: Settings, args: argparse.Namespace) -> int:
    # Arguments that cannot work fail now, not after minutes of reading a large log.
    check_output_dir(args.out)
    load_model(args.model)
    read = read_log_files(args.logs, args.format, Networks(args.datacenter_networks.split(",")))
    refused = sum(read.refused.values())
    _progress(
        f"read {read.lines} lines: {len(read.logs)} requests, {read.blocked} blocked, "
        f"{refused} refused"
    )
    for refusal in read.refusals[:5]:
        _progress(f"refused {refusal}")
    check = check_log(
        read.logs, args.model, progress=_progress, block_requests_1m=args.block_requests_1m
    )
    visitors, hidden = check.visitors, check.hidden
    print(
        f"undeclared visitors: {visitors.humans}, {visitors.humans_challenged:.2%} ever "
        f"challenged, {visitors.humans_blocked:.2%} ever blocked"
    )
    print(
        f"declared bots: {visitors.bots}, {visitors.bots_blocked:.1%} blocked; with their user "
        f"agents hidden {hidden.bots_blocked:.1%}"
    )
    far = [f"{d.name} {d.ks_distance:.2f}" for d in check.drift[:3]]
    if far:
        print(f"features furthest from the simulated humans': {', '.join(far)}")
    written = write_log_check(read, check, args.out)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _progress(message: str) -> None:
    print(f"replay-log: {message}", file=sys.stderr, flush=True)
