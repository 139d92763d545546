"""``botscore enforce``: turn threat scores into the edge's decisions in Redis, until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from botscore.cli.command import Subparsers, service_logs, stop_on_signals
from botscore.enforcement.consumer import run_enforcer
from botscore.settings import Settings
from botscore.vocabulary import Component, Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "enforce", help="turn threat scores into the edge's decisions in Redis, until Ctrl-C"
    )
    parser.set_defaults(run=run, role=Role.ENFORCER)


def run(settings: Settings, args: argparse.Namespace) -> int:
    service_logs(Component.ENFORCER)
    stop = threading.Event()
    stop_on_signals(stop)
    run_enforcer(settings, stop)
    return 0
