"""The aggregation bolt: a tuple's batch is stored in one call, then the tuple is acked, or
failed whole if Redis did not take it."""

import pytest
import redis

from bolts import aggregate
from bolts.aggregate import AggregateBolt
from botscore.aggregation.redis_state import Applied
from botscore.errors import StateLost, StateNotReplicated
from botscore.wire.records import RequestBatch, RequestRecord, SourceRef
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.storm_fakes import start, storm_tuple

NOW_MS = 1_700_000_000_000


class _FakeStore:
    """``RedisFeatureStore.apply``: answers ``fresh`` or raises ``error``, noting when."""

    def __init__(self):
        self.link = None  # the bolt's StormLink, once it is started
        self.fresh = None
        self.reset = {}
        self.error = None
        # (records, now_ms, Storm messages sent before the call)
        self.calls = []
        self.generations = []  # the generation each call's requests were read under

    def apply(self, records, now_ms, generation):
        self.calls.append((list(records), now_ms, len(self.link.messages())))
        self.generations.append(generation)
        if self.error is not None:
            raise self.error
        fresh = self.fresh if self.fresh is not None else [True] * len(records)
        return Applied(fresh, self.reset)


@pytest.fixture
def bolt(monkeypatch):
    stores = []

    def store_factory(*args, **kwargs):
        stores.append(_FakeStore())
        return stores[-1]

    monkeypatch.setattr(aggregate, "feature_store", store_factory)
    monkeypatch.setattr(aggregate, "now_ms", lambda: NOW_MS)
    monkeypatch.setattr(
        aggregate, "Metrics", lambda settings, component, tags: RecordingMetrics(component)
    )
    component, link = start(AggregateBolt, {}, monkeypatch)
    [store] = stores
    store.link = link
    return component, link, store


def _requests(n, first_offset=500):
    return [
        RequestRecord(
            user_id=f"user-{i % 2}",
            time_ms=NOW_MS - 1000 + i,
            request_id=f"req-{i}",
            ip="198.51.100.7",
            user_agent="curl/8",
            path=f"/p/{i}",
            flags=["req", "err"] if i == 1 else ["req"],
            source=SourceRef("web-logs", 3, first_offset + i),
            replay_floor=480,
        )
        for i in range(n)
    ]


def _tuple_of(records, generation=""):
    first, last = records[0].source, records[-1].source
    tup_id = f"{first.topic}/{first.partition}/{first.offset}-{last.offset}"
    return tup_id, storm_tuple(tup_id, RequestBatch.of(records, generation).to_values())


def test_a_tuples_batch_is_stored_in_one_call_and_acked_only_after_it(bolt):
    component, link, store = bolt
    records = _requests(3)
    tup_id, tup = _tuple_of(records)
    component.process(tup)
    [(stored, now, answered_before)] = store.calls
    assert stored == records
    assert now == NOW_MS
    assert answered_before == 0, "the tuple was answered before Redis stored its batch"
    assert link.commands() == [("ack", tup_id)]


def test_each_tuple_is_stored_and_acked_on_its_own(bolt):
    component, link, store = bolt
    first, second = _requests(2), _requests(1, first_offset=502)
    ids = [_tuple_of(first)[0], _tuple_of(second)[0]]
    component.process(_tuple_of(first)[1])
    component.process(_tuple_of(second)[1])
    assert [stored for stored, _, _ in store.calls] == [first, second]
    assert link.commands() == [("ack", tup_id) for tup_id in ids]


def test_duplicates_redis_already_had_are_acked_too(bolt):
    component, link, store = bolt
    store.fresh = [True, False, True]
    tup_id, tup = _tuple_of(_requests(3))
    component.process(tup)
    assert link.commands() == [("ack", tup_id)]


def test_a_batch_redis_did_not_take_fails_its_tuple_whole_for_replay(bolt):
    component, link, store = bolt
    store.error = redis.ConnectionError("Connection refused")
    tup_id, tup = _tuple_of(_requests(3))
    component.process(tup)
    assert link.commands() == [("fail", tup_id)]

    store.error = None
    component.process(tup)  # the spout's replay
    assert link.commands() == [("fail", tup_id), ("ack", tup_id)]
    assert store.calls[0][0] == store.calls[1][0], "the replay stored another batch"


def test_an_outage_is_one_line_as_it_starts_and_one_as_it_ends(bolt, caplog):
    component, _, store = bolt
    store.error = redis.ConnectionError("Connection refused")
    for n in (3, 4, 5):
        component.process(_tuple_of(_requests(n))[1])
    store.error = None
    component.process(_tuple_of(_requests(1))[1])
    component.process(_tuple_of(_requests(1))[1])
    lines = [r.getMessage() for r in caplog.records if r.name == component.logger.name]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Redis did not take 3 updates, replaying them until it does")
    assert "Connection refused" in lines[0]
    assert lines[1].startswith("Redis takes updates again after ")
    assert "; 12 updates were failed meanwhile" in lines[1]
    assert component.metrics.counted("redis_failed") == 12


def test_a_batch_too_few_replicas_confirmed_is_failed_for_replay_and_counted(bolt, caplog):
    component, link, store = bolt
    store.error = StateNotReplicated(
        "Redis 127.0.0.1:7002 had 0 of 1 replica(s) confirm the batch's writes within 1000 ms"
    )
    tup_id, tup = _tuple_of(_requests(4))
    component.process(tup)
    assert link.commands() == [("fail", tup_id)]
    assert component.metrics.counted("unreplicated") == 4
    assert component.metrics.counted("redis_failed") == 0
    assert "replaying 4 updates not yet on replicas" in caplog.text
    assert "127.0.0.1:7002 had 0 of 1" in caplog.text


def test_users_whose_state_was_reset_are_logged_and_counted_and_the_tuple_acked(bolt, caplog):
    component, link, store = bolt
    store.reset = {"user-1": "WRONGTYPE Operation against a key holding the wrong kind of value"}
    tup_id, tup = _tuple_of(_requests(3))
    component.process(tup)
    assert link.commands() == [("ack", tup_id)]
    assert component.metrics.counted("state_reset") == 1
    assert component.metrics.counted("applied") == 3
    assert "'user-1'" in caplog.text and "WRONGTYPE" in caplog.text


def test_the_generation_a_batch_was_read_under_goes_to_the_store(bolt):
    component, _, store = bolt
    component.process(_tuple_of(_requests(2), "g7")[1])
    assert store.generations == ["g7"]


def test_a_batch_read_before_redis_lost_the_state_is_failed_and_logged_once(bolt, caplog):
    component, link, store = bolt
    store.error = StateLost("bs:agg:generation is no longer the requests' generation")
    ids = []
    for offset in (500, 502, 504):
        tup_id, tup = _tuple_of(_requests(2, first_offset=offset), "g1")
        ids.append(tup_id)
        component.process(tup)
    assert link.commands() == [("fail", tup_id) for tup_id in ids]
    assert component.metrics.counted("stale_batches") == 3
    assert component.metrics.counted("redis_failed") == 0
    assert caplog.text.count("refusing tuples read before Redis lost the state") == 1
