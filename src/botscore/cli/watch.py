"""``botscore watch``: print threat scores as they arrive, one line per score."""

from __future__ import annotations

import argparse
import sys

from kafka import KafkaConsumer

from botscore.cli.command import Subparsers, not_negative
from botscore.errors import InvalidMessage
from botscore.settings import Settings
from botscore.transport.kafka_clients import connection_config
from botscore.transport.topic_reader import StartAt, assign_topic
from botscore.vocabulary import Role
from botscore.wire.codec import decode_threat_score
from botscore.wire.records import ScoreRecord

__all__ = ["add_parser", "describe_score", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "watch", help="print threat scores as they arrive, one line per user"
    )
    parser.add_argument(
        "--from-beginning", action="store_true", help="also show scores already on the topic"
    )
    parser.add_argument(
        "--max", type=not_negative, default=0, help="stop after this many scores (0 = never)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def describe_score(score: ScoreRecord) -> str:
    latency_ms = score.scored_time_ms - score.feature_time_ms
    return (
        f"{score.user_id:<22} score={score.score:.3f} {score.decision:<9} "
        f"model={score.model_name}/{score.model_version} "
        f"from={score.source.partition}@{score.source.offset} "
        f"feature->score={latency_ms}ms"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    topic = settings.kafka.scores_topic
    consumer = KafkaConsumer(**connection_config(settings.kafka), enable_auto_commit=False)
    try:
        start = StartAt.BEGINNING if args.from_beginning else StartAt.END
        assign_topic(consumer, topic, start=start)
        print(f"watching {topic} (Ctrl-C to stop)", file=sys.stderr)
        shown = 0
        for message in consumer:
            try:
                score = decode_threat_score(message.value)
            except InvalidMessage as exc:
                print(f"! undecodable score at {message.partition}@{message.offset}: {exc}")
                continue
            print(describe_score(score), flush=True)
            shown += 1
            if args.max and shown >= args.max:
                return 0
    finally:
        consumer.close()
    return 0
