"""``botscore enforce``: turn threat scores into the edge's decisions in Redis, until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from botscore.cli.command import Subparsers
from botscore.enforcement.consumer import run_enforcer
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings
from botscore.vocabulary import Component

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "enforce", help="turn threat scores into the edge's decisions in Redis, until Ctrl-C"
    )
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    tag_logs(handler, [f"component:{Component.ENFORCER}"])
    # (a no-op where logging is already set up, as under pytest)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # The client's own connection chatter; its warnings and errors still show.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on a clean stop
            raise KeyboardInterrupt
        logging.getLogger(__name__).info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    run_enforcer(settings, stop)
    return 0
