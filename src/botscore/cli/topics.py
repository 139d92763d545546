"""``botscore topics``: the pipeline's topics as planned (``transport.topic_plan``).

Creates the missing ones, brings the planned configs (retention, ``min.insync.replicas``)
of existing ones back to the plan, and reports partitions and replicas that differ, which
it leaves to an operator.
"""

from __future__ import annotations

import argparse
import sys

from botscore.cli.command import Subparsers
from botscore.settings import Settings
from botscore.transport.topic_plan import apply_topic_plans, topic_plans
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "topics", help="create the pipeline's topics if missing and keep their configs as planned"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def run(settings: Settings, args: argparse.Namespace) -> int:
    plans = topic_plans(settings)
    created, changes, drift = apply_topic_plans(settings)
    made = f"{created}, {_replicas(settings)}" if created else "none"
    print(f"topics ready: {', '.join(p.name for p in plans)}; created: {made}")
    kept = ", ".join(f"{p.name} {int(p.configs['retention.ms']) // 3_600_000} h" for p in plans)
    print(f"retention: {kept}")
    for change in changes:
        was = "the broker's default" if change.was is None else change.was
        print(f"changed {change.topic} {change.key}: {was} -> {change.now}")
    for line in drift:
        print(f"botscore: WARNING: {line}", file=sys.stderr)
    return 0


def _replicas(settings: Settings) -> str:
    k = settings.kafka
    in_sync = k.min_insync_replicas or "the broker's default"
    return f"{k.replication_factor} replica(s) each, min.insync.replicas {in_sync}"
