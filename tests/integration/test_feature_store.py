"""The Redis feature store against real Redis: same features as memory, exactly once.

And the same state as the per-request store it replaced (``per_request_store``), whatever
the batches: several users and partitions, redeliveries, any replay floors, caps reached.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from botscore.aggregation.definitions import DISTINCT_SETS, compute_features, request_record
from botscore.aggregation.offline import final_features
from botscore.aggregation.redis_state import (
    STATE_PREFIX,
    DueUsers,
    PublishCandidate,
    RedisFeatureStore,
    UnusableState,
)
from botscore.errors import StateLost, StateNotReplicated
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.records import RequestRecord, SourceRef
from tests.unit.aggregation.naive_features import request_sequences
from tests.unit.aggregation.per_request_store import PerRequestStore

from .harness import empty_redis_db

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 4
T0 = 1_790_000_000_000


def pending_members(client: redis.Redis, store: RedisFeatureStore) -> set[str]:
    """Every user pending in any shard."""
    return {u.decode() for k in store.pending_keys() for u in client.zrange(k, 0, -1)}


def one_user_logs(count: int, user: str = "u1") -> list[WebLog]:
    return [
        WebLog(time_unix_ms=T0 + i * 700, user_id=user, request_id=f"r{i}", schema_version=1)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def database() -> Iterator[redis.Redis]:
    # Module scope: Hypothesis runs many examples per test; each empties the database itself.
    with empty_redis_db(REDIS_DB) as client:
        yield client


@pytest.fixture
def client(database: redis.Redis) -> redis.Redis:
    database.flushdb()
    return database


def test_shuffled_and_redelivered_requests_give_the_memory_features(client):
    logs = list(TrafficGenerator(build_population(150, 0.4, 9), 30, 1500, 9, T0))
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs)]
    rng = random.Random(9)
    delivered = records[:]
    rng.shuffle(delivered)
    delivered += rng.sample(records, len(records) // 5)  # redeliveries
    store = RedisFeatureStore(client, ttl_s=600)
    fresh = []
    for i in range(0, len(delivered), 200):
        fresh += store.apply(delivered[i : i + 200], now_ms=0).fresh
    assert sum(fresh) == len(records), "a redelivery was counted twice"

    expected = final_features(logs)
    users = sorted(expected)
    for user, candidate in zip(users, store.read(users), strict=True):
        assert candidate is not None
        assert candidate.state.last_ms == expected[user].window_end_ms
        assert compute_features(candidate.state) == expected[user].features, user
    assert pending_members(client, store) == set(users)
    keys = list(client.scan_iter("bs:agg:{*}:*:*"))
    assert keys and all(0 < client.pttl(k) <= 600_000 for k in keys)


def test_a_request_written_twice_at_two_offsets_is_counted_once(client):
    """An edge producer's retry writes a request again at a later offset: caught by its id,
    in the same batch or a later one, while the id is among the user's 32 latest."""
    logs = one_user_logs(40)
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs)]
    store = RedisFeatureStore(client, ttl_s=600)
    written_again = request_record(logs[5], SourceRef("w", 0, 40))
    assert store.apply([*records[:20], written_again], now_ms=0).fresh == [True] * 20 + [False]
    written_again = request_record(logs[19], SourceRef("w", 1, 41))  # even on another partition
    assert store.apply([*records[20:], written_again], now_ms=0).fresh == [True] * 20 + [False]
    (candidate,) = store.read(["u1"])
    assert candidate is not None
    assert compute_features(candidate.state) == final_features(logs)["u1"].features
    assert candidate.version == 40
    # Past the 32 latest the id is forgotten (memory stays bounded): counted again.
    assert store.apply([request_record(logs[7], SourceRef("w", 0, 42))], now_ms=0).fresh == [True]


