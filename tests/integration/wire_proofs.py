"""What the dashboards query, checked against the datagrams real processes sent.

A healthy run (the whole loop, ``test_loop.py``) proves the metrics a healthy pipeline
sends. Those sent only when something fails come from the fault that causes them: each
entry of ``FAILURE_PROOFS`` names a fault test and the failure metrics its run must send,
and ``tests/unit/test_wire_proofs.py`` checks that together they cover every failure metric
a dashboard or monitor queries, and that each named test makes its check.
"""

from __future__ import annotations

from collections.abc import Iterable

from botscore.observability.catalog import constant_tags, metric_for
from botscore.observability.datadog_assets import grouped_tags, load_assets
from botscore.vocabulary import Component

from .harness import ROOT

# fault test -> the failure metrics its run sends
FAILURE_PROOFS: dict[str, frozenset[str]] = {
    # the lag reads of the spout and the enforcer (every kafka.lag_interval_ms, 5 s) fail
    # while the broker is down
    "test_broker_restart_mid_stream_loses_nothing_and_recovers_by_itself": frozenset(
        {
            "botscore.score_producer.send_failed",
            "botscore.features_spout.replayed",
            "botscore.features_spout.lag_read_failed",
            "botscore.enforcer.lag_read_failed",
        }
    ),
    # two attempts allowed: the outage outlasts them, and holds them rather than letters
    "test_redis_killed_mid_stream_loses_nothing": frozenset(
        {
            "botscore.aggregate.redis_failed",
            "botscore.web_logs_spout.replayed",
            "botscore.web_logs_spout.last_attempts_deferred",
        }
    ),
    # a primary back empty: the state starts over, the survivors' old keys are deleted
    "test_the_aggregation_topology_rebuilds_what_a_primary_lost": frozenset(
        {"botscore.publisher.swept_keys"}
    ),
    # the primary that took over has no replica until the killed one is back
    "test_the_aggregation_topology_loses_nothing_when_a_primary_fails_over": frozenset(
        {"botscore.aggregate.unreplicated"}
    ),
    # a restarted worker reads again from the commit: what it applied since comes back
    "test_a_killed_aggregation_worker_loses_nothing_and_counts_each_request_once": frozenset(
        {"botscore.aggregate.duplicates"}
    ),
    # the feature producer's sends expire (10 s) and the lag reads fail in the 25 s outage;
    # a dead letter over its topic's limit is refused for good
    "test_a_broker_outage_delays_the_features_but_loses_none": frozenset(
        {
            "botscore.publisher.failed",
            "botscore.feature_producer.send_failed",
            "botscore.web_logs_spout.lag_read_failed",
            "botscore.web_logs_spout.dead_letters_abandoned",
        }
    ),
    # the raising users fail alone at first: their last attempts wait for a scored user;
    # then their batches are halved to find them
    "test_a_model_that_raises_has_its_users_dead_lettered_after_their_attempts": frozenset(
        {
            "botscore.classifier.failed",
            "botscore.features_spout.replayed",
            "botscore.features_spout.last_attempts_deferred",
            "botscore.features_spout.bisected",
            "botscore.classifier.shadow_failed",
            "botscore.shadow_producer.send_failed",
        }
    ),
    # one shard refused: the batches with its users are halved down to their requests
    "test_a_shard_redis_refuses_dead_letters_only_its_users_requests": frozenset(
        {"botscore.aggregate.redis_failed", "botscore.web_logs_spout.bisected"}
    ),
    "test_a_dead_letter_kafka_refuses_is_logged_counted_and_its_offset_finished": frozenset(
        {"botscore.features_spout.dead_letters_abandoned"}
    ),
    "test_redis_killed_mid_stream_loses_no_decision": frozenset({"botscore.enforcer.redis_failed"}),
    # Redis held other programs' values in the feature state's keys when the run began
    "test_another_programs_values_in_the_state_are_deleted_logged_and_counted": frozenset(
        {"botscore.aggregate.state_reset", "botscore.publisher.state_reset"}
    ),
    # the topics' partition 0 lost messages unread, partition 1's commit lay past its end
    "test_web_logs_kafka_deleted_or_moved_back_are_reported_and_read_on": frozenset(
        {"botscore.web_logs_spout.offsets_deleted", "botscore.web_logs_spout.position_reset"}
    ),
    "test_features_kafka_deleted_or_moved_back_are_reported_and_read_on": frozenset(
        {"botscore.features_spout.offsets_deleted", "botscore.features_spout.position_reset"}
    ),
    # Redis flushed while the aggregation ran
    "test_redis_back_empty_the_feature_state_is_rebuilt_from_the_logs": frozenset(
        {"botscore.web_logs_spout.state_lost", "botscore.aggregate.stale_batches"}
    ),
    "test_decisions_redis_lost_are_applied_again_from_the_scores": frozenset(
        {"botscore.enforcer.decisions_lost"}
    ),
    "test_keys_of_another_type_are_replaced_and_decisions_go_on": frozenset(
        {"botscore.enforcer.keys_replaced"}
    ),
    "test_refused_models_are_logged_and_scoring_goes_on_with_the_running_one": frozenset(
        {"botscore.classifier.model_refused"}
    ),
    # Redis killed until a release check failed
    "test_a_redis_outage_is_logged_once_and_the_running_model_scores_on": frozenset(
        {"botscore.classifier.releases_unreachable"}
    ),
    "test_a_refused_challenger_is_logged_and_shadow_scoring_goes_on": frozenset(
        {"botscore.classifier.shadow_refused"}
    ),
}

