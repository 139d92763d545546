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

Every letter fits: one larger than the producer's ``max_request_size`` allows is cut to
fit first (``fit_dead_letter``: a prefix of the original, and its size and SHA-256 in the
detail). A letter whose send fails for any other reason (``producer.send`` raises, or
Kafka reports it later) is resent after a growing backoff, without end: dropping it would
lose the message, and the failure passes (a broker restart, a leader election, a fixed ACL).

**The one exception to the rule:** a letter that Kafka refuses for the record itself
(``MessageSizeTooLargeError`` from a topic with a smaller limit, an invalid or corrupt
record) would fail the same way forever, and its offset, held back, would stop its
partition's commits and then all reading. Other errors, a missing ACL included, are an
operator's to fix and are retried like any other. Such a letter is logged once (with its
source and the error), counted in ``abandoned``, and its token is handed back as if
confirmed: the message is lost from the dead-letter topic, but the log line names it.

Kafka's callbacks run on the producer's I/O thread and only append to deques; everything
else, logging included, runs on the caller's thread.
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
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from botscore.errors import ConfigError, SendNotConfirmed
from botscore.transport.delivery import Backoff
from botscore.wire.dead_letters import (
    MIN_LETTER_BYTES,
    DeadLetterRecord,
    encode_dead_letter,
    fit_dead_letter,
    letter_size,
)
from botscore.wire.records import SourceRef

__all__ = ["DEFAULT_MAX_REQUEST_SIZE", "LETTER_MARGIN_BYTES", "DeadLetterOutbox", "letter_limit"]

# kafka-python's default ``max_request_size``, which ``create_producer`` keeps.
DEFAULT_MAX_REQUEST_SIZE = 1_048_576

# The producer checks key + value plus its batch and record headers (under 100 bytes)
# against max_request_size, and the broker's default message.max.bytes is 1 MiB + 12;
# 16 KiB below the producer's limit clears both with room for record headers, and cuts a
# diagnostic copy by too little to matter.
LETTER_MARGIN_BYTES = 16 * 1024

T = TypeVar("T")

_log = logging.getLogger(__name__)

# Errors about the record itself: sending the same bytes again can only fail again.
_NEVER_ACCEPTED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
)


def letter_limit(max_request_size: int) -> int:
    """The most bytes (key and value) a dead letter may take under ``max_request_size``."""
    return max_request_size - LETTER_MARGIN_BYTES


def _producer_max_request_size(producer: KafkaProducer) -> int:
    config = getattr(producer, "config", None)
    size = config.get("max_request_size") if isinstance(config, dict) else None
    return size if isinstance(size, int) else DEFAULT_MAX_REQUEST_SIZE


@dataclass
class _Letter(Generic[T]):
    """A letter on its way: what a send and its log lines need, already cut to fit."""

    token: T
    source: SourceRef
    reason: str
    key: bytes | None
    value: bytes  # the encoded letter
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
        max_request_size: int | None = None,
    ) -> None:
        """``max_request_size`` defaults to the producer's own (kafka-python's default
        when the producer does not say)."""
        self.producer = producer
        self.max_letter_bytes = letter_limit(
            max_request_size or _producer_max_request_size(producer)
        )
        if self.max_letter_bytes < MIN_LETTER_BYTES:
            raise ConfigError(
                f"producer max_request_size leaves {self.max_letter_bytes} bytes for a dead "
                f"letter, under the {MIN_LETTER_BYTES} it needs"
            )
        # Letters Kafka refused for good, whose tokens were handed back unsent.
        self.abandoned = 0
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
        """Send ``letter`` (cut to fit if needed); ``token`` comes back from
        ``confirmed()`` once Kafka has it, or once Kafka refused it for good."""
        fitted = fit_dead_letter(letter, self.max_letter_bytes)
        if fitted is not letter:
            self.logger.warning(
                "dead letter for %s is %d bytes, over the %d-byte limit: original truncated to %d "
                "of %d bytes",
                letter.source,
                letter_size(letter),
                self.max_letter_bytes,
                len(fitted.original_value),
                len(letter.original_value),
            )
        self._unconfirmed += 1
        self._send(
            _Letter(
                token,
                fitted.source,
                fitted.reason,
                fitted.original_key or None,
                encode_dead_letter(fitted),
            )
        )

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
        try:
            future = self.producer.send(self.topic, key=letter.key, value=letter.value)
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
            if isinstance(exc, _NEVER_ACCEPTED):
                self._abandon(letter, exc)
                continue
            letter.failures += 1
            delay = self.backoff.delay(letter.failures)
            self.logger.warning(
                "dead letter for %s not sent, retrying in %.1f s: %s",
                letter.source,
                delay,
                exc,
            )
            heapq.heappush(self._resends, (now + delay, next(self._seq), letter))

    def _abandon(self, letter: _Letter[T], exc: BaseException) -> None:
        """Give ``letter`` up: it can never be sent (see the module docstring)."""
        self.abandoned += 1
        self._unconfirmed -= 1
        self._ready.append(letter.token)
        self.logger.error(
            "dead letter for %s (reason %s, %d bytes) can never be sent, dropped: %s",
            letter.source,
            letter.reason,
            len(letter.value),
            exc,
        )

    def _resend_due(self) -> None:
        now = self.clock()
        due: list[_Letter[T]] = []
        while self._resends and self._resends[0][0] <= now:
            due.append(heapq.heappop(self._resends)[2])
        for letter in due:
            self._send(letter)