def test_another_programs_values_make_a_users_state_unusable_and_it_is_started_again(client):
    """A key of another type is deleted before the user's requests are applied; a state
    that cannot be read back is reported, with why, and ``reset`` deletes it."""
    logs = one_user_logs(10)
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs)]
    store = RedisFeatureStore(client, ttl_s=600)
    u1, u2 = store.user_base("u1"), store.user_base("u2")
    client.set(f"{u1}:t", "another program's value")
    client.rpush(f"{u1}:seen:0", "x")
    applied = store.apply(records, now_ms=0)
    assert applied.fresh == [True] * 10
    assert list(applied.reset) == ["u1"] and applied.reset["u1"].startswith("WRONGTYPE")
    (candidate,) = store.read(["u1"])
    assert isinstance(candidate, PublishCandidate)
    assert compute_features(candidate.state) == final_features(logs)["u1"].features

    client.hset(f"{u1}:m", "last", "yesterday")
    client.set(f"{u2}:c", "a string")
    client.hset(f"{u2}:m", mapping={"last": "1", "version": "1"})
    unreadable, wrong_type, missing = store.read(["u1", "u2", "u3"])
    assert unreadable == UnusableState(
        "u1", "ValueError: invalid literal for int() with base 10: b'yesterday'"
    )
    assert isinstance(wrong_type, UnusableState) and "WRONGTYPE" in wrong_type.reason
    assert missing is None
    store.reset("u1")
    assert store.read(["u1"]) == [None] and "u1" not in store.due(now_ms=10**12, limit=10).users

    client.zadd(store.pending_key("u2"), {b"\xff\xfe": 0, "u2": 1})
    assert store.due(now_ms=10**12, limit=10) == DueUsers(["u2"], foreign=1)
    assert pending_members(client, store) == {"u2"}


def test_a_new_request_at_an_offset_an_old_one_had_is_counted(client):
    """The topic was recreated: offsets start again at 0 with other requests, while the
    old marks are still there (a mark is the offset and a digest of the request id)."""
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(20)
    old = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs[:10])]
    new = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs[10:])]
    assert store.apply(old, now_ms=0).fresh == [True] * 10
    assert store.apply(new[:4], now_ms=0).fresh == [True] * 4  # marked together
    assert store.apply(new[:3], now_ms=0).fresh == [False] * 3  # a replay is still one
    # Past the marks' cap the script marks one request at a time: the same holds there.
    capped = RedisFeatureStore(client, ttl_s=600, marks=10)
    assert capped.apply(new[4:], now_ms=0).fresh == [True] * 6
    (candidate,) = store.read(["u1"])
    assert compute_features(candidate.state) == final_features(logs)["u1"].features


def test_dedup_marks_below_the_replay_floor_are_forgotten(client):
    store = RedisFeatureStore(client, ttl_s=600)
    one_user = one_user_logs(30)
    records = [
        request_record(e, SourceRef("w", 0, i), replay_floor=i) for i, e in enumerate(one_user)
    ]
    store.apply(records, now_ms=0)
    seen = f"{store.user_base(one_user[0].user_id)}:seen:0"
    # every record carried a higher floor; only marks at or above the last floor remain
    [(mark, offset)] = client.zrange(seen, 0, -1, withscores=True)
    assert offset == 29 and mark.startswith(b"29:")


def test_publication_bookkeeping(client):
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(2)
    user = logs[0].user_id
    store.apply([request_record(logs[0], SourceRef("w", 0, 0))], now_ms=1000)
    assert store.due(1000, 10).users == [user]
    (candidate,) = store.read([user])
    # a request arrives while the publication is in flight: due again one interval later
    store.apply([request_record(logs[1], SourceRef("w", 0, 1))], now_ms=1500)
    store.published([(user, candidate.born, candidate.version)], now_ms=2000, interval_ms=2000)
    assert store.due(3999, 10).users == []
    assert store.due(4000, 10).users == [user]
    (candidate,) = store.read([user])
    assert candidate.published_ms == 2000
    store.published([(user, candidate.born, candidate.version)], now_ms=4100, interval_ms=2000)
    assert pending_members(client, store) == set()
    assert store.read(["nobody"]) == [None]