# Sent by a healthy topology only when a model is published or a challenger is set, which
# the whole loop's run does not do: test_model_releases.py's run proves them instead.
RELEASE_METRICS = frozenset(
    {
        "botscore.classifier.model_switched",
        "botscore.classifier.shadow_scored",
        "botscore.shadow_producer.sent",
    }
)


# Sent only for a user past scoring.block_requests_1m, which no visitor of the loop's
# simulation is: the scoring topology's run, with its flood user, proves it instead.
RATE_CEILING_METRICS = frozenset({"botscore.classifier.rate_ceiling_blocks"})


# Sent by nginx's gate and log shipper (`botscore edge`), which the loop's run leaves to the
# simulator: test_web_edge.py's run proves them instead.
WEB_SERVER_METRICS = frozenset(
    {
        "botscore.edge.requests",
        "botscore.log_shipper.lines",
        "botscore.log_shipper.unshipped_bytes",
    }
)


def queried_metrics() -> dict[str, set[str]]:
    """Each metric a dashboard or monitor queries -> the tag keys its queries group by."""
    queried: dict[str, set[str]] = {}
    for asset in load_assets(ROOT / "monitoring"):
        for name, keys in grouped_tags(asset.body).items():
            queried.setdefault(name, set()).update(keys)
    return queried


def missing_from(received: dict[str, set[str]], names: Iterable[str]) -> list[str]:
    """Of the queried ``names``, those not received with the tags dashboards need.

    A histogram's aggregates (``.95percentile``, ...) count as their histogram; the tags
    needed are the component's constant ones and those any query groups the metric by.
    """
    queried = queried_metrics()
    missing = []
    for name in sorted(names):
        component, what, _ = metric_for(name)
        sent = f"botscore.{component}.{what}"
        tag_keys = {tag.split(":", 1)[0] for tag in received.get(sent, set())}
        needed = {"component", *constant_tags(component), *queried.get(name, set())}
        if sent not in received or not needed <= tag_keys:
            missing.append(f"{sent} (tags {sorted(tag_keys)}, needs {sorted(needed)})")
    return missing


def healthy_metrics() -> set[str]:
    """The queried metrics of this project that a healthy run of the loop must send."""
    names = set()
    for name in queried_metrics():
        if not name.startswith("botscore."):
            continue  # other integrations' (kafka.*), sent by the Datadog agent itself
        component, _, spec = metric_for(name)
        if not spec.on_failure and component is not Component.STORM:
            names.add(name)  # botscore.storm.* comes from Nimbus (test_cluster.py)
    return names - RELEASE_METRICS - RATE_CEILING_METRICS - WEB_SERVER_METRICS


def failure_metrics() -> set[str]:
    """The queried metrics of this project sent only when something fails."""
    return {
        name
        for name in queried_metrics()
        if name.startswith("botscore.") and metric_for(name)[2].on_failure
    }


def assert_failure_metrics_sent(test_name: str, received: dict[str, set[str]]) -> None:
    """The failure metrics ``FAILURE_PROOFS`` names for ``test_name`` arrived, with tags."""
    missing = missing_from(received, FAILURE_PROOFS[test_name])
    assert not missing, f"the fault's metrics never arrived: {missing}"
