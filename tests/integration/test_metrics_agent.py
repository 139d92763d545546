"""No agent, or an agent name that does not resolve: the topology scores all the same.

Both runs score the same stream of users, one with the agent's address at a loopback port
nobody listens on (the kernel answers each datagram with "port unreachable"), one with a
name that never resolves: their rates are reported side by side.

Metrics are fire-and-forget UDP; the one thing that could slow a component is looking the
agent's name up, which the DogStatsD client alone would do for every datagram. Each
component looks it up once, warns once, and sends nothing until a retry a minute later.
"""

from __future__ import annotations

import math
import time

import pytest

from botscore.metrics import RESOLVE_RETRY_S
from botscore.wire.codec import decode_threat_score

from .faults import free_port
from .harness import (
    consume_all,
    delete_topics,
    fresh_topics,
    read_topic,
    run_topics,
    scoring_group,
    sparse_run,
    wait_committed_to_end,
)
from .stream import produce, valid_users

pytestmark = [pytest.mark.integration, pytest.mark.metrics]

USERS = 20_000
CLOSED = "a closed port"


@pytest.mark.parametrize(
    "agent",
    [
        pytest.param(CLOSED, id="closed-port"),
        # .invalid never resolves (RFC 6761)
        pytest.param("agent.invalid", id="name-that-does-not-resolve"),
    ],
)
def test_no_agent_slows_nothing(kafka_settings, storm_on_path, tmp_path, report_figure, agent):
    settings = fresh_topics(kafka_settings)
    sent = produce(settings, valid_users(USERS, seed=51))
    log_path = tmp_path / "sparse-run.log"
    host, port = ("127.0.0.1", str(free_port())) if agent == CLOSED else (agent, "8125")
    started = time.monotonic()
    try:
        with sparse_run(
            settings,
            log_path,
            BOTSCORE_METRICS_STATSD_HOST=host,
            BOTSCORE_METRICS_STATSD_PORT=port,
        ) as run:
            consume_all(settings, settings.scores_topic, USERS, 600, run, log_path)
            wait_committed_to_end(
                settings, scoring_group(settings), settings.features_topic, 120, run
            )
            scores = [
                decode_threat_score(r.value) for r in read_topic(settings, settings.scores_topic)
            ]
        log = log_path.read_text(errors="replace")
        lifetime_s = time.monotonic() - started
    finally:
        delete_topics(settings, run_topics(settings))
    scored_ms = [s.scored_time_ms for s in scores]
    span_s = (max(scored_ms) - min(scored_ms)) / 1000
    report_figure(
        f"metrics agent at {agent if agent == CLOSED else 'a name that does not resolve'}: "
        f"{len(scores)} scores, first to last {span_s:.2f} s = "
        f"{len(scores) / span_s:.0f} users/s"
    )
    assert sorted((s.source.partition, s.source.offset) for s in scores) == sorted(sent)
    if agent != CLOSED:
        # one warning per component process (spout, classifier, producer) and retry, not
        # one per datagram
        warnings = log.count("agent.invalid:8125 does not resolve")
        most = 3 * (1 + math.ceil(lifetime_s / RESOLVE_RETRY_S))
        assert 1 <= warnings <= most, f"{warnings} warnings about the agent's name"
