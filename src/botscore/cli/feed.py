"""``botscore feed``: sample UserFeatures onto the features topic, once or until Ctrl-C."""

from __future__ import annotations

import argparse
import math
import sys

from botscore.cli.command import Subparsers, at_least_one, not_negative
from botscore.settings import Settings
from botscore.transport.kafka_clients import create_producer
from botscore.transport.sample_feed import feed_sample_users
from botscore.vocabulary import Component, Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("feed", help="produce sample UserFeatures messages")
    parser.add_argument(
        "--users", type=at_least_one, default=1000, help="how many messages (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=not_negative, default=1, help="seed of the sample population"
    )
    parser.add_argument(
        "--rate", type=_rate, default=0, help="messages per second, 0 = as fast as possible"
    )
    parser.add_argument(
        "--loop", action="store_true", help="start over with the next seed until Ctrl-C"
    )
    parser.set_defaults(run=run, role=Role.AGGREGATION)


def _rate(text: str) -> float:
    """Messages per second: 0 (as fast as possible) or from one a day (a wait of 1/rate must
    stay a time the clock can count) up."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if value != 0 and not 1 / 86_400 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or from 1/86400 up, not {text}")
    return value


def run(settings: Settings, args: argparse.Namespace) -> int:
    topic = settings.kafka.features_topic
    producer = create_producer(settings.kafka, client_id=f"botscore-{Component.FEED}")
    seed, sent = args.seed, 0
    try:
        while True:
            sent += feed_sample_users(producer, topic, args.users, seed, args.rate)
            print(f"fed {sent} users to {topic} (seed {seed})", file=sys.stderr)
            if not args.loop:
                return 0
            seed += 1
    finally:
        producer.close()
