"""``botscore backfill``: re-score a time range of the features topic beside the live
pipeline (``botscore.model.backfill``), and say what was written where.

Exits 1 when Kafka did not confirm every score; running it again writes them all again,
which readers of scores take as the same ones.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from botscore.cli.command import Subparsers, instant_ms
from botscore.clock import now_ms
from botscore.model.backfill import BackfillResult, backfill
from botscore.model.registry import load_model
from botscore.settings import Settings
from botscore.transport.kafka_clients import ensure_topics
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "backfill", help="re-score a time range of the features topic, beside the live group"
    )
    parser.add_argument(
        "--since", type=instant_ms, required=True, help="from this time (ISO 8601, UTC, or ms)"
    )
    parser.add_argument(
        "--until", type=instant_ms, help="to before this time (default: now)", default=None
    )
    parser.add_argument("--model-dir", help="the model to score with (default: scoring.model_dir)")
    parser.add_argument(
        "--to", help="the topic the scores go to (default: the scores topic's name + -backfill)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def describe(result: BackfillResult) -> str:
    written = sum(result.written.values())
    line = f"{result.read} messages read, {written} scores written"
    if written:
        line += " (" + ", ".join(f"{d} {n}" for d, n in sorted(result.written.items())) + ")"
    if result.invalid:
        line += "; not scored: " + ", ".join(f"{r} {n}" for r, n in sorted(result.invalid.items()))
    return line


def run(settings: Settings, args: argparse.Namespace) -> int:
    until = now_ms() if args.until is None else args.until
    if until <= args.since:  # a usage error (2), as argparse's are, on stderr
        print(
            f"botscore: --until ({_when(until)}) must be after --since ({_when(args.since)})",
            file=sys.stderr,
        )
        return 2
    model = load_model(args.model_dir or settings.scoring.model_dir)
    target = args.to or f"{settings.kafka.scores_topic}-backfill"
    ensure_topics(settings.kafka, [target])
    manifest = model.manifest
    print(
        f"backfill: {settings.kafka.features_topic} from {_when(args.since)} to before "
        f"{_when(until)}, scored by {manifest.name} {manifest.version}, into {target}"
    )
    result = backfill(
        settings.kafka,
        model,
        args.since,
        until,
        target,
        scored_time_ms=now_ms(),
        batch_size=settings.scoring.batch_size,
        block_requests_1m=settings.scoring.block_requests_1m,
        max_skew_ms=settings.aggregation.max_event_skew_ms,
    )
    print(f"backfill: {describe(result)}")
    if result.failed:
        print(
            f"backfill: {result.failed} scores not confirmed by Kafka (first: "
            f"{result.first_error}); run it again to write them"
        )
        return 1
    return 0
