"""Every metric the pipeline sends, declared once.

``Metrics`` refuses a name that is not declared here for its component, and the dashboard
check refuses a query on a name that is not declared here: so a dashboard cannot graph a
metric that nothing sends under that name. Names are ``<namespace>.<component>.<what>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from botscore.vocabulary import Component

__all__ = [
    "CATALOG",
    "EXTERNAL_PREFIXES",
    "Kind",
    "MetricSpec",
    "constant_tags",
    "metric_for",
    "queryable_names",
    "spec_for",
]


class Kind(StrEnum):
    COUNT = "count"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


# What the Datadog agent makes of one DogStatsD histogram (its default aggregates).
HISTOGRAM_SUFFIXES = ("avg", "count", "max", "median", "95percentile")

# Metrics that other integrations send (the agent's own Kafka and Redis checks), which
# dashboards may graph beside ours. Nothing in this project sends them.
EXTERNAL_PREFIXES = ("kafka.", "redis.")


@dataclass(frozen=True)
class MetricSpec:
    kind: Kind
    doc: str
    # Tags sent with the value beyond the constant ones (``component:<name>``, ...).
    tags: tuple[str, ...] = ()
    # Sent only when something fails (a replay, an outage): a healthy run never sends it.
    on_failure: bool = False


def _lag(consumer: str) -> dict[str, MetricSpec]:
    """What every Kafka consumer reports of itself (``transport.consumer_lag``)."""
    per_partition = ("topic", "partition")
    return {
        "lag": MetricSpec(
            Kind.GAUGE,
            f"messages {consumer} has not committed (end offset - commit)",
            per_partition,
        ),
        "committed_offset": MetricSpec(
            Kind.GAUGE,
            f"next offset {consumer} committed (flat: a stalled partition)",
            per_partition,
        ),
        "lag_read_failed": MetricSpec(
            Kind.COUNT, "lag reads the broker did not answer (no lag sent)", on_failure=True
        ),
    }


def _spout(what_in: str) -> dict[str, MetricSpec]:
    return {
        **_lag("the spout"),
        "in": MetricSpec(Kind.COUNT, f"{what_in} read from Kafka and emitted"),
        "replayed": MetricSpec(
            Kind.COUNT,
            "tuples emitted again after a failure or timeout, or a lost ack",
            ("cause",),
            on_failure=True,
        ),
        "dead_lettered": MetricSpec(
            Kind.COUNT, "messages set aside on the dead-letter topic", ("reason",)
        ),
        "last_attempts_deferred": MetricSpec(
            Kind.COUNT,
            "failures at a tuple's last attempt with nothing acked since its previous one: "
            "an outage downstream, replayed rather than dead-lettered",
            on_failure=True,
        ),
        "bisected": MetricSpec(
            Kind.COUNT,
            "batches that used up their attempts cut in halves, to dead-letter only the "
            "messages at fault",
            on_failure=True,
        ),
        "dead_letters_abandoned": MetricSpec(
            Kind.COUNT,
            "dead letters Kafka refused for good (logged, offset moved on)",
            on_failure=True,
        ),
        "position_reset": MetricSpec(
            Kind.COUNT,
            "partitions whose log moved back under the spout (topic recreated or truncated)",
            on_failure=True,
        ),
        "offsets_deleted": MetricSpec(
            Kind.COUNT,
            "messages retention deleted before the spout read them (lost; the log says which)",
            on_failure=True,
        ),
    }


def _producer(what: str, then: str = "replayed") -> dict[str, MetricSpec]:
    return {
        "sent": MetricSpec(Kind.COUNT, f"{what} Kafka confirmed"),
        "send_failed": MetricSpec(
            Kind.COUNT, f"tuples of {what} Kafka did not take ({then})", on_failure=True
        ),
    }


CATALOG: dict[Component, dict[str, MetricSpec]] = {
    Component.WEB_LOGS_SPOUT: {
        **_spout("edge requests"),
        "state_lost": MetricSpec(
            Kind.COUNT,
            "times Redis lost the feature state (its logs are read again to rebuild it)",
            on_failure=True,
        ),
    },
    Component.FEATURES_SPOUT: _spout("feature messages"),
    Component.AGGREGATE: {
        "applied": MetricSpec(Kind.COUNT, "requests folded into a user's state"),
        "duplicates": MetricSpec(
            Kind.COUNT,
            "requests already counted (replays, or a request id written twice)",
            on_failure=True,
        ),
        "redis_failed": MetricSpec(
            Kind.COUNT, "requests Redis did not take (replayed)", on_failure=True
        ),
        "unreplicated": MetricSpec(
            Kind.COUNT,
            "requests Redis took but too few of its replicas confirmed in time (replayed)",
            on_failure=True,
        ),
        "stale_batches": MetricSpec(
            Kind.COUNT,
            "tuples read before Redis lost the feature state, refused (read again)",
            on_failure=True,
        ),
        "state_reset": MetricSpec(
            Kind.COUNT,
            "users whose stored state held another program's values: deleted, started again",
            on_failure=True,
        ),
        "batch_size": MetricSpec(Kind.HISTOGRAM, "requests per Redis round trip"),
        "redis_seconds": MetricSpec(Kind.HISTOGRAM, "time of one Redis round trip"),
    },
    Component.PUBLISHER: {
        "emitted": MetricSpec(Kind.COUNT, "users whose features were due and emitted"),
        "pending_users": MetricSpec(
            Kind.GAUGE, "users with requests not yet published (growing: publishing lags)"
        ),
        "state_keys": MetricSpec(Kind.GAUGE, "keys in the feature state's Redis database"),
        "redis_memory_bytes": MetricSpec(Kind.GAUGE, "memory the feature state's Redis uses"),
        "failed": MetricSpec(
            Kind.COUNT, "feature publications that failed (retried)", on_failure=True
        ),
        "state_reset": MetricSpec(
            Kind.COUNT,
            "due users whose stored state could not be read: deleted (the log says why)",
            on_failure=True,
        ),
        "swept_keys": MetricSpec(
            Kind.COUNT,
            "keys of the feature state's old epoch deleted after Redis lost some of it",
            on_failure=True,
        ),
    },
    Component.FEATURE_PRODUCER: _producer("feature messages"),
    Component.CLASSIFIER: {
        "scored": MetricSpec(Kind.COUNT, "users scored"),
        "failed": MetricSpec(
            Kind.COUNT,
            "tuples the classifier could not score (failed, so replayed)",
            on_failure=True,
        ),
        "batch_size": MetricSpec(Kind.HISTOGRAM, "users per model call"),
        "predict_seconds": MetricSpec(Kind.HISTOGRAM, "time of one model call"),
        "decisions": MetricSpec(Kind.COUNT, "users scored, by the model's decision", ("decision",)),
        "rate_ceiling_blocks": MetricSpec(
            Kind.COUNT,
            "users blocked for more requests in the last minute than scoring.block_requests_1m, "
            "whatever the model scored (counted in decisions too)",
        ),
        "scores": MetricSpec(
            Kind.COUNT, "users scored, by tenth of the score (bucket:0.9 is 0.9-1.0)", ("bucket",)
        ),
        "feature_age_seconds": MetricSpec(
            Kind.HISTOGRAM, "per model call, scoring time minus its oldest feature window's end"
        ),
        "model_switched": MetricSpec(Kind.COUNT, "switches to a newly published model"),
        "model_refused": MetricSpec(
            Kind.COUNT,
            "published models refused (the running model stays; the log says why)",
            on_failure=True,
        ),
        "shadow_scored": MetricSpec(
            Kind.COUNT, "users scored by the challenger too (shadow scores)", ("challenger",)
        ),
        "shadow_failed": MetricSpec(
            Kind.COUNT,
            "users the challenger could not score (no shadow score; the champion's stand)",
            on_failure=True,
        ),
        "shadow_refused": MetricSpec(
            Kind.COUNT,
            "challengers refused (shadow scoring goes on as it was; the log says why)",
            on_failure=True,
        ),
        "releases_unreachable": MetricSpec(
            Kind.COUNT,
            "outages of Redis seen by the published-model check (the running model stays)",
            on_failure=True,
        ),
    },
    Component.SCORE_PRODUCER: _producer("threat scores"),
    Component.SHADOW_PRODUCER: _producer("a challenger's threat scores", "lost, not replayed"),
    Component.STORM: {
        "supervisors": MetricSpec(Kind.GAUGE, "supervisors Nimbus knows"),
        "slots_used": MetricSpec(Kind.GAUGE, "worker slots in use, of slots_total"),
        "slots_total": MetricSpec(Kind.GAUGE, "worker slots of all supervisors"),
        "uptime_s": MetricSpec(Kind.GAUGE, "seconds since the topology started", ("topology",)),
        "workers": MetricSpec(Kind.GAUGE, "worker JVMs of the topology", ("topology",)),
        "emitted": MetricSpec(
            Kind.GAUGE, "tuples a component emitted (window)", ("topology", "storm_component")
        ),
        "acked": MetricSpec(
            Kind.GAUGE, "tuples a component acked (window)", ("topology", "storm_component")
        ),
        "failed": MetricSpec(
            Kind.GAUGE, "tuples a component failed (window)", ("topology", "storm_component")
        ),
        "complete_latency_ms": MetricSpec(
            Kind.GAUGE, "a spout's emit-to-ack time", ("topology", "storm_component")
        ),
        "capacity": MetricSpec(
            Kind.GAUGE,
            "share of time a bolt executes (1 = saturated)",
            ("topology", "storm_component"),
        ),
    },
    Component.EDGE: {
        "decision_latency_seconds": MetricSpec(
            Kind.HISTOGRAM,
            "per changed decision, from the last request its score counted to the edge "
            "applying it (the whole loop's latency)",
            ("decision",),
        ),
        "requests": MetricSpec(
            Kind.COUNT,
            "requests the gate answered for nginx, by the user's decision and the HTTP status "
            "(204 served, 401 challenged, 403 blocked)",
            ("decision", "answer"),
        ),
    },
    Component.LOG_SHIPPER: {
        "lines": MetricSpec(
            Kind.COUNT,
            "access-log lines, by outcome: sent, unchecked (sent; served while the gate did "
            "not answer), blocked (not sent) or refused (with a reason)",
            ("outcome", "reason"),
        ),
        "unshipped_bytes": MetricSpec(
            Kind.GAUGE,
            "bytes of the access log written but not yet confirmed by Kafka (grows while "
            "the broker is away or the shipper falls behind)",
        ),
    },
    Component.ENFORCER: {
        "scores": MetricSpec(Kind.COUNT, "threat scores read, by what was done", ("outcome",)),
        "dead_lettered": MetricSpec(Kind.COUNT, "threat scores set aside as unusable", ("reason",)),
        "redis_seconds": MetricSpec(
            Kind.HISTOGRAM, "time of one polled batch's decision writes (one pipeline)"
        ),
        "redis_failed": MetricSpec(
            Kind.COUNT, "batches of decisions Redis did not take (retried)", on_failure=True
        ),
        "decisions_lost": MetricSpec(
            Kind.COUNT,
            "times Redis lost the decisions (the scores that may still decide are applied again)",
            on_failure=True,
        ),
        "keys_replaced": MetricSpec(
            Kind.COUNT,
            "latest-score keys or user counters of another type, replaced (the log names them)",
            on_failure=True,
        ),
        **_lag("the enforcer"),
    },
}


# Components that run inside a Storm topology: their metrics also say topology and task.
STORM_COMPONENTS = frozenset(
    {
        Component.WEB_LOGS_SPOUT,
        Component.AGGREGATE,
        Component.PUBLISHER,
        Component.FEATURE_PRODUCER,
        Component.FEATURES_SPOUT,
        Component.CLASSIFIER,
        Component.SCORE_PRODUCER,
        Component.SHADOW_PRODUCER,
    }
)


def constant_tags(component: Component) -> tuple[str, ...]:
    """Tag keys on every metric of ``component``: what a widget may filter or group on."""
    keys = ("component", "model") if component is Component.CLASSIFIER else ("component",)
    return (*keys, "topology", "task") if component in STORM_COMPONENTS else keys


def spec_for(component: Component, what: str, kind: Kind) -> MetricSpec:
    """The declared metric, or ``ValueError``: sending an undeclared name is a bug."""
    spec = CATALOG.get(component, {}).get(what)
    if spec is None or spec.kind is not kind:
        raise ValueError(f"{kind} {component}.{what} is not in the metric catalogue")
    return spec


def metric_for(name: str, namespace: str = "botscore") -> tuple[Component, str, MetricSpec]:
    """The declared metric behind a queried ``name`` (a histogram's aggregate included)."""
    for component, metrics in CATALOG.items():
        for what, spec in metrics.items():
            full = f"{namespace}.{component}.{what}"
            if name == full or (
                spec.kind is Kind.HISTOGRAM
                and name in {f"{full}.{suffix}" for suffix in HISTOGRAM_SUFFIXES}
            ):
                return component, what, spec
    raise KeyError(f"{name} is not in the metric catalogue")


def queryable_names(namespace: str = "botscore") -> set[str]:
    """Every name a Datadog query may use for our metrics (histograms as aggregated)."""
    names: set[str] = set()
    for component, metrics in CATALOG.items():
        for what, spec in metrics.items():
            name = f"{namespace}.{component}.{what}"
            if spec.kind is Kind.HISTOGRAM:
                names.update(f"{name}.{suffix}" for suffix in HISTOGRAM_SUFFIXES)
            else:
                names.add(name)
    return names