def test_due_users_skip_those_held_and_come_from_the_shards_asked_oldest_first(client):
    store = RedisFeatureStore(client, ttl_s=600, shards=4)
    users = [f"user-{i:03d}" for i in range(200)]
    for i, user in enumerate(users):  # user i is due at 1000 + i
        log = WebLog(time_unix_ms=T0, user_id=user, request_id="r", schema_version=1)
        store.apply([request_record(log, SourceRef("w", 0, i))], now_ms=1000 + i)
    held = set(users[:150:2])  # every other one of the oldest 150: being published
    due = store.due(10**6, 30, held=held)
    assert due.users == [u for u in users if u not in held][:30]
    shard = store.layout.shard_of
    share = store.layout.share(1, 2)
    due = store.due(10**6, 30, shards=share, held=held)
    assert due.users == [u for u in users if u not in held and shard(u) in share][:30]
    # every due user of a shard past the held ones, however many are held there
    everyone = store.due(10**6, 1000, held=set(users[:199]))
    assert everyone.users == [users[199]]


def test_publications_confirmed_together_are_recorded_in_one_call_even_after_a_script_flush(
    client,
):
    """The publisher records a poll's worth of confirmations at once; a Redis that lost its
    scripts (restarted, or SCRIPT FLUSH) gets the script loaded and the calls again."""
    store = RedisFeatureStore(client, ttl_s=600)
    logs = [log for seed in range(3) for log in one_user_logs(2, user=f"p{seed}")]
    for offset, log in enumerate(logs):
        store.apply([request_record(log, SourceRef("w", 0, offset))], now_ms=1000)
    users = sorted({log.user_id for log in logs})
    candidates = store.read(users)
    client.script_flush()
    store.published([(c.user_id, c.born, c.version) for c in candidates], 2000, 2000)
    assert pending_members(client, store) == set()
    assert [c.published_ms for c in store.read(users)] == [2000, 2000, 2000]


def test_the_confirmation_of_a_state_gone_since_leaves_the_new_state_due(client):
    """A publication confirmed after the user's state expired (or was reset, or Redis lost it)
    and a new request began another, at the same version: the new state is still due."""
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(2)
    user = logs[0].user_id
    store.apply([request_record(logs[0], SourceRef("w", 0, 0))], now_ms=1000)
    (old,) = store.read([user])
    client.delete(*store._keys(user))  # expired while its publication was in flight
    store.apply([request_record(logs[1], SourceRef("w", 0, 1))], now_ms=1500)
    (new,) = store.read([user])
    assert (old.version, new.version) == (1, 1) and new.born > old.born > 0
    store.published([(user, old.born, old.version)], now_ms=2000, interval_ms=2000)
    assert store.due(1500, 10).users == [user]
    assert store.read([user])[0].published_ms == 0
    store.published([(user, new.born, new.version)], now_ms=2100, interval_ms=2000)
    assert store.due(10_000, 10).users == []


def test_a_pending_user_without_state_is_dropped_only_while_it_has_none(client):
    """The publisher reads a pending user with no state (a batch that met a Redis without
    its script marks its users pending before their state lands): if the state lands before
    the publisher drops the mark, the mark stays and the user is published."""
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(1)
    user = logs[0].user_id
    client.zadd(store.pending_key(user), {user: 0})
    assert store.read([user]) == [None]
    store.apply([request_record(logs[0], SourceRef("w", 0, 0))], now_ms=0)  # lands meanwhile
    assert store.drop_pending(user) is False
    assert store.due(0, 10).users == [user]
    assert store.read([user])[0] is not None
    client.zadd(store.pending_key("gone"), {"gone": 0})
    assert store.drop_pending("gone") is True
    assert store.due(0, 10).users == [user]


def test_a_redis_that_lost_its_scripts_takes_the_batch_whole(client):
    """After a restart Redis has no scripts: the store loads its own and sends it again."""
    store = RedisFeatureStore(client, ttl_s=600)
    logs = one_user_logs(3)
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(logs)]
    client.script_flush()
    assert store.apply(records[:2], now_ms=0).fresh == [True, True]
    client.script_flush()
    assert store.apply(records, now_ms=0).fresh == [False, False, True]
    (candidate,) = store.read([logs[0].user_id])
    assert candidate is not None and candidate.version == 3


PARTITIONS = 3


