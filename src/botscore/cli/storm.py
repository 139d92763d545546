"""``botscore storm``: topologies, workers and per-component figures from Nimbus.

What ``sparse stats`` would print if the Storm UI (whose REST API it reads) could be
installed: read from Nimbus's Thrift API instead, at the ``nimbus`` address of the
``config.json`` environment (``-e cluster``) unless ``--nimbus`` says otherwise.
"""

from __future__ import annotations

import argparse
import time

from thriftpy2.transport import TTransportException

from botscore.cli.command import Subparsers, seconds
from botscore.errors import BotscoreError
from botscore.metrics import Metrics
from botscore.observability.storm_stats import (
    ALL_TIME,
    WINDOWS,
    ClusterStats,
    nimbus_client,
    read_cluster,
    send_gauges,
)
from botscore.settings import Settings, host_port, project_env
from botscore.vocabulary import Component, Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("storm", help="the cluster's topologies and components")
    parser.add_argument("--nimbus", help="HOST:PORT (default: the environment's nimbus)")
    parser.add_argument(
        "--window",
        default=ALL_TIME,
        choices=(*WINDOWS, ALL_TIME),
        help="seconds the figures cover (default: all time)",
    )
    parser.add_argument(
        "--send", action="store_true", help="also send them as DogStatsD gauges (botscore.storm.*)"
    )
    parser.add_argument(
        "--every", type=seconds, help="repeat every this many seconds (default: once)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def run(settings: Settings, args: argparse.Namespace) -> int:
    address = args.nimbus or project_env(args.config, args.environment).get("nimbus", "")
    if not address:
        raise BotscoreError("no Nimbus address: pass --nimbus HOST:PORT or use -e cluster")
    if host_port(str(address)) is None:
        raise BotscoreError(
            f"the Nimbus address must be HOST:PORT, with a port from 1 to 65535: {address!r}"
        )
    metrics = Metrics(settings.metrics, Component.STORM) if args.send else None
    while True:
        try:
            stats = read_cluster(nimbus_client(address), args.window)
        except TTransportException as exc:
            raise BotscoreError(
                f"Nimbus at {address} did not answer ({exc}); is it up? make cluster"
            ) from None
        print(render(stats), flush=True)
        if metrics is not None:
            send_gauges(stats, metrics)
            metrics.flush()
        if args.every is None:
            return 0
        time.sleep(args.every)


def render(stats: ClusterStats) -> str:
    lines = [
        f"nimbus {stats.nimbus}; {stats.supervisors} supervisors, "
        f"{stats.slots_used} of {stats.slots_total} slots used"
    ]
    for topology in stats.topologies:
        lines.append(
            f"\n{topology.name} ({topology.status}, up {topology.uptime_s} s, "
            f"{topology.workers} workers, {topology.executors} executors)"
        )
        # As wide as the longest name and a space, so that no name runs into its kind.
        width = max([len("component"), *(len(c.name) for c in topology.components)]) + 1
        lines.append(
            f"  {'component':<{width}}{'kind':<7}{'exec':>5}{'emitted':>11}{'acked':>11}"
            f"{'failed':>9}{'latency ms':>12}{'capacity':>10}"
        )
        for c in topology.components:
            latency = c.complete_latency_ms if c.kind == "spout" else c.execute_latency_ms
            lines.append(
                f"  {c.name:<{width}}{c.kind:<7}{c.executors:>5}{c.emitted:>11}{c.acked:>11}"
                f"{c.failed:>9}{_num(latency):>12}{_num(c.capacity):>10}"
            )
            if c.last_error:
                lines.append(f"    last error: {c.last_error}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
