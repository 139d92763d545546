"""An idempotent kafka-python producer that gets a new producer id when it needs one.

Idempotence lets the broker drop a batch the producer sends again after a request timed out
(a stalled broker that wrote it but answered late): without it, that retry writes every
record of the batch twice. Two failures leave the producer's sequence numbers out of step
with the broker's, and Java's producer answers both with a new id (or epoch):

- a batch that expires after it was sent: the producer cannot know which sequence numbers
  the broker has. kafka-python 3.0.12 drops its id but stays "ready", and its sender asks
  for an id only when uninitialised: it waits for an id it never asks for, and sends
  nothing again.
- a batch the broker refuses for good (a record over the topic's ``max.message.bytes``, a
  topic the producer may not write, a record the broker finds invalid): its sequence
  numbers were used but never written. kafka-python 3.0.12 puts the whole producer in its
  fatal state instead, so every later send fails with that batch's error.

``recover_producer_ids`` makes a reset go back to uninitialised, so the sender's next loop
asks for a new id, and makes a refused batch reset the id rather than end the producer: the
refused send fails alone, and sending goes on.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.producer.transaction_manager import TransactionManager, TransactionState

__all__ = ["recover_producer_ids"]


def recover_producer_ids(producer: KafkaProducer) -> None:
    """Make ``producer`` (idempotent, not transactional) get a new id instead of stopping."""
    # No public API reaches the producer's id state; a kafka-python without it (another
    # version: the pin and tests/integration/test_producer_ids.py say which) is left alone.
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or manager.is_transactional():
        return
    reset = manager.reset_producer_id
    classify = manager.classify_batch_error

    def reset_and_ask_again() -> None:
        with manager._lock:
            reset()
            manager._current_state = TransactionState.UNINITIALIZED

    def reset_rather_than_end(error: Any, batch: Any, log_start_offset: int = -1) -> str:
        outcome: str = classify(error, batch, log_start_offset=log_start_offset)
        error_type = error if isinstance(error, type) else type(error)
        # Fatal for good only where kafka-python says so (authorisation of the producer
        # itself, fencing); any other refused batch ends only itself.
        if (
            outcome == TransactionManager.ERROR_CLASS_FATAL
            and error_type not in TransactionManager._FATAL_ERRORS
        ):
            outcome = TransactionManager.ERROR_CLASS_NEEDS_PRODUCER_ID_RESET
        return outcome

    manager.reset_producer_id = reset_and_ask_again
    manager.classify_batch_error = reset_rather_than_end