@st.composite
def batches(draw: st.DrawFn) -> list[list[RequestRecord]]:
    """Up to three users' requests, delivered at least once, cut into random batches.

    Each request gets a partition and the next offset there; some are written twice (at
    another offset, as a producer's retry does); some are delivered again; every delivery
    has an arbitrary replay floor (not only the tightest one a spout gives), so marks are
    dropped and requests counted again in every order the rules allow.
    """
    logs = []
    for user in range(draw(st.integers(1, 3))):
        for log in draw(request_sequences(max_size=30)):
            log.user_id = f"user-{user}"
            logs.append(log)
    logs += [logs[i] for i in draw(st.lists(st.integers(0, len(logs) - 1), max_size=5))]
    next_offset = [0] * PARTITIONS
    sources = []
    for _ in logs:
        partition = draw(st.integers(0, PARTITIONS - 1))
        sources.append(SourceRef("w", partition, next_offset[partition]))
        next_offset[partition] += 1
    again = draw(st.lists(st.integers(0, len(logs) - 1), max_size=len(logs)))
    order = draw(st.permutations(list(range(len(logs))) + again))
    delivered = [
        request_record(logs[i], sources[i], draw(st.integers(0, max(next_offset)))) for i in order
    ]
    cuts = sorted(draw(st.lists(st.integers(1, len(delivered)), max_size=6)))
    bounds = zip([0, *cuts], [*cuts, len(delivered)], strict=True)
    return [delivered[a:b] for a, b in bounds if a < b]


def marks(client: redis.Redis, prefix: str) -> dict[str, list[tuple[bytes, float]]]:
    """Each user's marks, by key without the prefix and the epoch (each store has its own)."""

    def name(key: bytes) -> str:
        tag, _epoch, rest = key.decode().removeprefix(f"{prefix}:").split(":", 2)
        return f"{tag}:{rest}"

    return {
        name(key): client.zrange(key, 0, -1, withscores=True)
        for key in client.scan_iter(f"{prefix}:*:seen:*")
    }


@settings(max_examples=150, deadline=None)
@given(
    cut=batches(),
    caps=st.sampled_from([(None, 32, 10_000), (2, 3, 10_000), (3, 5, 4), (500, 32, 2)]),
)
def test_batches_leave_the_state_of_one_request_at_a_time(
    database: redis.Redis, cut: list[list[RequestRecord]], caps: tuple[int | None, int, int]
) -> None:
    """Same new/old verdicts, user states, versions and marks as the per-request store."""
    database.flushdb()
    set_cap, recent, mark_cap = caps
    sets = tuple(
        s if set_cap is None else dataclasses.replace(s, cap=set_cap) for s in DISTINCT_SETS
    )
    store = RedisFeatureStore(database, 600, "new", sets=sets, recent=recent, marks=mark_cap)
    reference = PerRequestStore(database, 600, "ref", sets=sets, recent=recent, marks=mark_cap)
    for batch in cut:
        assert store.apply(batch, now_ms=0).fresh == reference.apply(batch, now_ms=0)
    users = sorted({r.user_id for batch in cut for r in batch})
    reread = RedisFeatureStore(database, 600, "ref", sets=sets)
    for got, expected in zip(store.read(users), reread.read(users), strict=True):
        assert got is not None and expected is not None
        assert (got.state, got.version) == (expected.state, expected.version)
    assert marks(database, "new") == marks(database, "ref")
    assert pending_members(database, store) == pending_members(database, reread)


def test_the_states_generation_is_kept_until_redis_loses_any_shard(client):
    store = RedisFeatureStore(client, ttl_s=3600, shards=4)
    keys = store.layout.generation_keys()
    first = store.read_generation()
    shards = client.mget(keys)
    assert store.read_generation() == first and all(len(g) == 32 for g in shards)
    assert len(set(shards)) == 4  # each shard its own: a node losing its data changes only its
    client.flushdb()
    second = store.read_generation()
    assert second != first and len(second) == 32
    before = client.mget(keys)
    client.delete(keys[2])  # one shard's lost (a cluster node restarted without its data)
    third = store.read_generation()
    after = client.mget(keys)
    assert third not in (first, second)
    assert after[:2] + after[3:] == before[:2] + before[3:] and after[2] != before[2]
    client.delete(keys[1])
    client.rpush(keys[1], "another program's value")
    fourth = store.read_generation()
    assert fourth not in (first, second, third) and client.type(keys[1]) == b"string"


