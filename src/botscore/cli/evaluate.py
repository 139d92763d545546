"""``botscore evaluate``: judge a trained model on held-out traffic and with each kind left out.

It needs no settings: ``main`` does not read ``config.json`` for it. ``botscore train`` ends
with the same evaluation of the model it wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botscore.cli.command import Subparsers, not_negative
from botscore.model.evaluation import (
    EVALUATION_MIX,
    EVALUATION_SEEDS,
    HUMAN_RATE,
    Evaluation,
    evaluate,
)
from botscore.model.evaluation_report import write_evaluation
from botscore.model.registry import check_output_dir
from botscore.settings import ScoringSettings, Settings
from botscore.simulator.profiles import MIXES

__all__ = ["add_parser", "evaluate_and_report", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="judge a trained model on held-out traffic, each bot kind left out"
    )
    parser.add_argument(
        "model_dir",
        nargs="?",
        default="models/baseline",
        help="model directory (default: %(default)s)",
    )
    parser.add_argument(
        "--out", help="where evaluation.md, .json and the PNGs go (default: the model directory)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(EVALUATION_SEEDS),
        help="held-out simulation seeds, none the training's (default: %(default)s)",
    )
    parser.add_argument(
        "--mix", choices=MIXES, default=EVALUATION_MIX, help="held-out kinds (%(default)s)"
    )
    parser.add_argument(
        "--human-rate",
        type=float,
        default=HUMAN_RATE,
        help="share of human rows challenged at the extra threshold (default: %(default)s)",
    )
    parser.add_argument(
        "--block-requests-1m",
        type=not_negative,
        default=ScoringSettings().block_requests_1m,
        help="in the per-visitor figures, block a visitor with more requests in the last "
        "minute whatever the model scores, as the live classifier does "
        "(scoring.block_requests_1m; 0: never; default: %(default)s)",
    )
    parser.set_defaults(run=run, needs_settings=False)


def run(settings: Settings, args: argparse.Namespace) -> int:
    evaluate_and_report(
        args.model_dir, args.out, args.seeds, args.mix, args.human_rate, args.block_requests_1m
    )
    return 0


def evaluate_and_report(
    model_dir: str,
    out: str | None = None,
    seeds: Sequence[int] = EVALUATION_SEEDS,
    mix: str = EVALUATION_MIX,
    human_rate: float = HUMAN_RATE,
    block_requests_1m: int = ScoringSettings().block_requests_1m,
) -> Evaluation:
    """Evaluate, write the files, print the figures (progress on stderr)."""
    out_dir = out or model_dir
    check_output_dir(out_dir)  # before the minutes of evaluation, not after
    evaluation = evaluate(
        model_dir, seeds, mix, human_rate, progress=_progress, block_requests_1m=block_requests_1m
    )
    written = write_evaluation(evaluation, out_dir)
    _print(evaluation)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return evaluation


def _progress(message: str) -> None:
    print(f"evaluate: {message}", file=sys.stderr, flush=True)


def _print(evaluation: Evaluation) -> None:
    overall = evaluation.overall
    seeds = ", ".join(str(s) for s in evaluation.seeds)
    print(
        f"held out: seeds {seeds}, {evaluation.mix} mix, {overall.bot_rows} bot and "
        f"{overall.human_rows} human rows"
    )
    print(
        f"overall  ROC AUC {overall.roc_auc:.4f}  PR AUC {overall.pr_auc:.4f}  "
        f"bots challenged {overall.bots_challenged:6.1%} blocked {overall.bots_blocked:6.1%} "
        f"at {evaluation.human_rate:.1%} humans {overall.bots_at_human_rate:6.1%}  "
        f"humans challenged {overall.humans_challenged:.2%} blocked {overall.humans_blocked:.2%}"
    )
    for k in evaluation.kinds:
        aucs = "" if k.roc_auc is None else f"  ROC AUC {k.roc_auc:.4f}  PR AUC {k.pr_auc:.4f}"
        print(
            f"  {k.kind:<20} challenged {k.challenged:6.1%}  blocked {k.blocked:6.1%}  "
            f"at {evaluation.human_rate:.1%} humans {k.at_human_rate:6.1%}{aucs}"
        )
    visitors = evaluation.visitors
    print(f"per visitor (decisions {visitors.latency_s:g} s after the features):")
    print(f"  {'all':<20} {visitors.overall.text()}")
    for kind, figures in visitors.kinds:
        print(f"  {kind:<20} {figures.text()}")
    print(f"  {visitors.rate_ceiling.text()}")
    print("each bot kind left out of training:")
    for left in evaluation.left_out:
        d = left.detection
        note = "" if left.training_rows is not None else "  (never in training)"
        print(
            f"  {left.kind:<20} ROC AUC {d.roc_auc:.4f}  challenged {d.bots_challenged:6.1%}  "
            f"blocked {d.bots_blocked:6.1%}  at {evaluation.human_rate:.1%} humans "
            f"{d.bots_at_human_rate:6.1%}{note}"
        )
