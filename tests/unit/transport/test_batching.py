"""Micro-batches that close by size or by age."""

import pytest

from botscore.transport.batching import MicroBatcher


def test_batch_closes_when_full():
    batcher = MicroBatcher(max_size=3, max_wait_s=1.0)
    assert batcher.add("a", now=0.0) is None
    assert batcher.add("b", now=0.1) is None
    assert batcher.add("c", now=0.2) == ["a", "b", "c"]
    assert len(batcher) == 0


def test_batch_closes_by_age_of_its_first_item():
    batcher = MicroBatcher(max_size=100, max_wait_s=0.25)
    batcher.add("a", now=10.0)
    batcher.add("b", now=10.125)
    assert batcher.due(now=10.2) is None
    assert batcher.seconds_until_due(now=10.125) == 0.125
    assert batcher.due(now=10.25) == ["a", "b"]
    assert batcher.due(now=11.0) is None
    assert batcher.seconds_until_due(now=11.0) is None


def test_new_batch_starts_its_own_clock():
    batcher = MicroBatcher(max_size=2, max_wait_s=0.5)
    batcher.add("a", now=0.0)
    batcher.add("b", now=0.25)  # closes the first batch
    batcher.add("c", now=1.0)
    assert batcher.due(now=1.25) is None
    assert batcher.due(now=1.5) == ["c"]


@pytest.mark.parametrize(("size", "wait"), [(0, 1.0), (1, 0.0)])
def test_rejects_settings_that_cannot_work(size, wait):
    with pytest.raises(ValueError):
        MicroBatcher(size, wait)
