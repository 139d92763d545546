import io
import logging
import threading

import pytest
from streamparse import Tuple

from bolts.micro_batch import MicroBatchBolt


class _FlakyBolt(MicroBatchBolt):
    """Its first batch raises; later ones are recorded."""

    def __init__(self):
        super().__init__(input_stream=io.BytesIO(), output_stream=io.BytesIO(), rdb_signal=None)
        self.logger = logging.getLogger("tests.micro_batch")
        self.raised = threading.Event()
        self.closed = threading.Event()
        self.batches = []

    def to_item(self, tup):
        return tup.values[0]

    def handle_batch(self, batch):
        if not self.raised.is_set():
            self.raised.set()
            raise RuntimeError("redis went away mid-batch")
        self.batches.append([item for _, item in batch])
        self.closed.set()


def _tuple(value):
    return Tuple(id=value, component="spout", stream="default", task=1, values=[value])


@pytest.fixture
def bolt():
    bolt = _FlakyBolt()
    bolt.start_batching(batch_size=100, max_batch_wait_ms=20)
    yield bolt
    bolt.stop_batching()


def test_the_batch_timer_survives_a_batch_that_raises(bolt, caplog):
    caplog.set_level(logging.ERROR, logger="tests.micro_batch")
    bolt.process(_tuple("first"))
    assert bolt.raised.wait(5)
    bolt.process(_tuple("second"))
    assert bolt.closed.wait(5), "a later batch never closed by age"
    assert bolt.batches == [["second"]]
    [error] = [r for r in caplog.records if r.name == "tests.micro_batch"]
    assert error.exc_info is not None and "redis went away" in str(error.exc_info[1])


def test_a_batch_still_closes_by_size_before_its_age():
    bolt = _FlakyBolt()
    bolt.raised.set()  # no failure this time
    bolt.start_batching(batch_size=2, max_batch_wait_ms=60_000)
    try:
        bolt.process(_tuple("a"))
        assert bolt.batches == []
        bolt.process(_tuple("b"))
        assert bolt.batches == [["a", "b"]]
    finally:
        bolt.stop_batching()
