"""The feature state on a real Redis Cluster whose primaries have a replica each (two, in
one test): a primary killed, its replica takes over, and no request the feature stage
acked is lost.

Redis replicates asynchronously: a batch a primary took is acked only once its replica
confirmed it (``aggregation.state_replicas``, ``WAIT``), so a batch the replica may lack is
replayed instead. After a failover the new primary has no replica until the old one comes
back as its replica: batches wait for that, and then every user's features equal offline,
with the state's generation (and so its epoch) unchanged: nothing is rebuilt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from botscore.aggregation.definitions import compute_features, request_record
from botscore.aggregation.offline import final_features
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.errors import StateNotReplicated
from botscore.settings import KafkaSettings
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import RequestRecord, SourceRef

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
from .faults import LocalRedisCluster, RedisClusterNode
from .harness import read_topic, wait_committed_to_end, wait_for
from .wire_proofs import assert_failure_metrics_sent

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]

# Six nodes on 7331-7336 (three primaries, then their replicas), 17331-17336 for the bus.
FIRST_PORT = 7331
SHARDS = 48
REDIS_DB = 15  # the stack's Redis, a database of this module's own (see test_redis_cluster)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    state = tmp_path_factory.mktemp("redis-failover")
    with LocalRedisCluster(state, FIRST_PORT, replicas=1).running() as local:
        yield local


@pytest.fixture
def client(cluster: LocalRedisCluster) -> Iterator[redis.RedisCluster]:
    with cluster.empty_client() as client:
        yield client


def a_primary(cluster: LocalRedisCluster) -> RedisClusterNode:
    """A node that is a primary now (an earlier failover may have swapped roles)."""
    return next(node for node in cluster.nodes if node.role()[0] == "master")


def half_stored(
    client: redis.RedisCluster, seed: int
) -> tuple[RedisFeatureStore, str, list[WebLog], list[RequestRecord]]:
    """A store that waits for one replica, the first half of a stream's requests stored in
    it: the store, its generation, the stream and the requests left to store."""
    store = RedisFeatureStore(client, ttl_s=3600, shards=SHARDS, replicas=1, replica_wait_ms=300)
    generation = store.read_generation()
    logs = recorded_logs(users=200, rate=40, duration_s=300, seed=seed)
    records = [request_record(log, SourceRef("w", 0, i)) for i, log in enumerate(logs)]
    half = len(records) // 2
    assert all(store.apply(records[:half], now_ms=0, generation=generation).fresh)
    return store, generation, logs, records[half:]


def assert_exact(store: RedisFeatureStore, generation: str, logs: list[WebLog]) -> list[str]:
    """Every user's features equal offline, in the same generation; returns the users."""
    expected = final_features(logs)
    users = sorted(expected)
    assert all(
        candidate is not None and compute_features(candidate.state) == expected[user].features
        for user, candidate in zip(users, store.read(users), strict=True)
    ), "a request counted twice or lost across the failover"
    assert store.read_generation() == generation, "the failover started the state over"
    return users


def storing(
    store: RedisFeatureStore, records: list[RequestRecord], generation: str, refusals: list[str]
) -> Callable[[], bool]:
    """A try at storing ``records``: True once stored, False while a primary refuses them
    (its refusal added to ``refusals``) or the client is still learning where the slots
    went."""

    def attempt() -> bool:
        try:
            store.apply(records, now_ms=0, generation=generation)
        except StateNotReplicated as exc:
            refusals.append(str(exc))
            return False
        except redis.RedisError:
            return False
        return True

    return attempt


def test_a_batch_its_replica_lacks_is_refused_and_stored_once_after_the_failover(
    cluster, client, report_figure
):
    store, generation, logs, rest = half_stored(client, seed=35)

    primary = a_primary(cluster)
    replica = cluster.replica_of(primary)
    with replica.frozen():
        with pytest.raises(StateNotReplicated, match=f"127.0.0.1:{primary.port} had 0 of 1"):
            store.apply(rest, now_ms=0, generation=generation)
        primary.kill()
    promoted = wait_for("the replica promoted", lambda: replica.role()[0] == "master", 30)

    # The new primary has no replica yet: the batch is refused, naming it.
    refusals: list[str] = []
    replayed = storing(store, rest, generation, refusals)

    wait_for("the batch refused by the new primary", lambda: bool(refusals) or replayed(), 30)
    assert refusals, "a primary with no replica confirmed a batch"
    assert f"127.0.0.1:{replica.port} had 0 of 1" in refusals[-1]
    primary.start()  # rejoins as the new primary's replica
    assert primary.role() == ("slave", replica.port)
    caught_up = wait_for("the batch stored once the old primary is back", replayed, 60)

    users = assert_exact(store, generation, logs)
    report_figure(
        f"Redis Cluster failover: replica promoted {promoted:.1f} s after its primary's kill; "
        f"the refused batch stored {caught_up:.1f} s after the old primary was back, "
        f"all {len(users)} users exact"
    )


