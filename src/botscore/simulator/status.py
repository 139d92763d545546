"""The simulator's live status line: what the edge is doing to bots and humans.

On a terminal the line is rewritten in place about once a second; in a log (not a TTY)
a plain line is written only every ``plain_interval_s``, so an hour-long run stays short.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from botscore.simulator.stats import SimulationStats

__all__ = ["StatusLine", "status_text"]


def status_text(
    stats: SimulationStats,
    sim_s: float,
    wall_rate: float,
    users_scored: int | None,
    resending: int = 0,
) -> str:
    """One line, most important first (a narrow terminal cuts the end).

    ``wall_rate`` counts every request the edge received, blocked ones included;
    ``users_scored`` None means no edge to ask (shown as ``-``). ``sent`` counts the
    WebLogs Kafka confirmed, not those on their way; ``resending`` those it did not confirm,
    to be sent again (shown only then: the run holds its requests meanwhile).
    """
    minutes, seconds = divmod(int(sim_s), 60)
    hours, minutes = divmod(minutes, 60)
    scored = "-" if users_scored is None else f"{users_scored:,}"
    bots = stats.bots
    return (
        f"{hours}:{minutes:02d}:{seconds:02d}  {wall_rate:,.0f} req/s  scored {scored}  "
        f"bots blocked {len(stats.bots_blocked):,}  "
        f"bot req blocked {bots.blocked:,} allowed {bots.allowed:,}  "
        f"humans challenged {len(stats.humans_challenged):,} ({stats.humans.challenged:,} req)  "
        f"sent {stats.confirmed:,}"
        + (f" ({resending:,} to send again, Kafka did not confirm them)" if resending else "")
    )


class StatusLine:
    def __init__(
        self,
        stream: TextIO,
        plain_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._plain_interval_s = plain_interval_s
        self._clock = clock
        self._next_plain = clock()
        self._last = ""
        self._written = ""

    def show(self, text: str) -> None:
        self._last = text
        if self.tty:
            # A line wider than the terminal wraps, and "\r" would then rewrite only its end.
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
            self.stream.flush()
        elif self._clock() >= self._next_plain:
            self._write_plain(text)
            self._next_plain = self._clock() + self._plain_interval_s

    def close(self) -> None:
        """End the line on a terminal; in a log, write the last state if it was skipped."""
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
        elif self._last != self._written:
            self._write_plain(self._last)

    def _write_plain(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._written = text
