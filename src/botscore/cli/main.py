"""``botscore``: the parser assembled from the command modules, settings, and exit statuses.

Exit statuses: 0 done; 1 a command failed (one ``botscore: ...`` line on stderr says why);
2 the command line or the project's configuration cannot be used; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import redis
from kafka.errors import KafkaError

from botscore.cli import (
    access,
    backfill,
    datadog,
    dead_letters,
    edge,
    enforce,
    evaluate,
    feed,
    models,
    replay_log,
    simulate,
    storm,
    top,
    topics,
    train,
    watch,
)
from botscore.cli.command import Command, Handler
from botscore.errors import BotscoreError
from botscore.settings import Settings, load_project_settings

__all__ = [
    "COMMANDS",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

DESCRIPTION = (
    "The ``botscore`` command: tools around the topology (topics, access, sample feed, watch, "
    "train, evaluate, models, backfill, replay-log)."
)

COMMANDS: tuple[Command, ...] = (
    topics,
    access,
    feed,
    watch,
    simulate,
    enforce,
    edge,
    dead_letters,
    train,
    evaluate,
    models,
    backfill,
    replay_log,
    datadog,
    storm,
    top,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The global options, and each command's subparser with ``run`` as its handler."""
    parser = argparse.ArgumentParser(prog="botscore", description=DESCRIPTION)
    parser.add_argument(
        "--config", default="config.json", help="project config (default: %(default)s)"
    )
    parser.add_argument(
        "-e", "--environment", help="environment in config.json (default: the first)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in commands:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` asks for; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except BotscoreError as exc:
        return _fail(str(exc), EXIT_USAGE)
    run: Handler = args.run
    try:
        return run(settings, args)
    except BotscoreError as exc:
        return _fail(str(exc))
    except KafkaError as exc:
        return _fail(f"Kafka at {settings.kafka.bootstrap_servers}: {exc!r} (is it up? make up)")
    except redis.RedisError as exc:
        return _fail(
            f"Redis at {settings.redis.host}:{settings.redis.port}: {exc} (is it up? make up)"
        )
    except OSError as exc:  # a report's file that cannot be written, a disk full, ...
        return _fail(str(exc))


def _settings(args: argparse.Namespace) -> Settings:
    if not getattr(args, "needs_settings", True):
        return Settings()
    # Every command that reads settings acts as one role (tests/unit/cli check each has one).
    return load_project_settings(args.config, args.environment, role=args.role)


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"botscore: {line}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
