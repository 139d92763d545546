"""``botscore edge gate|ship``: the two processes beside nginx, each until Ctrl-C.

``gate`` answers nginx's ``auth_request`` for every request (``web_edge.gate``); ``ship``
sends nginx's access log to the web-logs topic (``web_edge.log_shipper``).
``stack/nginx/nginx.sh`` starts nginx configured for both.
"""

from __future__ import annotations

import argparse
import logging
import threading

from botscore.cli.command import Subparsers, service_logs, stop_on_signals
from botscore.enforcement.edge import EdgeDecisions
from botscore.errors import ConfigError
from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.transport.redis_client import create_edge_redis
from botscore.vocabulary import Component, Role
from botscore.web_edge.gate import Gate, GateServer
from botscore.web_edge.identity import edge_keys
from botscore.web_edge.log_shipper import ship_access_log

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "edge", help="nginx's gate (decisions per request) or its log shipper, until Ctrl-C"
    )
    parser.add_argument(
        "process",
        choices=("gate", "ship"),
        help="gate: answer nginx's auth_request from Redis's decisions; ship: send nginx's "
        "access log to the web-logs topic",
    )
    parser.set_defaults(run=run, role=Role.EDGE)


def run(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    if args.process == "ship":
        service_logs(Component.LOG_SHIPPER)
        stop_on_signals(stop)
        ship_access_log(settings, stop)
        return 0
    service_logs(Component.EDGE)
    keys = edge_keys(settings)
    metrics = Metrics(settings.metrics, Component.EDGE)
    gate = Gate(
        keys,
        EdgeDecisions(
            create_edge_redis(settings),
            settings.edge.decision_cache_ms,
            retry_ms=settings.edge.redis_retry_ms,
        ),
        metrics,
    )
    try:
        server = GateServer(("127.0.0.1", settings.edge.gate_port), gate)
    except OSError as exc:
        raise ConfigError(
            f"the gate cannot listen on 127.0.0.1:{settings.edge.gate_port} "
            f"(edge.gate_port): {exc.strerror}; gates share a port, other programs cannot"
        ) from None
    stop_on_signals(stop)
    serving = threading.Thread(target=server.serve_forever, name="gate", daemon=True)
    serving.start()
    log.info("answering nginx on 127.0.0.1:%d", settings.edge.gate_port)
    stop.wait()
    server.shutdown()
    server.server_close()
    metrics.close()
    return 0
