"""An idempotent kafka-python producer that asks for a new producer id after losing its own.

Idempotence lets the broker drop a batch the producer sends again after a request timed out
(a stalled broker that wrote it but answered late): without it, that retry writes every
record of the batch twice. A batch that expires after it was sent leaves the producer unsure
which sequence numbers the broker has, so the producer drops its id and must ask for a new
one (``InitProducerId``), as Java's producer does by returning to its uninitialised state.
kafka-python 3.0.12 drops the id but stays "ready", and its sender asks for an id only when
uninitialised: it waits for an id it never asks for, and sends nothing again.
``recover_producer_ids`` makes a producer's reset go back to uninitialised, so the sender's
next loop asks for a new id and sending goes on.
"""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.producer.transaction_manager import TransactionState

__all__ = ["recover_producer_ids"]


def recover_producer_ids(producer: KafkaProducer) -> None:
    """Make ``producer`` (idempotent, not transactional) ask for a new id after a reset."""
    # No public API reaches the producer's id state; a kafka-python without it (another
    # version: the pin and tests/integration/test_producer_ids.py say which) is left alone.
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or manager.is_transactional():
        return
    reset = manager.reset_producer_id

    def reset_and_ask_again() -> None:
        with manager._lock:
            reset()
            manager._current_state = TransactionState.UNINITIALIZED

    manager.reset_producer_id = reset_and_ask_again
