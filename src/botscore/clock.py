"""Wall-clock time in the unit every message carries: milliseconds since the Unix epoch."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)
