"""What every ``botscore`` subcommand module provides, so ``main`` can assemble them.

A command module has ``add_parser(subparsers)``, which registers the command with its
arguments and sets ``run`` as its handler, and ``run(settings, args) -> int``, the exit
status. Commands print; the library functions they call return values.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol, TypeAlias

from botscore.settings import Settings

__all__ = ["Command", "Handler", "Subparsers"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[Settings, argparse.Namespace], int]


class Command(Protocol):
    """A subcommand module."""

    def add_parser(self, subparsers: Subparsers) -> None: ...

    def run(self, settings: Settings, args: argparse.Namespace) -> int: ...
