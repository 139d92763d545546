"""The feature state on a real Redis Cluster of three primaries (``stack/redis/cluster.sh``).

The state is spread over the primaries by its shards and stays exact; a primary that
crashes and comes back without its data changes only its shards' generations, but starts
the whole state over (a new epoch), refuses the batches read before, and under the
aggregation topology the spouts read the web logs again until every user's features equal
offline, on every primary.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from botscore.access.redis_users import persist_users
from botscore.aggregation.definitions import compute_features, request_record
from botscore.aggregation.offline import final_features
from botscore.aggregation.redis_state import STATE_PREFIX, RedisFeatureStore, Swept
from botscore.errors import StateLost
from botscore.settings import KafkaSettings, Settings, env_var
from botscore.transport.redis_client import create_redis, create_redis_cluster
from botscore.vocabulary import Role
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import SourceRef

from .aggregation_stream import (
    AggTopics,
    agg_topics_of_a_run,
    aggregation_topology,
    explainer,
    feature_state,
    feed,
    feed_paced,
    recorded_logs,
)
from .faults import LocalRedisCluster
from .harness import (
    ROOT,
    new_run_id,
    read_topic,
    stack_env,
    stack_redis_db,
    wait_committed_to_end,
)
from .wire_proofs import assert_failure_metrics_sent

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]

# Its three nodes take 7311-7313, and 17311-17313 for the cluster bus.
FIRST_PORT = 7311
SHARDS = 48  # 16 per primary: the slot ranges `redis-cli --cluster create` gives three
# The stack's Redis, a database of this module's own: the topology's settings name one,
# though its state is on the cluster.
REDIS_DB = 11


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    state = tmp_path_factory.mktemp("redis-cluster")
    with LocalRedisCluster(state, FIRST_PORT).running() as local:
        yield local


@pytest.fixture
def client(cluster: LocalRedisCluster) -> Iterator[redis.RedisCluster]:
    with cluster.empty_client() as client:
        yield client


def user_metas_per_node(cluster: LocalRedisCluster, epoch: str) -> list[set[str]]:
    """The users whose state each primary holds in ``epoch``, read from each node alone."""
    held = []
    for node in cluster.nodes:
        plain = node.client()
        keys = plain.scan_iter(f"{STATE_PREFIX}:{{*}}:{epoch}:u:*:m", count=1000)
        held.append({key.decode().split(":u:", 1)[1].removesuffix(":m") for key in keys})
        plain.close()
    return held


def test_the_state_spreads_over_the_primaries_and_stays_exact(cluster, client):
    store = RedisFeatureStore(client, ttl_s=3600, shards=SHARDS)
    generation = store.read_generation()
    logs = recorded_logs(users=400, rate=40, duration_s=600, seed=31)
    records = [request_record(log, SourceRef("w", i % 3, i)) for i, log in enumerate(logs)]
    delivered = records + records[::7]  # a redelivery of every seventh
    for node in cluster.nodes:
        node.client().config_resetstat()
    fresh = []
    for i in range(0, len(delivered), 256):
        fresh += store.apply(delivered[i : i + 256], now_ms=0, generation=generation).fresh
    assert sum(fresh) == len(records), "a redelivery was counted twice"
    # Each script call went straight to its node: none asked where its keys are.
    for node in cluster.nodes:
        stats = node.client().info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] > 0
        assert "cmdstat_command|getkeys" not in stats, (node.port, stats)

    expected = final_features(logs)
    users = sorted(expected)
    for user, candidate in zip(users, store.read(users), strict=True):
        assert candidate is not None, user
        assert compute_features(candidate.state) == expected[user].features, user
    per_node = user_metas_per_node(cluster, store.epoch)
    assert set().union(*per_node) == set(users) and sum(map(len, per_node)) == len(users)
    assert all(len(held) > 0.25 * len(users) for held in per_node), [len(h) for h in per_node]

    due = store.due(now_ms=10**13, limit=10_000)
    assert sorted(due.users) == users
    for user, candidate in zip(due.users, store.read(due.users), strict=True):
        assert candidate is not None
        store.published(
            [(user, candidate.born, candidate.version)], now_ms=10**13, interval_ms=1000
        )
    size = store.size()
    assert size.pending_users == 0
    assert size.keys == sum(node.client().dbsize() for node in cluster.nodes)


def test_a_primary_back_without_its_data_starts_the_whole_state_over(cluster, client):
    """Only its shards' generations change, but the state's generation (and the epoch that
    names every key) with them: the shards that survived hold requests whose dedup marks
    are gone, which the rebuild would count again."""
    store = RedisFeatureStore(client, ttl_s=3600, shards=SHARDS)
    generation = store.read_generation()
    logs = recorded_logs(users=200, rate=40, duration_s=300, seed=32)
    records = [request_record(log, SourceRef("w", 0, i)) for i, log in enumerate(logs)]
    store.apply(records, now_ms=0, generation=generation)
    keys = store.layout.generation_keys()
    before = [client.get(key) for key in keys]
    lost_node = cluster.nodes[2]
    old_epoch = store.epoch
    held_before = user_metas_per_node(cluster, old_epoch)
    assert all(held_before)

    lost_node.kill()
    with pytest.raises(redis.ConnectionError):
        store.apply(records[:50], now_ms=0, generation=generation)
    lost_node.lose_data()
    lost_node.start()

    held = store.read_generation()
    assert held != generation
    after = [client.get(key) for key in keys]
    on_lost_node = {i for i in range(SHARDS) if int(client.keyslot(keys[i])) >= 10923}
    assert {i for i in range(SHARDS) if after[i] != before[i]} == on_lost_node
    with pytest.raises(StateLost):  # a batch read before the loss
        store.apply(records[:50], now_ms=0, generation=generation)
    assert store.epoch != old_epoch
    users = sorted({log.user_id for log in logs})
    assert store.read(users) == [None] * len(users)
    assert store.due(now_ms=10**13, limit=1000).users == []
    # The survivors hold their old keys (the lost node's are gone) until the sweep.
    left = user_metas_per_node(cluster, old_epoch)
    assert left[:2] == held_before[:2] and left[2] == set()
    # The rebuild counts every request once again, on every primary.
    assert sum(store.apply(records, now_ms=0, generation=held).fresh) == len(records)
    rebuilt = user_metas_per_node(cluster, store.epoch)
    assert all(rebuilt)
    # The sweep deletes every key of the old epoch, a SCAN of 50 per node at a time, and
    # nothing else: the rebuilt state and each shard's generation stay.
    keys_before = client.dbsize(target_nodes=redis.RedisCluster.PRIMARIES)
    steps = [store.sweep(50)]
    while store.sweeping:
        steps.append(store.sweep(50))
    assert len(steps) > 2 and steps[-1].finished == old_epoch
    assert steps[-1].total == sum(step.deleted for step in steps) > 0
    assert user_metas_per_node(cluster, old_epoch) == [set(), set(), set()]
    assert not any(
        node.client().scan(0, match=store.layout.epoch_pattern(old_epoch), count=10**6)[1]
        for node in cluster.nodes
    )
    # and the record of the old epoch
    assert client.exists(store.layout.superseded_key) == 0
    left_keys = client.dbsize(target_nodes=redis.RedisCluster.PRIMARIES)
    assert left_keys == keys_before - steps[-1].total - 1
    assert user_metas_per_node(cluster, store.epoch) == rebuilt
    assert [client.get(key) for key in keys] == after
    assert store.sweep(50) == Swept(0), "an epoch swept twice"


@pytest.fixture
def agg_topics(kafka_settings: KafkaSettings) -> Iterator[AggTopics]:
    with agg_topics_of_a_run(kafka_settings, REDIS_DB) as topics:
        yield topics


def test_the_aggregation_topology_rebuilds_what_a_primary_lost(
    cluster, client, agg_topics, storm_on_path, tmp_path: Path, report_figure
):
    """The topology keeps its state on the cluster; a primary is killed and comes back
    empty while requests arrive: the spouts read the logs again and every user's features
    equal offline."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=33)
    cut = len(logs) // 2
    feed(agg_topics, logs[:cut])
    log_path = tmp_path / "sparse-run.log"
    lost_node = cluster.nodes[1]
    with aggregation_topology(
        agg_topics, log_path, BOTSCORE_AGGREGATION_STATE_CLUSTER_NODES=cluster.addresses
    ) as (metrics, features, process):
        deadline = time.monotonic() + 180
        while features.total < 200:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no features published before the loss"
            time.sleep(0.2)
        sender = threading.Thread(target=feed_paced, args=(agg_topics, logs[cut:]))
        sender.start()
        time.sleep(1.0)  # the second half is arriving
        epoch = feature_state(client).epoch
        held_before = len(user_metas_per_node(cluster, epoch)[1])
        lost_node.kill()
        lost_node.lose_data()
        lost_node.start()
        back = time.monotonic()
        sender.join()
        features.wait_until_equal(final_features(logs), 420, process, explainer(agg_topics, client))
        took = time.monotonic() - back
        ends = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
        )
        # The publisher deletes what the survivors hold of the old epoch (it looks every
        # 10 s).
        deadline = time.monotonic() + 60
        while any(user_metas_per_node(cluster, epoch)):
            assert time.monotonic() < deadline, "the old epoch's keys were not deleted"
            time.sleep(0.5)
        swept = time.monotonic() - back
        received = metrics.tags_by_metric()
    run_log = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation on a 3-primary Redis Cluster: a primary holding {held_before} users' "
        f"state killed and back empty mid-stream; all {len(final_features(logs))} users' "
        f"features equal offline {took:.0f} s after it was back ({len(logs)} WebLogs), "
        f"the old epoch's keys deleted {swept:.0f} s after"
    )
    assert f"keys left of the feature state's old epoch {epoch}" in run_log
    assert_failure_metrics_sent(
        "test_the_aggregation_topology_rebuilds_what_a_primary_lost", received
    )
    assert held_before > 0
    assert sum(ends.values()) == len(logs)
    assert "the state downstream was lost (generation " in run_log
    assert "to rebuild the state, lost while this spout read it" in run_log
    rebuilt = user_metas_per_node(cluster, feature_state(client).epoch)
    assert sum(map(len, rebuilt)) == len(final_features(logs)) and all(rebuilt)
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]


