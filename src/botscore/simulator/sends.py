"""The simulator's WebLogs on their way to Kafka: each kept until Kafka confirms it.

No WebLog is lost when the broker is away: kafka-python gives a record up after its delivery
timeout, and whatever Kafka did not confirm is sent again, with the log shipper's backoff and
log lines (``transport.delivery.SendRetries``), until it is confirmed. A send Kafka gave up
rarely landed (one the broker wrote just before it went): its copy counts once, as the
feature stage drops a request id still among the user's ``RECENT_REQUESTS`` latest
(``aggregation.redis_state``), and twice only if the user made that many newer requests
before the copy came (a scraper can, in a delivery timeout).

Memory stays bounded: while a WebLog Kafka failed waits, or ``max_unconfirmed`` are out,
``holding`` says to make no new request (``run`` stops simulated time meanwhile).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress

from kafka import KafkaProducer
from kafka.errors import KafkaError

from botscore.simulator.stats import SimulationStats
from botscore.transport.delivery import SendRetries

__all__ = ["MAX_UNCONFIRMED", "WebLogSends"]

log = logging.getLogger(__name__)

# WebLogs out at most, each kept here (about half a kB) and in the producer's buffer (well
# within its 32 MB): 25 s of 2,000 requests/s (100/s at 20x), far more than a live broker
# leaves unconfirmed.
MAX_UNCONFIRMED = 50_000


class WebLogSends:
    """Sends WebLogs to ``topic`` and counts those Kafka confirmed in ``stats.confirmed``;
    ``max_unconfirmed`` is normally ``MAX_UNCONFIRMED``.

    Kafka's answers come on the producer's I/O thread; they are only queued there and taken
    by ``update`` on the caller's, which does all the rest.
    """

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        stats: SimulationStats,
        max_unconfirmed: int,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._stats = stats
        self._max_unconfirmed = max_unconfirmed
        self._retries = SendRetries(log)
        self._unconfirmed: dict[int, tuple[bytes, bytes]] = {}  # number -> (key, value)
        self._numbered = 0
        self._answers: deque[tuple[int, BaseException | None]] = deque()
        self._failed: list[int] = []  # waiting for their resend
        self._retrying: set[int] = set()  # failed at least once, not confirmed since
        self._resend_at: float | None = None
        self.last_error: BaseException | None = None

    def send(self, key: bytes, value: bytes) -> None:
        number = self._numbered
        self._numbered += 1
        self._unconfirmed[number] = (key, value)
        self._produce(number)

    def _produce(self, number: int) -> bool:
        """Hand WebLog ``number`` to the producer; False if it refused it at once."""
        key, value = self._unconfirmed[number]
        try:
            future = self._producer.send(self._topic, key=key, value=value)
        except KafkaError as exc:  # no metadata, or a full buffer, for max_block_ms
            self._answers.append((number, exc))
            return False
        future.add_callback(lambda _: self._answers.append((number, None)))
        future.add_errback(lambda exc: self._answers.append((number, exc)))
        return True

    @property
    def holding(self) -> bool:
        """No new request now: a WebLog Kafka failed is still unconfirmed, or too many are."""
        return bool(self._retrying) or len(self._unconfirmed) >= self._max_unconfirmed

    @property
    def resending(self) -> int:
        """WebLogs Kafka did not confirm, not confirmed since."""
        return len(self._retrying)

    def update(self, now: float) -> None:
        """Take Kafka's answers; send what it failed again once its backoff is over."""
        while self._answers:
            number, error = self._answers.popleft()
            if error is None:
                del self._unconfirmed[number]
                self._retrying.discard(number)
                self._stats.confirmed += 1
            else:
                self._failed.append(number)
                self._retrying.add(number)
                self.last_error = error
        if self._resend_at is not None and now >= self._resend_at:
            failed, self._failed, self._resend_at = self._failed, [], None
            for i, number in enumerate(failed):
                if not self._produce(number):
                    # Each refusal blocks max_block_ms: the rest wait for the next attempt.
                    self._failed.extend(failed[i + 1 :])
                    break
        if self._failed and self._resend_at is None and self.last_error is not None:
            what = f"a batch of {len(self._failed)} WebLogs"
            self._resend_at = now + self._retries.failed(what, self.last_error)
        if not self._retrying:
            self._retries.confirmed()

    def finish(
        self, wait_s: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> int:
        """Wait up to ``wait_s`` for Kafka to confirm every WebLog, sending again what it
        fails meanwhile; return how many it never confirmed."""
        deadline = clock() + wait_s
        while True:
            now = clock()
            self.update(now)
            if not self._unconfirmed or now >= deadline:
                return len(self._unconfirmed)
            if self._resend_at is not None:
                sleep(min(self._resend_at, deadline) - now)
                continue
            # Not all answered by the deadline (KafkaTimeoutError): counted on the next turn.
            with suppress(KafkaError):
                self._producer.flush(timeout=deadline - now)
