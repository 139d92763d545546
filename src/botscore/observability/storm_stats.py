"""What the Storm UI would show, read from Nimbus's Thrift API (the UI is not installable here).

``sparse stats`` needs the UI's REST API; Nimbus answers the same questions over Thrift
(``getClusterInfo``, ``getTopologyPageInfo``), which streamparse's own client speaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamparse.thrift import Nimbus
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.transport import TFramedTransportFactory

from botscore.metrics import Metrics

__all__ = [
    "WINDOWS",
    "ClusterStats",
    "ComponentStats",
    "TopologyStats",
    "nimbus_client",
    "read_cluster",
    "send_gauges",
]

ALL_TIME = ":all-time"
# The other windows Nimbus keeps figures for, in seconds: 10 minutes, 3 hours, a day.
WINDOWS = ("600", "10800", "86400")


@dataclass(frozen=True)
class ComponentStats:
    name: str
    kind: str  # "spout" or "bolt"
    executors: int
    emitted: int
    acked: int
    failed: int
    # Spouts: mean time from emit to the tuple tree's ack. Bolts: share of the window spent
    # executing (1.0 = saturated) and mean execute time.
    complete_latency_ms: float | None = None
    capacity: float | None = None
    execute_latency_ms: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class TopologyStats:
    name: str
    id: str
    status: str
    uptime_s: int
    workers: int
    executors: int
    components: list[ComponentStats]


@dataclass(frozen=True)
class ClusterStats:
    nimbus: str  # the leader's host:port, or "none" while no Nimbus leads
    supervisors: int
    slots_used: int
    slots_total: int
    topologies: list[TopologyStats]


def nimbus_client(address: str, timeout_ms: int = 7000) -> Any:
    """A Thrift client of the Nimbus at ``host:port``: framed binary, as ``sparse`` speaks it."""
    host, _, port = address.rpartition(":")
    return make_client(
        Nimbus,
        host=host,
        port=int(port),
        proto_factory=TBinaryProtocolFactory(),
        trans_factory=TFramedTransportFactory(),
        timeout=timeout_ms,
    )


def read_cluster(client: Any, window: str = ALL_TIME) -> ClusterStats:
    """The cluster and every topology's components over ``window`` (seconds, or all time)."""
    info = client.getClusterInfo()
    leaders = [f"{n.host}:{n.port}" for n in info.nimbuses if n.isLeader]
    topologies = [
        _topology(client.getTopologyPageInfo(t.id, window, False)) for t in info.topologies
    ]
    return ClusterStats(
        nimbus=leaders[0] if leaders else "none",
        supervisors=len(info.supervisors),
        slots_used=sum(s.num_used_workers for s in info.supervisors),
        slots_total=sum(s.num_workers for s in info.supervisors),
        topologies=sorted(topologies, key=lambda t: t.name),
    )


def _topology(page: Any) -> TopologyStats:
    components = [
        _component(name, "spout", stats)
        for name, stats in (page.id_to_spout_agg_stats or {}).items()
    ] + [
        _component(name, "bolt", stats) for name, stats in (page.id_to_bolt_agg_stats or {}).items()
    ]
    return TopologyStats(
        name=page.name or page.id,
        id=page.id,
        status=page.status or "unknown",
        uptime_s=page.uptime_secs or 0,
        workers=page.num_workers or 0,
        executors=page.num_executors or 0,
        components=sorted(components, key=lambda c: (c.kind != "spout", c.name)),
    )


def _component(name: str, kind: str, stats: Any) -> ComponentStats:
    common = stats.common_stats
    specific = stats.specific_stats
    spout = getattr(specific, "spout", None) if specific else None
    bolt = getattr(specific, "bolt", None) if specific else None
    return ComponentStats(
        name=name,
        kind=kind,
        executors=(common.num_executors or 0) if common else 0,
        emitted=(common.emitted or 0) if common else 0,
        acked=(common.acked or 0) if common else 0,
        failed=(common.failed or 0) if common else 0,
        complete_latency_ms=spout.complete_latency_ms if spout else None,
        capacity=bolt.capacity if bolt else None,
        execute_latency_ms=bolt.execute_latency_ms if bolt else None,
        last_error=stats.last_error.error.splitlines()[0] if stats.last_error else None,
    )


def send_gauges(stats: ClusterStats, metrics: Metrics) -> None:
    """The figures as DogStatsD gauges (``botscore.storm.*``), tagged by topology and component:
    what Datadog's Storm check would read from the UI's REST API."""
    metrics.gauge("supervisors", stats.supervisors)
    metrics.gauge("slots_used", stats.slots_used)
    metrics.gauge("slots_total", stats.slots_total)
    for topology in stats.topologies:
        tags = [f"topology:{topology.name}"]
        metrics.gauge("uptime_s", topology.uptime_s, tags=tags)
        metrics.gauge("workers", topology.workers, tags=tags)
        for c in topology.components:
            component_tags = [*tags, f"storm_component:{c.name}"]
            metrics.gauge("emitted", c.emitted, tags=component_tags)
            metrics.gauge("acked", c.acked, tags=component_tags)
            metrics.gauge("failed", c.failed, tags=component_tags)
            if c.complete_latency_ms is not None:
                metrics.gauge("complete_latency_ms", c.complete_latency_ms, tags=component_tags)
            if c.capacity is not None:
                metrics.gauge("capacity", c.capacity, tags=component_tags)
