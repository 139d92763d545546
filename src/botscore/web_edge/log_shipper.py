"""The web server's access log onto the web-logs topic, each request at least once.

Lines are read in batches from the saved position (``log_tail``), sent as ``WebLog``s keyed
by user id, and the position after a batch is saved only once Kafka confirmed every send
of it: a crash, a kill or a broker outage makes the batch be sent again, never skipped.
The feature stage drops the copies by request id. What is not sent:

- requests the edge blocked: a blocked client is not served, and the feature stage has
  never counted what it did not serve (the simulator sends none either);

(Requests nginx served while the gate did not answer are sent, counted ``unchecked``.)
- lines that are no request (``errors.UnreadableLine``): each is logged with its place
  in the file and its reason, and counted.

``edge.access_log_format`` says how lines are written: nginx's ``botscore`` format, or the
common or combined format of a web server without the gate (``combined_log``), whose
requests get ids from their place in the file and are all sent.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from pathlib import Path

from kafka.errors import KafkaError

from botscore.errors import ConfigError, UnreadableLine
from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.transport.delivery import FLUSH_MARGIN_S, SendRetries
from botscore.transport.kafka_clients import create_producer
from botscore.vocabulary import Component, Decision
from botscore.web_edge.access_log import Networks
from botscore.web_edge.identity import edge_keys
from botscore.web_edge.log_formats import line_reader
from botscore.web_edge.log_tail import LogTail, Position, load_position, save_position

__all__ = ["BATCH_LINES", "position_file", "ship_access_log"]

log = logging.getLogger(__name__)

BATCH_LINES = 1000
_IDLE_S = 0.2


def position_file(access_log: Path) -> Path:
    """Where the position of the last shipped line is kept: next to the log."""
    return access_log.with_name(access_log.name + ".shipped")


def ship_access_log(settings: Settings, stop: threading.Event) -> None:
    """Ship ``edge.access_log`` until ``stop`` is set; the last batch finishes first."""
    access_log = Path(settings.edge.access_log)
    if access_log.is_dir():
        raise ConfigError(f"edge.access_log: {access_log} is a directory, not nginx's access log")
    if not access_log.exists():  # nginx creates it with its first request, or a path is wrong
        log.warning("%s does not exist (yet): waiting for it to appear", access_log)
    saved = position_file(access_log)
    datacenters = Networks(settings.edge.datacenter_networks.split(","))
    node = socket.gethostname()
    read_line = line_reader(settings.edge.access_log_format, datacenters, edge_keys(settings), node)
    topic = settings.aggregation.web_logs_topic
    metrics = Metrics(settings.metrics, Component.LOG_SHIPPER)
    producer = create_producer(settings.kafka, client_id=f"botscore-{Component.LOG_SHIPPER}")
    flush_s = settings.kafka.producer_delivery_timeout_ms / 1000 + FLUSH_MARGIN_S
    retries = SendRetries(log)
    start = load_position(saved)
    tail = LogTail(access_log, start)
    log.info(
        "shipping %s (%s format) to %s from %s",
        access_log,
        settings.edge.access_log_format,
        topic,
        start or "its start",
    )
    report_every_s = settings.kafka.lag_interval_ms / 1000
    reported_at = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - reported_at >= report_every_s:
                metrics.gauge("unshipped_bytes", tail.unread_bytes())
                reported_at = time.monotonic()
            batch = tail.read_lines(BATCH_LINES)
            if not batch:
                stop.wait(_IDLE_S)
                continue
            outcomes: Counter[str] = Counter()
            futures = []
            try:
                for line, end in batch:
                    try:
                        request = read_line(line, f"{node}:{end.inode}:{end.offset}")
                    except UnreadableLine as exc:
                        _refuse(access_log, end, len(line), line, exc)
                        outcomes[f"refused:{exc.reason}"] += 1
                        continue
                    if request.decision is Decision.BLOCK:
                        outcomes["blocked"] += 1
                        continue
                    web_log = request.web_log
                    futures.append(
                        producer.send(
                            topic,
                            key=web_log.user_id.encode(),
                            value=web_log.SerializeToString(),
                        )
                    )
                    # unchecked: sent too, served while the gate did not answer
                    outcomes["sent" if request.checked else "unchecked"] += 1
                producer.flush(timeout=flush_s)
                for future in futures:
                    future.get(timeout=0)  # raises the send's own error
            except KafkaError as exc:
                delay = retries.failed(
                    f"a batch of {len(batch)} lines", exc, " (position not saved)"
                )
                tail.seek(load_position(saved))
                stop.wait(delay)
                continue
            retries.confirmed()
            save_position(saved, batch[-1][1])
            for outcome, count in outcomes.items():
                kind, _, reason = outcome.partition(":")
                tags = [f"outcome:{kind}"] + ([f"reason:{reason}"] if reason else [])
                metrics.count("lines", count, tags=tags)
    finally:
        producer.close(timeout=5)
        metrics.close()
        log.info("stopped at %s", load_position(saved))


def _refuse(access_log: Path, end: Position, length: int, line: bytes, exc: UnreadableLine) -> None:
    log.error(
        "%s: the line at bytes %d-%d (inode %d) is no request, not shipped: %s; the line: %r",
        access_log,
        end.offset - length - 1,
        end.offset,
        end.inode,
        exc,
        line[:500],
    )