def test_requests_read_under_another_generation_are_refused_before_any_write(client):
    store = RedisFeatureStore(client, ttl_s=3600)
    held = store.read_generation()
    records = [request_record(e, SourceRef("w", 0, i)) for i, e in enumerate(one_user_logs(3))]
    with pytest.raises(StateLost):
        store.apply(records, now_ms=T0, generation="an-older-one")
    assert client.keys("bs:agg:{*}:*:u:*") == [] and pending_members(client, store) == set()
    assert store.user_base("u1").split(":")[3] == held[:8]  # the generation's epoch
    assert store.apply(records, now_ms=T0, generation=held).fresh == [True] * 3
    # What a flush leaves of the user's shard: no generation at all. The store still holds
    # the one it read last; the script finds the shard's gone.
    client.delete(store.layout.generation_key(store.layout.shard_of("u1")))
    with pytest.raises(StateLost, match="generation is no longer the requests'"):
        store.apply(records, now_ms=T0, generation=held)
    assert store.apply(records, now_ms=T0).fresh == [False] * 3  # '' checks none


def test_a_store_that_needs_a_replica_refuses_batches_on_a_redis_without_one(client):
    """The stack's Redis has no replica: every batch is refused, naming the server, yet
    stored on it (a replay counts it once); a store that needs none sends no WAIT."""
    records = [request_record(log, SourceRef("w", 0, i)) for i, log in enumerate(one_user_logs(5))]
    needs_one = RedisFeatureStore(client, ttl_s=600, replicas=1, replica_wait_ms=50)
    port = client.connection_pool.connection_kwargs["port"]
    with pytest.raises(StateNotReplicated, match=f"Redis 127.0.0.1:{port} had 0 of 1 replica"):
        needs_one.apply(records, now_ms=0)
    client.config_resetstat()
    trusting = RedisFeatureStore(client, ttl_s=600)
    assert trusting.apply(records, now_ms=0).fresh == [False] * len(records)
    assert "cmdstat_wait" not in client.info("commandstats")


def test_the_keys_of_an_epoch_the_state_left_are_swept_and_nothing_else(client):
    """A shard's generation lost: the state starts over in a new epoch, and another
    process's store (the publisher's, which never saw the change) deletes the old epoch's
    keys a SCAN step at a time, leaving the new state, the generations and other keys."""
    store = RedisFeatureStore(client, ttl_s=600, shards=4)
    first = store.read_generation()
    old_epoch = store.epoch
    logs = list(TrafficGenerator(build_population(40, 0.3, 5), 20, 120, 5, T0))
    records = [request_record(log, SourceRef("w", 0, i)) for i, log in enumerate(logs)]
    store.apply(records, now_ms=0, generation=first)
    client.set(f"{STATE_PREFIX}:not-a-users-key", "kept")
    client.set("another-programs-key", "kept")
    client.delete(store.layout.generation_key(2))
    second = store.read_generation()
    assert second != first
    assert all(store.apply(records, now_ms=0, generation=second).fresh)
    old_keys = set(client.scan_iter(match=store.layout.epoch_pattern(old_epoch)))
    assert len(old_keys) > 40
    before = set(client.scan_iter())

    publisher = RedisFeatureStore(client, ttl_s=600, shards=4)
    steps = [publisher.sweep(10)]
    while publisher.sweeping:
        steps.append(publisher.sweep(10))
    assert len(steps) > 3 and steps[-1].finished == old_epoch
    assert steps[-1].total == len(old_keys) == sum(step.deleted for step in steps)
    superseded = store.layout.superseded_key.encode()
    assert superseded in before  # the record of the old epoch, gone once it is swept
    assert set(client.scan_iter()) == before - old_keys - {superseded}
    expected = final_features(logs)
    for user, candidate in zip(expected, store.read(list(expected)), strict=True):
        assert (
            candidate is not None and compute_features(candidate.state) == expected[user].features
        )
