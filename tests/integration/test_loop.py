"""The whole loop: simulated edge -> aggregation -> scoring -> enforcement -> edge.

A simulated hour runs 20 times faster than real time through both topologies under
`sparse run`, the enforcement consumer (`botscore enforce`) and the real broker and
Redis. Once the first scores arrive, bots must get through far less often. Every process
sends its metrics to a real UDP listener: each metric a dashboard or monitor graphs must
arrive with the tags its queries group by (those sent only on failures come from the
fault tests' runs instead, ``wire_proofs.py``; a few unusable messages make the dead-letter
metrics appear).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest

from botscore.enforcement.edge import EdgeDecisions
from botscore.settings import AggregationSettings, MetricsSettings, Settings
from botscore.simulator.run import simulate
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.visits import summarize_visits
from botscore.transport.redis_client import create_redis
from tests.statsd import StatsdListener

from .harness import (
    ROOT,
    delete_topics,
    fresh_topics,
    new_run_id,
    run_topics,
    sparse_run,
    stack_env,
    stack_redis_db,
    wait_until_reading,
)
from .stream import produce
from .wire_proofs import healthy_metrics, missing_from

pytestmark = [pytest.mark.integration, pytest.mark.aggregation, pytest.mark.metrics]

REDIS_DB = 5
SPEEDUP = 20


def test_a_simulated_hour_blocks_bots_once_scores_arrive(
    kafka_settings, storm_on_path, tmp_path, report_figure
):
    run = new_run_id()
    web_logs = f"it-loop-web-logs-{run}"
    kafka = fresh_topics(kafka_settings, prefix="it-loop", run=run, also=(web_logs,))
    topics = [web_logs, *run_topics(kafka)]
    settings = Settings(
        kafka=kafka,
        aggregation=AggregationSettings(
            web_logs_topic=web_logs, consumer_group=f"it-loop-agg-{run}"
        ),
        redis=stack_redis_db(REDIS_DB),
    )
    spec = SimulationSpec(
        users=2000, bot_share=0.3, rate=30, duration_s=3600, seed=41, speedup=SPEEDUP
    )
    client = create_redis(settings.redis)
    client.flushdb()
    # Simulated time outruns the wall clock: both clock checks must allow the lead.
    skew_ms = str(spec.clock_lead_ms + 60_000)
    env = {
        "BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": skew_ms,
        "BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS": skew_ms,
        "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": settings.aggregation.web_logs_topic,
        "BOTSCORE_AGGREGATION_CONSUMER_GROUP": settings.aggregation.consumer_group,
        "BOTSCORE_REDIS_DB": str(REDIS_DB),
        "BOTSCORE_ENFORCEMENT_CONSUMER_GROUP": f"it-loop-edge-{run}",
    }
    agg_log, scoring_log = tmp_path / "aggregation.log", tmp_path / "scoring.log"
    with StatsdListener() as listener:
        env["BOTSCORE_METRICS_STATSD_PORT"] = str(listener.port)
        try:
            with sparse_run(kafka, agg_log, topology="aggregation", **env) as aggregation:
                # one after the other: `sparse run` rebuilds _build/ (lein clean)
                wait_until_reading(aggregation, agg_log)
                with sparse_run(kafka, scoring_log, topology="scoring", **env) as scoring:
                    wait_until_reading(scoring, scoring_log)
                    enforcer = subprocess.Popen(
                        ["botscore", "enforce"],
                        cwd=ROOT,
                        env=stack_env(
                            **env,
                            BOTSCORE_KAFKA_SCORES_TOPIC=kafka.scores_topic,
                            BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic,
                        ),
                        stdout=(tmp_path / "enforce.log").open("wb"),
                        stderr=subprocess.STDOUT,
                    )
                    try:
                        unusable = [(b"someone", b"\xff not protobuf")] * 3
                        produce(kafka, unusable, topic=web_logs)
                        produce(kafka, unusable, topic=kafka.features_topic)
                        produce(kafka, unusable, topic=kafka.scores_topic)
                        stats = simulate(
                            replace(settings, metrics=MetricsSettings(statsd_port=listener.port)),
                            spec,
                            tmp_path / "labels.csv",
                            edge=EdgeDecisions(client, 1000),
                        )
                        assert aggregation.poll() is None and scoring.poll() is None
                        assert enforcer.poll() is None, (tmp_path / "enforce.log").read_text()
                    finally:
                        enforcer.terminate()
                        enforcer.wait(30)
        finally:
            client.flushdb()
            delete_topics(kafka, topics)
        received = listener.tags_by_metric()
    missing = missing_from(received, healthy_metrics())
    assert not missing, f"dashboards query metrics the loop never sent: {missing}"

    assert stats.first_scores_s is not None, "no scores reached the edge"
    assert stats.first_enforced_s is not None, "the edge never blocked or challenged anyone"
    # Before any score reached Redis the edge has nothing to enforce: its first block or
    # challenge comes after the last sample that saw no scores (and never at 0 s).
    assert 0 < stats.unscored_until_s <= stats.first_enforced_s
    before = stats.bot_allowed_share(end_s=stats.unscored_until_s)
    last_half = stats.bot_allowed_share(start_s=1800)
    assert last_half is not None
    humans = stats.humans
    assert stats.decision_latencies_s, "the edge never saw a decision change"
    latencies = np.percentile(stats.decision_latencies_s, [50, 95, 99])
    report_figure(
        f"simulated hour ({SPEEDUP}x, {stats.sent + stats.blocked} requests): no scores until "
        f"{stats.unscored_until_s:.0f} s, first scores seen at {stats.first_scores_s:.0f} s, "
        f"first block or challenge at {stats.first_enforced_s:.0f} s; bot requests allowed "
        f"before the scores {'n/a' if before is None else f'{before:.1%}'}, in the second "
        f"half-hour {last_half:.1%}; bots blocked {len(stats.bots_blocked)}; humans challenged "
        f"{len(stats.humans_challenged)} users, {humans.challenged} of {humans.requests} requests; "
        f"request to decision at the edge ({len(stats.decision_latencies_s)} changes) p50 "
        f"{latencies[0]:.1f} s, p95 {latencies[1]:.1f} s, p99 {latencies[2]:.1f} s; visitors "
        f"who arrived after the first scores: "
        f"{summarize_visits(stats.visits, stats.first_scores_s).text(SPEEDUP)}"
    )
    # A decision comes after the request its score counted, never before: a negative
    # latency would mean feature times and wall times were mapped wrongly.
    assert min(stats.decision_latencies_s) > 0
    # once scored, most bot requests are stopped (against all allowed before)
    assert last_half < 0.5
    assert humans.challenged / humans.requests < 0.05
