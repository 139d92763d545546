"""One line for a message a library repeats, not one per retry.

kafka-python logs the same error on every metadata refresh, about ten times a second, for
as long as a subscribed topic is missing; a component's log would hold nothing else. A
``RepeatsFilter`` on a logger lets the first of equal records (same logger, level, message
and arguments) through, drops the copies for ``window_s``, and lets the next one after
the window through saying how many were dropped, so the condition still shows once a
minute and its end is seen by the lines stopping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["REPEAT_WINDOW_S", "RepeatBudget", "RepeatsFilter", "quiet_repeats"]

REPEAT_WINDOW_S = 60.0
# Distinct messages remembered: bounded, so a library that varies its arguments cannot
# grow the filter; the oldest are forgotten first.
_REMEMBERED = 1000


class RepeatBudget:
    """At most one line per key and ``window_s``: ``due(key)`` says whether to log it now,
    and how many lines of that key were held back since the last one."""

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        # key -> (when its last line was let through, lines held back since)
        self.seen: dict[Hashable, tuple[float, int]] = {}

    def due(self, key: Hashable) -> int | None:
        """None: hold this line back; else log it, saying the count returned if not 0."""
        now = self.clock()
        shown = self.seen.get(key)
        if shown is not None and now - shown[0] < self.window_s:
            self.seen[key] = (shown[0], shown[1] + 1)
            return None
        self.seen.pop(key, None)
        if len(self.seen) >= _REMEMBERED:
            del self.seen[next(iter(self.seen))]
        self.seen[key] = (now, 0)
        return 0 if shown is None else shown[1]

    def held_note(self, held: int) -> str:
        """What a line let through adds about the lines held back before it."""
        return f" (and {held} more like it since the last such line)" if held else ""


class RepeatsFilter(logging.Filter):
    """Passes the first of equal records per ``window_s``, the next with the count dropped."""

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.budget = RepeatBudget(window_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._key(record)
        previous = self.budget.seen.get(key)
        held = self.budget.due(key)
        if held is None:
            return False
        if held and previous is not None:
            since = self.budget.clock() - previous[0]
            record.msg = (
                f"{record.getMessage()} (and {held} more like it in the last {since:.0f} s)"
            )
            record.args = None
        return True

    @staticmethod
    def _key(record: logging.LogRecord) -> Hashable:
        args: Hashable
        try:
            hash(record.args)
            args = record.args
        except TypeError:  # unhashable arguments: compare the text instead
            args = record.getMessage()
        return (record.name, record.levelno, str(record.msg), args)


def quiet_repeats(package: str, window_s: float = REPEAT_WINDOW_S) -> None:
    """Put a ``RepeatsFilter`` on ``package``'s logger and every one below it created so far
    (a logger's filter sees its own records only; libraries create theirs on import).
    Idempotent."""
    manager = logging.Logger.manager
    names = [n for n in manager.loggerDict if n == package or n.startswith(package + ".")]
    for name in {package, *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatsFilter) for f in logger.filters):
            logger.addFilter(RepeatsFilter(window_s))
