"""``botscore dead-letters list|replay``: show set-aside messages, or send them back.

The reading, filtering and replaying is ``botscore.transport.dead_letter_replay``; this
module prints what it returns. ``replay`` exits 1 with one line when Kafka did not confirm
every letter it sent (running it again retries from the first such letter).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import closing

from botscore.cli.command import Subparsers
from botscore.settings import Settings
from botscore.transport.dead_letter_replay import (
    ReplayResult,
    Truncated,
    Undecodable,
    list_dead_letters,
    replay_dead_letters,
)
from botscore.vocabulary import DeadLetterReason, Role
from botscore.wire.dead_letters import DeadLetterRecord

__all__ = ["add_parser", "describe_letter", "describe_truncated", "describe_undecodable", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("dead-letters", help="list or replay dead-lettered messages")
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument(
        "--reason",
        choices=[str(reason) for reason in DeadLetterReason],
        metavar="REASON",
        help="only letters with this reason (one of the dead-letter reasons in the README)",
    )
    parser.add_argument(
        "--to", help="replay every letter into this topic (default: each letter's source topic)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def describe_letter(letter: DeadLetterRecord) -> str:
    s = letter.source
    return (
        f"{letter.reason:<26} from={s.topic}/{s.partition}/{s.offset} by={letter.component} "
        f"bytes={len(letter.original_value)} {letter.detail}"
    )


def describe_undecodable(entry: Undecodable) -> str:
    return f"! not a dead letter at {entry.partition}@{entry.offset}: {entry.error}"


def describe_truncated(entry: Truncated) -> str:
    s = entry.source
    return (
        f"! truncated dead letter at {entry.partition}@{entry.offset} "
        f"(from {s.topic}/{s.partition}/{s.offset}) not replayed: "
        "it holds only a prefix of the original"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(settings, args.reason)
    return _replay(settings, args.reason, args.to)


def _list(settings: Settings, reason: str | None) -> int:
    shown = 0
    with closing(list_dead_letters(settings.kafka, reason)) as entries:
        for entry in entries:
            if isinstance(entry, Undecodable):
                print(describe_undecodable(entry))
            else:
                print(describe_letter(entry))
                shown += 1
    print(f"{shown} dead letters", file=sys.stderr)
    return 0


def _replay(settings: Settings, reason: str | None, to_topic: str | None) -> int:
    result = replay_dead_letters(settings.kafka, reason, to_topic)
    for entry in result.undecodable:
        print(describe_undecodable(entry))
    for truncated in result.truncated:
        print(describe_truncated(truncated))
    if not result.complete:
        print(_incomplete(result), file=sys.stderr)
        return 1
    print(f"replayed {result.replayed} dead letters into {_where(result)}", file=sys.stderr)
    return 0


def _where(result: ReplayResult) -> str:
    if result.target is not None:
        return result.target
    counts = ", ".join(f"{topic}: {n}" for topic, n in result.topics)
    return f"their source topics ({counts})" if counts else "their source topics"


def _incomplete(result: ReplayResult) -> str:
    return (
        f"replay incomplete: {result.failed} dead letters not confirmed by Kafka "
        f"(first: {result.first_error}), {result.held_back} held back behind them, "
        f"{result.replayed} replayed into {_where(result)}; offsets are committed only "
        "up to the first failure in each partition, so running it again resumes there"
    )
