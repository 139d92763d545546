"""``botscore train``: train the model on simulated traffic, through the feature stage's code,
then evaluate it (``botscore evaluate`` with its defaults).

It needs no settings: ``main`` does not read ``config.json`` for it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from botscore.cli.command import Subparsers
from botscore.cli.evaluate import evaluate_and_report
from botscore.model.features import CATALOG
from botscore.model.registry import Thresholds
from botscore.model.training import (
    BLOCK_CALIBRATION_SCALE,
    BLOCK_CALIBRATION_SEEDS,
    CALIBRATION_SEEDS,
    DEFAULT_NAME,
    DEFAULT_VERSION,
    EARLY_BLOCK_STAGES,
    TRAINING_TRAFFIC,
    train_model,
)
from botscore.model.visitor_policy import CONFIDENCE, HUMANS_CHALLENGED_TARGET
from botscore.settings import Settings
from botscore.simulator.profiles import MIXES

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the model on simulated traffic, through the feature stage's code"
    )
    parser.add_argument(
        "--out", default="models/baseline", help="model directory (default: %(default)s)"
    )
    defaults = TRAINING_TRAFFIC
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests/s simulated")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--calibration-seeds",
        type=int,
        nargs="+",
        default=list(CALIBRATION_SEEDS),
        help="seeds of the simulations the thresholds are chosen on (default: %(default)s)",
    )
    parser.add_argument(
        "--block-calibration-seeds",
        type=int,
        nargs="*",
        default=list(BLOCK_CALIBRATION_SEEDS),
        help=f"seeds of the {BLOCK_CALIBRATION_SCALE}x larger simulations the block threshold "
        "must also hold on (none: only the calibration seeds; default: %(default)s)",
    )
    parser.add_argument(
        "--early-block-stages",
        type=int,
        nargs="*",
        default=list(EARLY_BLOCK_STAGES),
        help="requests in the last hour up to which a row gets a block threshold of its own, "
        "one per stage, in increasing order (none: one block threshold; default: %(default)s)",
    )
    parser.add_argument(
        "--mix", choices=MIXES, default=defaults.mix, help="which kinds visit (%(default)s)"
    )
    parser.add_argument(
        "--humans-challenged",
        type=float,
        default=HUMANS_CHALLENGED_TARGET,
        help="choose the thresholds so that at most this share of human visitors is ever "
        "challenged, none blocked (default: %(default)s)",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=CONFIDENCE,
        help="how sure the calibration must make that share (0: as seen; default: %(default)s)",
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs=2,
        metavar=("CHALLENGE", "BLOCK"),
        help="use these thresholds instead of choosing them",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        choices=CATALOG,
        metavar="FEATURE",
        help="features the model must not read, such as the signals an edge without "
        "JavaScript check or TLS fingerprints cannot give (default: it reads every one)",
    )
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help="the manifest's name, which every score names with the version (%(default)s)",
    )
    parser.add_argument(
        "--version",
        default=DEFAULT_VERSION,
        help="the manifest's version: a new one for each model you publish (default: %(default)s)",
    )
    parser.set_defaults(run=run, needs_settings=False)


def run(settings: Settings, args: argparse.Namespace) -> int:
    traffic = replace(
        TRAINING_TRAFFIC,
        users=args.users,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        mix=args.mix,
    )
    manifest, report = train_model(
        args.out,
        traffic,
        calibration_seeds=args.calibration_seeds,
        block_calibration_seeds=args.block_calibration_seeds,
        early_stages=args.early_block_stages,
        version=args.version,
        thresholds=Thresholds(*args.thresholds) if args.thresholds else None,
        humans_challenged=args.humans_challenged,
        confidence=args.confidence,
        progress=_progress,
        features=[name for name in CATALOG if name not in args.without],
        name=args.name,
    )
    print(f"wrote {args.out}: {manifest.name} {manifest.version}, {report.rows} rows")
    if args.without:
        print(f"features: {', '.join(manifest.feature_names)}")
    chosen = (
        "given"
        if report.humans_challenged_target is None
        else f"chosen for at most {report.humans_challenged_target:.2%} of humans challenged, "
        f"{report.confidence:.0%} sure"
    )
    thresholds = manifest.thresholds
    print(
        f"thresholds: challenge {thresholds.challenge:.6f}, block {thresholds.block:.6f} ({chosen})"
    )
    for stage in thresholds.early_block:
        print(f"  block {stage.block:.6f} where requests_1h <= {stage.max_requests_1h}")
    print(f"calibration visitors: {report.calibration_visitors}")
    seeds = ", ".join(str(s) for s in report.calibration_seeds)
    print(
        f"calibration seeds {seeds}: {report.calibration_rows} rows, "
        f"AUC {report.calibration_auc:.4f}"
    )
    if report.block_calibration_seeds:
        big = ", ".join(str(s) for s in report.block_calibration_seeds)
        print(
            f"block threshold also above every human of seeds {big} "
            f"({report.block_calibration_users} users each)"
        )
    for kind in report.challenged:
        print(
            f"  {kind:<20} challenged {report.challenged[kind]:6.1%}  "
            f"blocked {report.blocked[kind]:6.1%}"
        )
    evaluate_and_report(args.out)
    return 0


def _progress(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)
