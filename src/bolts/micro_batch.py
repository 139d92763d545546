"""Bolt base for work done per micro-batch of tuples (a Redis round trip).

A batch closes at ``batch_size`` tuples or ``max_batch_wait_ms`` after its first tuple,
whichever comes first; a small thread closes batches by age because Storm only calls
``process`` when a tuple arrives. ``handle_batch`` runs under a lock, one batch at a time,
and must ack or fail every tuple it is given: these bolts never auto-ack.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from streamparse import Bolt, Tuple

from botscore.transport.batching import MicroBatcher

T = TypeVar("T")


# streamparse ships no types: its Bolt is Any to mypy.
class MicroBatchBolt(Bolt, Generic[T]):  # type: ignore[misc]
    auto_ack = False
    auto_anchor = False
    auto_fail = False

    def start_batching(self, batch_size: int, max_batch_wait_ms: int) -> None:
        """Call at the end of ``initialize``."""
        self.batcher: MicroBatcher[tuple[Tuple, T]] = MicroBatcher(
            batch_size, max_batch_wait_ms / 1000
        )
        self.lock = threading.Lock()
        self._timer_stop = threading.Event()
        threading.Thread(target=self._close_aged_batches, name="batch-timer", daemon=True).start()

    def stop_batching(self) -> None:
        """End the timer thread (a worker simply exits; tests stop it)."""
        self._timer_stop.set()

    def to_item(self, tup: Tuple) -> T:
        """What ``handle_batch`` gets beside each tuple (usually a decoded record)."""
        raise NotImplementedError

    def handle_batch(self, batch: list[tuple[Tuple, T]]) -> None:
        raise NotImplementedError

    def process(self, tup: Tuple) -> None:
        item = self.to_item(tup)
        with self.lock:
            batch = self.batcher.add((tup, item), time.monotonic())
            if batch:
                self.handle_batch(batch)

    def _close_aged_batches(self) -> None:
        idle_wait = self.batcher.max_wait_s
        while True:
            try:
                wait = self._close_aged_batch()
            except Exception:
                # Without this thread batches close only when full, so it outlives any
                # one batch. Which tuples of that batch were finished is unknown, and a
                # tuple must not be acked or failed twice: Storm's message timeout
                # replays the rest.
                self.logger.exception("closing a batch by age failed; the timer goes on")
                wait = None
            if self._timer_stop.wait(idle_wait if wait is None else max(wait, 0.001)):
                return

    def _close_aged_batch(self) -> float | None:
        """Hand a batch that has waited long enough to ``handle_batch``; the next wait."""
        with self.lock:
            now = time.monotonic()
            batch = self.batcher.due(now)
            if batch:
                self.handle_batch(batch)
            return self.batcher.seconds_until_due(now)
