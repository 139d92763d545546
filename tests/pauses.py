"""Stopping a process and letting it go on, over and over, as a sampling profiler (py-spy),
a debugger or a shell's job control does: each stop can cut a system call short."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable


def stop_and_continue(
    pid: int, times: int, done: Callable[[], bool] = lambda: False, stopped_s: float = 0.01
) -> int:
    """SIGSTOP ``pid``, SIGCONT it ``stopped_s`` later, run it 40 ms; ``times`` times, or
    until ``done()`` or the process is gone. How many times it was stopped."""
    stopped = 0
    while stopped < times and not done():
        try:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(stopped_s)
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            break
        stopped += 1
        time.sleep(0.04)
    return stopped
