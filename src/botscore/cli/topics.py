"""``botscore topics``: create the pipeline's topics if they are missing."""

from __future__ import annotations

import argparse

from botscore.cli.command import Subparsers
from botscore.settings import Settings
from botscore.transport.kafka_clients import ensure_topics

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("topics", help="create the pipeline's topics if missing")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    k = settings.kafka
    topics = [
        settings.aggregation.web_logs_topic,
        k.features_topic,
        k.scores_topic,
        k.shadow_scores_topic,
        k.dead_letter_topic,
    ]
    created = ensure_topics(k, topics)
    made = f"{created}, {_replicas(settings)}" if created else "none"
    print(f"topics ready: {', '.join(topics)}; created: {made}")
    return 0


def _replicas(settings: Settings) -> str:
    k = settings.kafka
    in_sync = k.min_insync_replicas or "the broker's default"
    return f"{k.replication_factor} replica(s) each, min.insync.replicas {in_sync}"
