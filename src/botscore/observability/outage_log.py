"""One log line when a dependency starts failing and one when it works again.

A bolt fails every tuple while Redis is away; a line per tuple would flood its log (tens of
thousands of lines for a minute's outage at full rate) and bury what came before it. An
``OutageLog`` lets the first failure through as a warning, keeps the later ones to a
count, and says when the dependency works again: how long it failed and how much waited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["OutageLog"]


class OutageLog:
    """One outage at a time on ``logger``: ``started`` is formatted with the first failure's
    item count and exception, ``ended`` with the seconds it lasted and the items failed."""

    def __init__(
        self,
        logger: logging.Logger,
        started: str,
        ended: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.started = started
        self.ended = ended
        self.clock = clock
        self.since: float | None = None  # when the current outage began
        self.items = 0  # items failed since

    def failed(self, items: int, exc: BaseException) -> None:
        if self.since is None:
            self.since = self.clock()
            self.logger.warning(self.started, items, exc)
        self.items += items

    def succeeded(self) -> None:
        if self.since is not None:
            self.logger.warning(self.ended, self.clock() - self.since, self.items)
            self.since, self.items = None, 0
