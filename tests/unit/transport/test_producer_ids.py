"""``recover_producer_ids`` on kafka-python's own transaction manager (no broker: the real
broker's stall is ``tests/integration/test_producer_ids.py``)."""

from __future__ import annotations

from types import SimpleNamespace

from kafka.errors import (
    ClusterAuthorizationFailedError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumberError,
    TopicAuthorizationFailedError,
    UnknownProducerIdError,
)
from kafka.producer.transaction_manager import (
    ProducerIdAndEpoch,
    TransactionManager,
    TransactionState,
)
from kafka.structs import TopicPartition

from botscore.transport.producer_ids import recover_producer_ids


def _ready_manager() -> TransactionManager:
    """An idempotent producer's manager that has its id, as after InitProducerId."""
    manager = TransactionManager()
    manager.init_producer_id()
    manager.set_producer_id_and_epoch(ProducerIdAndEpoch(7, 0))
    manager._transition_to(TransactionState.READY)
    return manager


def test_kafka_python_alone_never_asks_for_an_id_again():
    """What the recovery is for: reset, the manager stays ready and asks for nothing."""
    manager = _ready_manager()
    manager.reset_producer_id()
    manager.init_producer_id()  # what the sender calls on each loop without an id
    assert not manager.has_producer_id()
    assert manager._current_state == TransactionState.READY


def test_after_a_reset_the_sender_asks_for_a_new_id():
    manager = _ready_manager()
    recover_producer_ids(SimpleNamespace(_transaction_manager=manager))
    manager.reset_producer_id()
    assert not manager.has_producer_id()
    assert manager._current_state == TransactionState.UNINITIALIZED
    manager.init_producer_id()
    assert manager._current_state == TransactionState.INITIALIZING
    assert manager._pending_requests, "no InitProducerId request queued"


def test_kafka_python_alone_ends_the_producer_on_a_refused_batch():
    """What the recovery is for: one record over a topic's limit fails every later send."""
    manager = _ready_manager()
    outcome = manager.classify_batch_error(MessageSizeTooLargeError(), batch=None)
    assert outcome == TransactionManager.ERROR_CLASS_FATAL


def test_a_refused_batch_resets_the_id_and_nothing_else_changes():
    manager = _ready_manager()
    manager._api_version = (4, 1)  # epoch bumps, as the stack's broker supports
    recover_producer_ids(SimpleNamespace(_transaction_manager=manager))
    classify = manager.classify_batch_error
    reset = TransactionManager.ERROR_CLASS_NEEDS_PRODUCER_ID_RESET
    assert classify(MessageSizeTooLargeError(), None) == reset
    assert classify(TopicAuthorizationFailedError, None) == reset
    # kafka-python's own answers where it has one: fatal for the producer's own
    # authorisation, an epoch bump for a sequence out of order.
    assert classify(ClusterAuthorizationFailedError(), None) == TransactionManager.ERROR_CLASS_FATAL
    assert classify(OutOfOrderSequenceNumberError(), None) == (
        TransactionManager.ERROR_CLASS_NEEDS_EPOCH_BUMP
    )
    manager.reset_producer_id()  # what the sender does with that answer
    assert manager._current_state == TransactionState.UNINITIALIZED
    assert not manager.has_fatal_error()


def test_producers_without_idempotence_or_with_transactions_are_left_alone():
    recover_producer_ids(SimpleNamespace(_transaction_manager=None))
    transactional = TransactionManager(transactional_id="tx")
    reset, classify = transactional.reset_producer_id, transactional.classify_batch_error
    recover_producer_ids(SimpleNamespace(_transaction_manager=transactional))
    assert transactional.reset_producer_id == reset
    assert transactional.classify_batch_error == classify


def test_the_recovery_asks_kafka_python_with_the_batch_and_its_log_start_offset():
    """KAFKA-5793: an unknown producer id after retention deleted the partition's acknowledged
    records is retried, which kafka-python decides from the batch and the broker's offset."""
    manager = _ready_manager()
    manager._api_version = (4, 1)
    recover_producer_ids(SimpleNamespace(_transaction_manager=manager))
    batch = SimpleNamespace(topic_partition=TopicPartition("web-logs", 0))
    classify = manager.classify_batch_error
    assert classify(UnknownProducerIdError(), batch, log_start_offset=5) == (
        TransactionManager.ERROR_CLASS_RETRIABLE
    )
    assert classify(UnknownProducerIdError(), batch) == (
        TransactionManager.ERROR_CLASS_NEEDS_EPOCH_BUMP
    )


def test_an_error_class_the_producer_cannot_survive_stays_fatal():
    """The sender may pass the error's class rather than an instance."""
    manager = _ready_manager()
    recover_producer_ids(SimpleNamespace(_transaction_manager=manager))
    outcome = manager.classify_batch_error(ClusterAuthorizationFailedError, None)
    assert outcome == TransactionManager.ERROR_CLASS_FATAL
