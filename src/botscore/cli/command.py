"""What every ``botscore`` subcommand module provides, so ``main`` can assemble them.

A command module has ``add_parser(subparsers)``, which registers the command with its
arguments and sets ``run`` as its handler, and ``run(settings, args) -> int``, the exit
status. Commands print; the library functions they call return values.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol, TypeAlias

from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings
from botscore.vocabulary import Component

__all__ = [
    "Command",
    "Handler",
    "Subparsers",
    "at_least_one",
    "instant_ms",
    "not_negative",
    "port",
    "seconds",
    "service_logs",
    "sigterm_as_ctrl_c",
    "stop_on_signals",
]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[Settings, argparse.Namespace], int]


class Command(Protocol):
    """A subcommand module."""

    def add_parser(self, subparsers: Subparsers) -> None: ...

    def run(self, settings: Settings, args: argparse.Namespace) -> int: ...


# Argument types: argparse turns their ``ArgumentTypeError`` into a usage error naming the
# option, so a bad number never gets as far as a traceback or a loop that spins.


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def at_least_one(text: str) -> int:
    """A count: 1 or more."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def not_negative(text: str) -> int:
    """A whole number, 0 or more (0 often meaning "none" or "no limit")."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def port(text: str) -> int:
    """A TCP or UDP port."""
    value = _whole(text)
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {value}")
    return value


def seconds(text: str) -> float:
    """A duration: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, not {text}")
    return value


# The last millisecond a datetime can name (the end of the year 9999, UTC).
_LAST_MS = 253_402_300_799_999


def instant_ms(text: str) -> int:
    """A moment: ISO 8601 (``2026-12-04T10:00``, UTC unless it names an offset) or
    milliseconds since the epoch; returned as milliseconds since the epoch."""
    if text.isascii() and text.isdigit():
        if len(text) > len(str(_LAST_MS)) or int(text) > _LAST_MS:
            raise argparse.ArgumentTypeError(
                f"{text} is past the year 9999 as milliseconds since the epoch: microseconds "
                "or nanoseconds? Give milliseconds or an ISO 8601 time"
            )
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO 8601 time (2026-12-04T10:00) or milliseconds since the epoch, "
            f"not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ms = round(moment.timestamp() * 1000)
    except (OverflowError, ValueError):  # an offset that moves year 1 or 9999 out of range
        ms = -1
    if not 0 <= ms <= _LAST_MS:
        # Kafka's times start at the epoch; before it, no offset can be looked up by time.
        raise argparse.ArgumentTypeError(f"{text} is not between 1970 and the year 9999")
    return ms


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


def service_logs(component: Component) -> None:
    """A long-running command's log: timestamped lines on stderr, tagged with its component."""
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    tag_logs(handler, [f"component:{component}"])
    # (a no-op where logging is already set up, as under pytest)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # The client's own connection chatter; its warnings and errors still show.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop``, for the service to finish its work and return; a
    second one gives up on a clean stop (``KeyboardInterrupt``)."""

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        logging.getLogger(__name__).info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