def test_access_gives_the_aggregation_its_user_on_every_node(cluster, client):
    """`botscore access` sets the aggregation's Redis user on each node of the cluster (each
    keeps its own users), where the store then works as that user and reaches only its keys."""
    user = f"it-rc-{new_run_id()}-aggregation"
    env = {
        "BOTSCORE_REDIS_USERNAME": user.replace("aggregation", "{role}"),
        "BOTSCORE_REDIS_PASSWORD__AGGREGATION": f"pw-{user}",
        "BOTSCORE_AGGREGATION_STATE_CLUSTER_NODES": cluster.addresses,
        env_var("redis", "username", Role.ADMIN): "",  # the admin: the default user
    }
    stack = create_redis(stack_redis_db(0))
    try:
        applied = _access(env)
        for node in ("redis", *(f"redis 127.0.0.1:{n.port}" for n in cluster.nodes)):
            assert f"{node} aggregation (user {user}): set" in applied, applied
        checked = _access(env, "--check")
        assert checked.count(f"aggregation (user {user}): as planned") == 4, checked

        settings = Settings.from_options({}, environ=env, role=Role.AGGREGATION)
        as_role = create_redis_cluster(settings.redis, cluster.addresses)
        store = RedisFeatureStore(as_role, ttl_s=600, shards=SHARDS)
        logs = recorded_logs(users=100, rate=20, duration_s=60, seed=34)
        records = [request_record(log, SourceRef("w", 0, i)) for i, log in enumerate(logs)]
        assert all(store.apply(records, now_ms=0, generation=store.read_generation()).fresh)
        assert store.due(now_ms=10**13, limit=1000).users
        # A shard's generation lost: the role records the old epoch and sweeps its keys.
        old_epoch = store.epoch
        client.delete(store.layout.generation_key(0))
        assert store.read_generation() and store.epoch != old_epoch
        while store.sweep(100).finished != old_epoch:
            assert store.sweeping
        assert user_metas_per_node(cluster, old_epoch) == [set(), set(), set()]
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_role.set("bs:edge:decision:u1", "allow")
        as_role.close()
    finally:
        for node in cluster.nodes:
            plain = node.client()
            plain.acl_deluser(user)
            plain.close()
        stack.acl_deluser(user)
        persist_users(stack)
        stack.close()


def _access(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bin/botscore", "access", "--only", "redis", *args],
        cwd=ROOT,
        env=stack_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"botscore access exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout
