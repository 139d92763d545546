"""The Redis clients built from settings: address, database, ACL user and password, TLS.

The password comes only from the environment (``BOTSCORE_REDIS_PASSWORD``, or its role's
``BOTSCORE_REDIS_PASSWORD__<ROLE>``, see ``botscore.settings``); an empty username or
password means none is sent. The client does not retry: redis-py 7 would otherwise retry
every connection error 3 times with up to 10 s backoff, and it counts a missing password
(NOAUTH) as one, hiding it for 5-12 s.

The feature state may live on a Redis Cluster (``aggregation.state_cluster_nodes``),
reached with the same user, password and TLS as ``redis``; everything else stays on the
one Redis of ``redis``.

The edge's client waits ``edge.redis_timeout_ms``, not ``redis.socket_timeout_s``: a visitor
waits on each of its reads (nginx waits 2 s for the gate), and it fails open anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from botscore.errors import ConfigError
from botscore.settings import RedisSettings, Settings, host_port, unresolved_role

__all__ = [
    "RedisClient",
    "cluster_nodes",
    "create_edge_redis",
    "create_redis",
    "create_redis_cluster",
    "primaries_of",
    "script_route",
]

# One Redis server, or a Redis Cluster: the feature state works with either.
RedisClient: TypeAlias = "redis.Redis | RedisCluster"


def create_redis(settings: RedisSettings) -> redis.Redis:
    """A client for ``settings``; it connects lazily, on the first command."""
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        **_connection(settings, settings.socket_timeout_s),
    )


def create_edge_redis(settings: Settings) -> redis.Redis:
    """The edge's client for ``settings.redis``, giving up after ``edge.redis_timeout_ms``."""
    timeout_s = settings.edge.redis_timeout_ms / 1000
    server = settings.redis
    return redis.Redis(
        host=server.host, port=server.port, db=server.db, **_connection(server, timeout_s)
    )


def _connection(settings: RedisSettings, timeout_s: float) -> dict[str, Any]:
    """What every connection to a server of ``settings`` is given: user, TLS, timeouts."""
    unresolved_role("redis.username", settings.username)
    return {
        "username": settings.username or None,
        "password": settings.password.reveal() or None,
        "ssl": settings.ssl,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), retries=0),
    }


def cluster_nodes(listed: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs; ``ConfigError`` naming what is not one."""
    nodes = []
    for item in (part.strip() for part in listed.split(",")):
        node = host_port(item)
        if node is None:
            raise ConfigError(
                f"aggregation.state_cluster_nodes: {item!r} is not host:port "
                f"(a comma-separated list of the cluster's nodes)"
            )
        nodes.append(node)
    return nodes


def create_redis_cluster(settings: RedisSettings, nodes: str) -> RedisCluster:
    """A Redis Cluster client that learns the cluster from ``nodes`` (any of its nodes
    will do), with ``settings``' user, password, TLS and timeouts; ``settings.db`` does not
    apply (a cluster has database 0 only). It connects on creation (redis-py reads the
    cluster's slots then): raises ``redis.ConnectionError`` naming the nodes when none of
    them answers."""
    startup_nodes = [
        ClusterNode(host, port)  # type: ignore[no-untyped-call]
        for host, port in cluster_nodes(nodes)
    ]
    options = _connection(settings, settings.socket_timeout_s)
    try:
        return RedisCluster(startup_nodes=startup_nodes, **options)
    except (RedisClusterException, redis.RedisError) as exc:
        raise redis.ConnectionError(f"Redis Cluster at {nodes} did not answer: {exc}") from exc


def script_route(client: RedisClient, key: str) -> dict[str, Any]:
    """Options for a script call queued in ``client``'s pipeline: on a cluster, the node that
    holds ``key`` (one of the call's keys). Without it, redis-py 7.1's cluster pipelines ask
    a node where each script call's keys are (``COMMAND GETKEYS``, one round trip per call,
    all to one node). Nothing when the slots are not known now: redis-py finds the node."""
    if not isinstance(client, RedisCluster):
        return {}
    try:
        return {"target_nodes": client.get_node_from_key(key)}  # type: ignore[no-untyped-call]
    except RedisClusterException:
        return {}


def primaries_of(client: RedisClient, keys: Iterable[str]) -> list[Any] | None:
    """The nodes holding ``keys``, each once, to send a command each of them must answer
    (queued with ``target_nodes``); ``[None]`` on one Redis (no routing), and None when a
    cluster's slots are not known now (a failover under way)."""
    if not isinstance(client, RedisCluster):
        return [None]
    nodes: dict[str, Any] = {}
    try:
        for key in keys:
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            nodes.setdefault(node.name, node)
    except RedisClusterException:
        return None
    return list(nodes.values())
