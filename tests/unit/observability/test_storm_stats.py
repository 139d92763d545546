import time
from dataclasses import replace
from types import SimpleNamespace as NS

from botscore.cli.storm import render
from botscore.metrics import Metrics
from botscore.observability.storm_stats import read_cluster, send_gauges
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component
from tests.statsd import StatsdListener


def _stats(emitted, acked, failed, spout=None, bolt=None, error=None):
    return NS(
        common_stats=NS(num_executors=1, emitted=emitted, acked=acked, failed=failed),
        specific_stats=NS(spout=spout, bolt=bolt),
        last_error=NS(error=error) if error else None,
    )


class _Nimbus:
    """Answers the two Thrift calls ``read_cluster`` makes, as Storm 2.8's Nimbus shapes them."""

    def __init__(self):
        self.windows = []

    def getClusterInfo(self):
        return NS(
            nimbuses=[
                NS(host="10.0.0.2", port=6627, isLeader=False),
                NS(host="10.0.0.1", port=6627, isLeader=True),
            ],
            supervisors=[
                NS(num_workers=2, num_used_workers=2),
                NS(num_workers=2, num_used_workers=0),
            ],
            topologies=[NS(id="scoring-1-7"), NS(id="aggregation-2-9")],
        )

    def getTopologyPageInfo(self, topology_id, window, include_sys):
        self.windows.append((topology_id, window, include_sys))
        name = topology_id.split("-")[0]
        return NS(
            id=topology_id,
            name=name,
            status="ACTIVE",
            uptime_secs=42,
            num_workers=2,
            num_executors=5,
            id_to_spout_agg_stats={
                "features": _stats(900, 880, 3, spout=NS(complete_latency_ms=12.5))
            },
            id_to_bolt_agg_stats={
                "producer": _stats(0, 870, 0, bolt=NS(capacity=0.25, execute_latency_ms=0.5)),
                "classifier": _stats(
                    880,
                    880,
                    0,
                    bolt=NS(capacity=0.9, execute_latency_ms=3.25),
                    error="java.lang.RuntimeException: boom\n\tat x",
                ),
            },
        )


def test_read_cluster_collects_the_leader_slots_and_every_component():
    nimbus = _Nimbus()
    stats = read_cluster(nimbus, window="600")
    assert stats.nimbus == "10.0.0.1:6627"
    assert (stats.supervisors, stats.slots_used, stats.slots_total) == (2, 2, 4)
    assert [t.name for t in stats.topologies] == ["aggregation", "scoring"]
    assert nimbus.windows == [("scoring-1-7", "600", False), ("aggregation-2-9", "600", False)]
    scoring = stats.topologies[1]
    assert [c.name for c in scoring.components] == ["features", "classifier", "producer"]
    features, classifier, _ = scoring.components
    assert (features.kind, features.emitted, features.acked, features.failed) == (
        "spout",
        900,
        880,
        3,
    )
    assert features.complete_latency_ms == 12.5 and features.capacity is None
    assert (classifier.capacity, classifier.execute_latency_ms) == (0.9, 3.25)
    assert classifier.last_error == "java.lang.RuntimeException: boom"


def test_a_cluster_without_a_leader_says_so():
    nimbus = _Nimbus()
    nimbus.getClusterInfo = lambda: NS(nimbuses=[], supervisors=[], topologies=[])
    stats = read_cluster(nimbus)
    assert (stats.nimbus, stats.topologies) == ("none", [])
    assert render(stats) == "nimbus none; 0 supervisors, 0 of 0 slots used"


def test_render_prints_one_row_per_component_with_its_latency_and_capacity():
    out = render(read_cluster(_Nimbus()))
    assert "scoring (ACTIVE, up 42 s, 2 workers, 5 executors)" in out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.startswith("  ") and "component" not in line
    ]
    assert ["features", "spout", "1", "900", "880", "3", "12.500", "-"] in rows
    assert ["classifier", "bolt", "1", "880", "880", "0", "3.250", "0.900"] in rows
    assert "    last error: java.lang.RuntimeException: boom" in out


def test_a_long_component_name_never_runs_into_its_kind():
    stats = read_cluster(_Nimbus())
    topology = stats.topologies[0]
    long = replace(topology.components[1], name="shadow_producer")
    topology = replace(topology, components=[*topology.components, long])
    lines = render(replace(stats, topologies=[topology])).splitlines()
    assert ["shadow_producer", "bolt", "1", "880", "880", "0", "3.250", "0.900"] in [
        line.split() for line in lines
    ]
    header = next(line for line in lines if "component" in line)
    row = next(line for line in lines if "shadow_producer" in line)
    assert header.index("kind") == row.index("bolt")


def test_the_figures_reach_a_real_udp_listener_as_tagged_gauges():
    stats = read_cluster(_Nimbus())
    with StatsdListener() as listener:
        metrics = Metrics(MetricsSettings(statsd_port=listener.port), Component.STORM)
        send_gauges(stats, metrics)
        metrics.close()
        # The client sends several datagrams, and a metric's tags arrive over several of them
        # (one per component): wait until each metric has arrived with the tags it must have.
        wanted = {
            "botscore.storm.capacity": {
                "topology:scoring",
                "storm_component:classifier",
                "component:storm",
            },
            "botscore.storm.complete_latency_ms": {"storm_component:features"},
            "botscore.storm.supervisors": set(),
            "botscore.storm.workers": set(),
            "botscore.storm.acked": set(),
        }

        def arrived() -> bool:
            received = listener.tags_by_metric()
            return all(name in received and tags <= received[name] for name, tags in wanted.items())

        deadline = time.monotonic() + 5
        while not arrived():
            assert time.monotonic() < deadline, (
                f"still missing some of {wanted}: {listener.tags_by_metric()}"
            )
            time.sleep(0.05)
        received = listener.tags_by_metric()
    assert "storm_component:features" not in received["botscore.storm.capacity"]
