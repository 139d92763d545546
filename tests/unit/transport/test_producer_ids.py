"""``recover_producer_ids`` on kafka-python's own transaction manager (no broker: the real
broker's stall is ``tests/integration/test_producer_ids.py``)."""

from __future__ import annotations

from types import SimpleNamespace

from kafka.producer.transaction_manager import (
    ProducerIdAndEpoch,
    TransactionManager,
    TransactionState,
)

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


def test_producers_without_idempotence_or_with_transactions_are_left_alone():
    recover_producer_ids(SimpleNamespace(_transaction_manager=None))
    transactional = TransactionManager(transactional_id="tx")
    reset = transactional.reset_producer_id
    recover_producer_ids(SimpleNamespace(_transaction_manager=transactional))
    assert transactional.reset_producer_id == reset