# Nine nodes on 7341-7349: three primaries with two replicas each.
TWO_REPLICAS_FIRST_PORT = 7341


def test_with_two_replicas_each_a_failover_does_not_stop_the_batches(tmp_path: Path, report_figure):
    """The README's advice: one replica more than ``state_replicas``. A primary killed and
    left dead, one of its two replicas takes over and the other follows it, so batches are
    confirmed again without the old primary coming back."""
    with (
        LocalRedisCluster(tmp_path, TWO_REPLICAS_FIRST_PORT, replicas=2).running() as cluster,
        cluster.empty_client() as client,
    ):
        store, generation, logs, rest = half_stored(client, seed=36)

        primary = a_primary(cluster)
        replicas = [node for node in cluster.nodes if node.role() == ("slave", primary.port)]
        assert len(replicas) == 2, [node.role() for node in cluster.nodes]
        primary.kill()
        killed = time.monotonic()
        refusals: list[str] = []
        stored = storing(store, rest, generation, refusals)

        wait_for("the batch stored with the old primary still dead", stored, 60)
        resumed = time.monotonic() - killed
        [promoted] = [node for node in replicas if node.role()[0] == "master"]
        [follower] = [node for node in replicas if node is not promoted]
        assert follower.role() == ("slave", promoted.port)

        users = assert_exact(store, generation, logs)
    report_figure(
        f"Redis Cluster failover with two replicas per primary: batches confirmed again "
        f"{resumed:.1f} s after a primary's kill, without it ({len(refusals)} refusals "
        f"meanwhile), all {len(users)} users exact"
    )


@pytest.fixture
def agg_topics(kafka_settings: KafkaSettings) -> Iterator[AggTopics]:
    with agg_topics_of_a_run(kafka_settings, REDIS_DB) as topics:
        yield topics


def test_the_aggregation_topology_loses_nothing_when_a_primary_fails_over(
    cluster, client, agg_topics, storm_on_path, tmp_path: Path, report_figure
):
    """Under a steady stream a primary is killed: its replica takes over, batches wait
    until the old primary is back as its replica, and every user's features equal offline
    without a rebuild."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=36)
    cut = len(logs) // 2
    feed(agg_topics, logs[:cut])
    log_path = tmp_path / "sparse-run.log"
    with aggregation_topology(
        agg_topics,
        log_path,
        BOTSCORE_AGGREGATION_STATE_CLUSTER_NODES=cluster.addresses,
        BOTSCORE_AGGREGATION_STATE_REPLICAS="1",
        BOTSCORE_AGGREGATION_STATE_REPLICA_WAIT_MS="500",
    ) as (metrics, features, process):
        wait_for("features published before the kill", lambda: features.total >= 200, 180)
        assert process.poll() is None, log_path.read_text()[-3000:]
        generation = feature_state(client).read_generation()
        sender = threading.Thread(target=feed_paced, args=(agg_topics, logs[cut:]))
        sender.start()
        time.sleep(1.0)  # the second half is arriving
        primary = a_primary(cluster)
        replica = cluster.replica_of(primary)
        primary.kill()
        promoted = wait_for("the replica promoted", lambda: replica.role()[0] == "master", 30)
        time.sleep(3.0)  # batches for the new primary wait: it has no replica
        primary.start()
        back = time.monotonic()
        sender.join()
        features.wait_until_equal(final_features(logs), 300, process, explainer(agg_topics, client))
        took = time.monotonic() - back
        ends = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
        )
        received = metrics.tags_by_metric()
    run_log = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation on a Redis Cluster with replicas: a primary killed mid-stream, its "
        f"replica promoted {promoted:.1f} s later; all {len(final_features(logs))} users' "
        f"features equal offline {took:.0f} s after the old primary was back as a replica "
        f"({len(logs)} WebLogs, no rebuild)"
    )
    assert sum(ends.values()) == len(logs)
    assert f"127.0.0.1:{replica.port} had 0 of 1 replica(s) confirm" in run_log
    assert "the state downstream was lost" not in run_log
    assert feature_state(client).read_generation() == generation
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
    assert_failure_metrics_sent(
        "test_the_aggregation_topology_loses_nothing_when_a_primary_fails_over", received
    )
