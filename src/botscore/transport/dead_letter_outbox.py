"""The dead-letter outbox: sends dead letters and says which ones Kafka has confirmed.

The rule, kept here and nowhere else: **an offset is finished only once its dead letter is
on Kafka.** A message set aside must be readable from the dead-letter topic before its
offset is committed, or a crash after the commit would lose it. The outbox enforces this
by handing back a letter's ``token`` (whatever its caller needs to finish the offset: a
tuple id, a reserved offset, or nothing) only after Kafka acknowledged that letter:

* ``confirmed()`` returns the tokens of letters confirmed since the last call; a caller
  finishes an offset with such a token and never on its own;
* ``flush_and_confirm()`` returns only when no letter is left unconfirmed, and raises
  ``SendNotConfirmed`` otherwise, for a caller that commits whole batches.

A letter whose send fails (``producer.send`` raises, or Kafka reports an error later) is
resent after a growing backoff, and never given up: dropping it would lose the message,
and its offset could not move on without it anyway. Kafka's callbacks run on the
producer's I/O thread and only append to deques; everything else, logging included, runs
on the caller's thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaError

from botscore.errors import SendNotConfirmed
from botscore.transport.delivery import Backoff
from botscore.wire.dead_letters import DeadLetterRecord, encode_dead_letter

__all__ = ["DeadLetterOutbox"]

T = TypeVar("T")

_log = logging.getLogger(__name__)


@dataclass
class _Letter(Generic[T]):
    record: DeadLetterRecord
    token: T
    failures: int = 0


class DeadLetterOutbox(Generic[T]):
    """Dead letters on their way to ``topic``; see the module docstring for the rule.

    Not thread-safe itself: one thread calls its methods, while the producer's I/O thread
    reports outcomes through thread-safe deques.
    """

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        backoff: Backoff,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.backoff = backoff
        self.logger = logger or _log
        self.clock = clock
        # Appended by the producer's I/O thread, drained by the caller's.
        self._written: deque[_Letter[T]] = deque()
        self._failed: deque[tuple[_Letter[T], BaseException]] = deque()
        # The caller's thread only.
        self._unconfirmed = 0
        self._ready: list[T] = []
        self._resends: list[tuple[float, int, _Letter[T]]] = []  # heap of (due, seq, letter)
        self._seq = itertools.count()  # orders letters due at the same time

    @property
    def pending(self) -> int:
        """Letters added whose arrival Kafka has not confirmed yet (sent or awaiting resend)."""
        self._collect()
        return self._unconfirmed

    def add(self, letter: DeadLetterRecord, token: T) -> None:
        """Send ``letter``; ``token`` comes back from ``confirmed()`` once Kafka has it."""
        self._unconfirmed += 1
        self._send(_Letter(letter, token))

    def confirmed(self) -> list[T]:
        """Tokens of the letters Kafka confirmed since the last call; resend failed ones due."""
        self._collect()
        self._resend_due()
        ready, self._ready = self._ready, []
        return ready

    def flush_and_confirm(self, timeout_s: float) -> list[T]:
        """Wait up to ``timeout_s`` for every letter; their tokens, or ``SendNotConfirmed``.

        On ``SendNotConfirmed`` the tokens confirmed so far stay for a later call, and the
        failed letters are resent by a later call once their backoff has elapsed.
        """
        if self.pending:
            self._resend_due()
            # A failed flush is not the verdict: the letters' own outcomes are.
            with contextlib.suppress(KafkaError):
                self.producer.flush(timeout=timeout_s)
        if self.pending:
            raise SendNotConfirmed(f"{self._unconfirmed} dead letters not yet confirmed by Kafka")
        return self.confirmed()

    def _send(self, letter: _Letter[T]) -> None:
        record = letter.record
        try:
            future = self.producer.send(
                self.topic, key=record.original_key or None, value=encode_dead_letter(record)
            )
        except KafkaError as exc:
            self._failed.append((letter, exc))
            return
        future.add_callback(self._on_written, letter)
        future.add_errback(self._on_failed, letter)

    def _on_written(self, letter: _Letter[T], _metadata: Any) -> None:
        self._written.append(letter)

    def _on_failed(self, letter: _Letter[T], exc: BaseException) -> None:
        self._failed.append((letter, exc))

    def _collect(self) -> None:
        """Take in what Kafka reported: confirmed letters' tokens, failed letters' resends."""
        while self._written:
            self._ready.append(self._written.popleft().token)
            self._unconfirmed -= 1
        now = self.clock()
        while self._failed:
            letter, exc = self._failed.popleft()
            letter.failures += 1
            delay = self.backoff.delay(letter.failures)
            self.logger.warning(
                "dead letter for %s not sent, retrying in %.1f s: %s",
                letter.record.source,
                delay,
                exc,
            )
            heapq.heappush(self._resends, (now + delay, next(self._seq), letter))

    def _resend_due(self) -> None:
        now = self.clock()
        due: list[_Letter[T]] = []
        while self._resends and self._resends[0][0] <= now:
            due.append(heapq.heappop(self._resends)[2])
        for letter in due:
            self._send(letter)
