"""What every ``botscore`` subcommand module provides, so ``main`` can assemble them.

A command module has ``add_parser(subparsers)``, which registers the command with its
arguments and sets ``run`` as its handler, and ``run(settings, args) -> int``, the exit
status. Commands print; the library functions they call return values.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol, TypeAlias

from botscore.settings import Settings

__all__ = ["Command", "Handler", "Subparsers", "sigterm_as_ctrl_c"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[Settings, argparse.Namespace], int]


class Command(Protocol):
    """A subcommand module."""

    def add_parser(self, subparsers: Subparsers) -> None: ...

    def run(self, settings: Settings, args: argparse.Namespace) -> int: ...


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` meanwhile: a command stopped by its parent
    (`make run` stops its processes so) finishes as it would after Ctrl-C.

    After the first, SIGTERM is ignored for good: `make run`'s clean-up sends a second one,
    which used to kill the simulator before it printed its figures.
    """
    received = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if not received:
            signal.signal(signal.SIGTERM, previous)
