"""What the real edge costs: requests/s through nginx and its gate, and log lines/s shipped.

Starts nginx (``stack/nginx/nginx.sh``, a state folder and ports of its own), ``botscore edge
gate`` on the stack's Redis (database 7, emptied) and, for the last figures, ``botscore
edge ship`` on nginx's two logs of the same requests (its ``botscore`` format and its
default ``combined``), each to a topic of its own. The load is ``CLIENTS`` Python threads,
each with one keep-alive connection and a user of its own, for ``SECONDS`` s: on a 2-core
machine the clients, nginx and the gate share the cores, so the figures are a floor. Prints
figures only; no assertions. Needs the local broker and Redis (`make up`). Run with `make bench`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import redis
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from botscore.settings import Settings, load_project_settings
from botscore.transport.kafka_clients import connection_config, ensure_topics
from botscore.transport.topic_reader import read_to_end

# A sibling module: run as a script, this directory is on sys.path.
from figures import keep_figures

ROOT = Path(__file__).resolve().parents[1]
NGINX_SH = ROOT / "stack" / "nginx" / "nginx.sh"
CLIENTS = 8
SECONDS = 15.0
REDIS_DB = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(port: int, path: str, seconds: float) -> tuple[int, list[float], int]:
    """Requests answered, their latencies (s), and answers other than 200 or 204."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    others = [0] * CLIENTS

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"User-Agent": f"Mozilla/5.0 bench-client-{index}"}
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies[index].append(time.perf_counter() - started)
            if response.status not in (200, 204):
                others[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [x for per_client in latencies for x in per_client]
    return len(flat), flat, sum(others)


def _report(label: str, answered: int, latencies: list[float], others: int, seconds: float) -> None:
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(
        f"{label:<34} {answered / seconds:>8,.0f} requests/s   p50 {p50:5.1f} ms   "
        f"p99 {p99:5.1f} ms   refused: {others}"
    )


def _ship(log: Path, env: dict[str, str], settings: Settings, topic: str, log_format: str) -> float:
    """Run `botscore edge ship` on ``log`` until its position reaches the end: lines/s."""
    lines = sum(1 for _ in log.open("rb"))
    shipper = subprocess.Popen(
        [str(ROOT / "bin" / "botscore"), "edge", "ship"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    saved = log.with_name(log.name + ".shipped")
    try:
        while not (saved.exists() and f'"offset": {log.stat().st_size}' in saved.read_text()):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        shipper.terminate()
        shipper.wait(30)
    consumer = KafkaConsumer(**connection_config(settings.kafka), enable_auto_commit=False)
    on_topic = sum(1 for _ in read_to_end(consumer, topic))
    consumer.close()
    print(
        f"log shipper ({log_format}): {lines:,} access-log lines to {on_topic:,} WebLogs on "
        f"Kafka in {elapsed:.1f} s, with its start: {lines / elapsed:,.0f} lines/s"
    )
    return lines / elapsed


def main() -> None:
    settings = load_project_settings()
    state = Path(tempfile.mkdtemp(prefix="bench-web-edge-"))
    port, gate_port = _free_port(), _free_port()
    topic = f"bench-web-edge-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BOTSCORE_STATE": str(state),
        "EDGE_PORT": str(port),
        "BOTSCORE_EDGE_GATE_PORT": str(gate_port),
        "BOTSCORE_EDGE_SECRET": uuid.uuid4().hex * 2,
        "BOTSCORE_EDGE_ACCESS_LOG": str(state / "nginx" / "access.log"),
        "BOTSCORE_REDIS_DB": str(REDIS_DB),
        "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": topic,
        "BOTSCORE_METRICS_ENABLED": "false",
    }
    store = redis.Redis(host=settings.redis.host, port=settings.redis.port, db=REDIS_DB)
    store.flushdb()
    ensure_topics(settings.kafka, [topic])
    subprocess.run([str(NGINX_SH), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    gate = subprocess.Popen(
        [str(ROOT / "bin" / "botscore"), "edge", "gate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # the gate's start
            try:
                socket.create_connection(("127.0.0.1", gate_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or gate.poll() is not None:
                    raise SystemExit("botscore edge gate did not start within 30 s") from None
                time.sleep(0.1)
        print(f"{CLIENTS} keep-alive clients for {SECONDS:.0f} s each, one user each")
        rates = {}
        for figure, label, target, path in (
            ("gate_requests_per_s", "the gate alone (its /check)", gate_port, "/check"),
            ("nginx_requests_per_s", "a page through nginx and the gate", port, "/products/1"),
        ):
            answered, latencies, others = _load(target, path, SECONDS)
            _report(label, answered, latencies, others, SECONDS)
            rates[figure] = answered / SECONDS
        shipped = {}
        # The same requests in both formats nginx writes: its `botscore` log and its
        # default `combined` one (edge.access_log_format), each to a topic of its own.
        for figure, log_name, log_format, topic_name in (
            ("shipper_lines_per_s", "access.log", "botscore", topic),
            ("shipper_combined_lines_per_s", "access-combined.log", "combined", f"{topic}-c"),
        ):
            ensure_topics(settings.kafka, [topic_name])
            shipped[figure] = _ship(
                state / "nginx" / log_name,
                {
                    **env,
                    "BOTSCORE_EDGE_ACCESS_LOG": str(state / "nginx" / log_name),
                    "BOTSCORE_EDGE_ACCESS_LOG_FORMAT": log_format,
                    "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": topic_name,
                },
                settings,
                topic_name,
                log_format,
            )
        keep_figures(**rates, **shipped)
    finally:
        gate.terminate()
        gate.wait(30)
        subprocess.run([str(NGINX_SH), "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
        admin = KafkaAdminClient(**connection_config(settings.kafka))
        admin.delete_topics([topic, f"{topic}-c"])
        admin.close()
        store.flushdb()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
