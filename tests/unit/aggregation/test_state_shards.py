"""Where the feature state's keys go: one slot per shard, shards spread over the slots."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.aggregation.state_shards import ShardLayout, combined_generation, epoch_of
from botscore.errors import ConfigError
from botscore.settings import Settings
from botscore.transport.redis_client import cluster_nodes

SLOTS = 16384
# The slot ranges `redis-cli --cluster create` gives three primaries.
THREE_PRIMARIES = [(0, 5460), (5461, 10922), (10923, 16383)]


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("count", [1, 3, 16, 48, 1024])
def test_shard_i_hashes_into_the_ith_equal_range_of_slots(count):
    layout = ShardLayout("bs:agg", count)
    for i in range(count):
        assert i * SLOTS // count <= slot(layout.pending_key(i, "e")) < (i + 1) * SLOTS // count


@pytest.mark.parametrize("count", [1, 16, 64])
def test_every_key_a_users_script_touches_shares_its_shards_slot(count):
    store = RedisFeatureStore(mock.MagicMock(), ttl_s=600, shards=count)
    layout = store.layout
    for n in range(2000):
        user = f"user-{n}" if n % 3 else f"{{odd}}user}}{n}"  # braces in an id change nothing
        shard = layout.shard_of(user)
        keys = [
            *store._keys(user, "e1"),
            f"{layout.user_base(user, 'e1')}:seen:3",
            layout.pending_key(shard, "e1"),
            layout.pending_key(shard, "e2"),
            layout.generation_key(shard),
        ]
        assert {slot(key) for key in keys} == {slot(layout.generation_key(shard))}


def test_users_spread_evenly_over_the_shards_and_stay_where_they_are():
    layout = ShardLayout("bs:agg", 16)
    per_shard = Counter(layout.shard_of(f"user-{n}") for n in range(32_000))
    assert len(per_shard) == 16
    assert all(1700 < n < 2300 for n in per_shard.values()), per_shard
    # Literals: a changed hash or tag would move every user's state (it would be rebuilt).
    assert [layout.shard_of(u) for u in ("alice", "bob", "u1", "u2")] == [7, 0, 6, 12]
    assert layout.user_base("alice", "01234567") == "bs:agg:{7.40}:01234567:u:alice"


@pytest.mark.parametrize(("count", "expected"), [(48, [16, 16, 16]), (16, [6, 5, 5])])
def test_primaries_with_contiguous_slot_ranges_hold_shares_in_proportion(count, expected):
    layout = ShardLayout("bs:agg", count)
    held = [
        sum(low <= slot(layout.generation_key(i)) <= high for i in range(count))
        for low, high in THREE_PRIMARIES
    ]
    assert held == expected


@pytest.mark.parametrize("count", [0, -1, 1025])
def test_a_shard_count_out_of_range_is_refused(count):
    with pytest.raises(ValueError, match=r"1\.\.1024"):
        ShardLayout("bs:agg", count)
    with pytest.raises(ConfigError, match=r"aggregation\.state_shards"):
        Settings.from_options({"botscore.aggregation.state_shards": count}, environ={})


def test_the_states_generation_changes_when_any_shards_does_and_names_its_epoch():
    shards = [b"a", b"b", b"c"]
    name = combined_generation(shards)
    assert len(name) == 32 and name == combined_generation(list(shards))
    assert combined_generation([b"a", b"b", b"d"]) != name
    assert combined_generation([b"b", b"a", b"c"]) != name
    assert combined_generation([b"a\nb", b"c"]) != name  # no value passes for two
    assert epoch_of(name) == name[:8]


def test_cluster_nodes_are_host_port_pairs():
    assert cluster_nodes("127.0.0.1:7001, redis-2:7002,[::1]:7003") == [
        ("127.0.0.1", 7001),
        ("redis-2", 7002),
        ("::1", 7003),
    ]
    for bad in (
        "127.0.0.1",
        "host:",
        ":7001",
        "host:70001",
        "a:1,,b:2",
        "host:port",
        "host:\u00b2",
    ):
        with pytest.raises(ConfigError, match="is not host:port"):
            cluster_nodes(bad)


@given(count=st.integers(1, 64), parts=st.integers(1, 80))
def test_parts_share_the_shards_each_once_and_within_one_of_each_other(count, parts):
    layout = ShardLayout("bs:agg", count)
    shares = [layout.share(i, parts) for i in range(parts)]
    assert sorted(s for share in shares for s in share) == list(range(count))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert all(sizes) == (parts <= count)  # an empty share only with more parts than shards


@pytest.mark.parametrize(("index", "parts"), [(-1, 2), (2, 2), (0, 0)])
def test_a_part_that_does_not_exist_is_refused(index, parts):
    with pytest.raises(ValueError, match="does not exist"):
        ShardLayout("bs:agg", 4).share(index, parts)
