"""The pipeline's topics as code: each one's name, partitions, replicas and the configs
botscore keeps on it, declared from the settings in one place.

``botscore topics`` creates what is missing as planned and brings the planned configs
(retention, ``min.insync.replicas``) of existing topics back to the plan, saying what it
changed. Partitions and replicas it only reports: more partitions would move users' keys
to other partitions (and their features with them), fewer is impossible, and replicas are
a reassignment an operator starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from botscore.errors import ConfigError
from botscore.settings import KafkaSettings, Settings
from botscore.transport.kafka_clients import admin_client, ensure_topics, retry_unreachable
from botscore.vocabulary import Role

__all__ = [
    "ConfigChange",
    "TopicPlan",
    "apply_topic_plans",
    "configs_to_change",
    "shape_drift",
    "topic_plans",
]

_HOUR_MS = 3600 * 1000


@dataclass(frozen=True)
class TopicPlan:
    name: str
    carries: str  # for messages
    configs: Mapping[str, str]
    # The roles that write and read it (``botscore.access`` grants them nothing more).
    writers: tuple[Role, ...] = ()
    readers: tuple[Role, ...] = ()


@dataclass(frozen=True)
class ConfigChange:
    topic: str
    key: str
    was: str | None  # None: not set on the topic (the broker's default applied)
    now: str


def topic_plans(settings: Settings) -> list[TopicPlan]:
    """Every topic of the pipeline, with the configs its settings ask for."""
    k = settings.kafka

    def configs(retention_h: int) -> dict[str, str]:
        planned = {"retention.ms": str(retention_h * _HOUR_MS)}
        if k.min_insync_replicas:
            planned["min.insync.replicas"] = str(k.min_insync_replicas)
        return planned

    # Administrators' tools (watch, dead letters, backfill) read and write as the admin.
    return [
        TopicPlan(
            settings.aggregation.web_logs_topic,
            "web logs",
            configs(k.web_logs_retention_h),
            writers=(Role.EDGE,),
            readers=(Role.AGGREGATION,),
        ),
        TopicPlan(
            k.features_topic,
            "features",
            configs(k.features_retention_h),
            writers=(Role.AGGREGATION,),
            readers=(Role.SCORING,),
        ),
        TopicPlan(
            k.scores_topic,
            "scores",
            configs(k.scores_retention_h),
            writers=(Role.SCORING,),
            readers=(Role.ENFORCER, Role.MODELS),
        ),
        TopicPlan(
            k.shadow_scores_topic,
            "shadow scores",
            configs(k.scores_retention_h),
            writers=(Role.SCORING,),
            readers=(Role.MODELS,),
        ),
        TopicPlan(
            k.dead_letter_topic,
            "dead letters",
            configs(k.dead_letter_retention_h),
            # Each stage sets aside the messages it cannot use.
            writers=(Role.AGGREGATION, Role.SCORING, Role.ENFORCER),
        ),
    ]


def configs_to_change(plan: TopicPlan, actual: Mapping[str, str]) -> list[ConfigChange]:
    """The planned configs the topic does not have (``actual``: its current values)."""
    return [
        ConfigChange(plan.name, key, actual.get(key), wanted)
        for key, wanted in sorted(plan.configs.items())
        if actual.get(key) != wanted
    ]


def shape_drift(settings: KafkaSettings, described: list[dict[str, Any]]) -> list[str]:
    """What ``describe_topics`` says differs from the planned partitions and replicas."""
    drift = []
    for topic in described:
        partitions = topic["partitions"]
        if len(partitions) != settings.topic_partitions:
            drift.append(
                f"{topic['name']} has {len(partitions)} partitions where kafka.topic_partitions "
                f"says {settings.topic_partitions}: not changed (new partitions would move "
                "users' keys to other partitions; change it with kafka-topics.sh --alter, "
                "with the pipeline stopped)"
            )
        fewest = min((len(p["replica_nodes"]) for p in partitions), default=0)
        if partitions and fewest < settings.replication_factor:
            drift.append(
                f"{topic['name']} has {fewest} replica(s) where kafka.replication_factor says "
                f"{settings.replication_factor}: not changed (a partition reassignment)"
            )
    return drift


def apply_topic_plans(
    settings: Settings, timeout_s: float = 30.0
) -> tuple[list[str], list[ConfigChange], list[str]]:
    """Create missing topics as planned, set the planned configs of existing ones; the
    topics created, the configs changed, and the drift left for an operator."""
    plans = topic_plans(settings)
    names = [plan.name for plan in plans]
    created = ensure_topics(
        settings.kafka, names, timeout_s, configs={p.name: p.configs for p in plans}
    )
    deadline = time.monotonic() + timeout_s
    admin = admin_client(settings.kafka)
    try:
        changes = _align_configs(admin, plans, deadline)
        described = retry_unreachable(partial(admin.describe_topics, names), deadline)
    finally:
        admin.close()
    return created, changes, shape_drift(settings.kafka, described)


def _align_configs(
    admin: KafkaAdminClient, plans: list[TopicPlan], deadline: float
) -> list[ConfigChange]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, p.name) for p in plans]
    described = retry_unreachable(
        partial(admin.describe_configs, resources, config_filter="all"), deadline
    )["topic"]
    changes = [
        change
        for plan in plans
        for change in configs_to_change(
            plan, {key: entry["value"] for key, entry in described[plan.name].items()}
        )
    ]
    if changes:
        by_topic: dict[str, dict[str, str]] = {}
        for change in changes:
            by_topic.setdefault(change.topic, {})[change.key] = change.now
        answer = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, configs=c) for t, c in by_topic.items()]
        )["topic"]
        refused = {t: r for t, r in answer.items() if r != "OK"}
        if refused:
            raise ConfigError(f"the broker refused the planned topic configs: {refused}")
    return changes
