"""The aggregation bolt: a batch is acked only once Redis stored it, failed whole if not."""

import pytest
import redis

from bolts import aggregate
from bolts.aggregate import AggregateBolt
from botscore.wire.records import RequestRecord, SourceRef
from tests.unit.storm_fakes import start, storm_tuple

NOW_MS = 1_700_000_000_000
BATCH = 3


class _FakeStore:
    """``RedisFeatureStore.apply``: answers ``fresh`` or raises ``error``, noting when."""

    def __init__(self):
        self.link = None  # the bolt's StormLink, once it is started
        self.fresh = None
        self.error = None
        # (records, now_ms, Storm messages sent before the call)
        self.calls = []

    def apply(self, records, now_ms):
        self.calls.append((list(records), now_ms, len(self.link.messages())))
        if self.error is not None:
            raise self.error
        return self.fresh if self.fresh is not None else [True] * len(records)


@pytest.fixture
def bolt(monkeypatch):
    stores = []

    def store_factory(*args, **kwargs):
        stores.append(_FakeStore())
        return stores[-1]

    monkeypatch.setattr(aggregate, "create_redis", lambda settings: None)
    monkeypatch.setattr(aggregate, "RedisFeatureStore", store_factory)
    monkeypatch.setattr(aggregate, "now_ms", lambda: NOW_MS)
    options = {
        "botscore.aggregation.batch_size": BATCH,
        # Batches close by size only: no batch may close by age while a test runs.
        "botscore.aggregation.max_batch_wait_ms": 3_600_000,
    }
    component, link = start(AggregateBolt, options, monkeypatch)
    [store] = stores
    store.link = link
    yield component, link, store
    component.stop_batching()


def _requests(n):
    return [
        RequestRecord(
            user_id=f"user-{i % 2}",
            time_ms=NOW_MS - 1000 + i,
            request_id=f"req-{i}",
            ip="198.51.100.7",
            user_agent="curl/8",
            path=f"/p/{i}",
            flags=["req", "err"] if i == 1 else ["req"],
            source=SourceRef("web-logs", 3, 500 + i),
            replay_floor=480,
        )
        for i in range(n)
    ]


def _process(component, records):
    for record in records:
        component.process(storm_tuple(record.source.tuple_id(), record.to_values()))


def test_nothing_is_stored_or_answered_before_the_batch_is_full(bolt):
    component, link, store = bolt
    _process(component, _requests(BATCH - 1))
    assert store.calls == []
    assert link.messages() == []


def test_a_batch_is_stored_in_one_call_and_acked_only_after_it(bolt):
    component, link, store = bolt
    records = _requests(BATCH)
    _process(component, records)
    [(stored, now, answered_before)] = store.calls
    assert stored == records
    assert now == NOW_MS
    assert answered_before == 0, "a tuple was answered before Redis stored its update"
    assert link.commands() == [("ack", r.source.tuple_id()) for r in records]


def test_duplicates_redis_already_had_are_acked_too(bolt):
    component, link, store = bolt
    store.fresh = [True, False, True]
    records = _requests(BATCH)
    _process(component, records)
    assert link.commands() == [("ack", r.source.tuple_id()) for r in records]


def test_a_batch_redis_did_not_take_is_failed_whole_for_replay(bolt):
    component, link, store = bolt
    store.error = redis.ConnectionError("Connection refused")
    records = _requests(BATCH)
    _process(component, records)
    assert link.commands() == [("fail", r.source.tuple_id()) for r in records]

    store.error = None
    _process(component, records)  # Storm's replay
    assert link.acked() == [r.source.tuple_id() for r in records]
