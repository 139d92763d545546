"""Log lines that carry the tags their component's metrics carry.

Operators look for a component's log lines by the same ``component``, ``topology``,
``task``, ``model`` and ``env`` they graph its metrics by, so every line ends with them as
``key=value`` pairs (which a Datadog log pipeline's key-value parser turns into attributes).
Storm components log through Storm (stdout is their multilang channel), tools to stderr.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

__all__ = ["TagsFilter", "tag_logs"]


class TagsFilter(logging.Filter):
    """Appends `` | key=value ...`` to each record's message, once per record."""

    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        env = os.environ.get("DD_ENV")  # the tag the DogStatsD client adds to metrics
        pairs = [t.replace(":", "=", 1) for t in (*tags, *([f"env:{env}"] if env else []))]
        self.suffix = " | " + " ".join(pairs)

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "botscore_tagged", False):
            # Formatted here, so an argument containing "%" cannot break the format.
            record.msg = record.getMessage() + self.suffix
            record.args = None
            record.botscore_tagged = True
        return True


def tag_logs(target: logging.Logger | logging.Handler, tags: Sequence[str]) -> None:
    """Tag what ``target`` logs (a logger: its own records; a handler: all it writes),
    replacing the tags it had (a classifier's model changes)."""
    for old in [f for f in target.filters if isinstance(f, TagsFilter)]:
        target.removeFilter(old)
    target.addFilter(TagsFilter(tags))
