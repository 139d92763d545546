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
    print(f"topics ready: {', '.join(topics)}; created: {created or 'none'}")
    return 0
