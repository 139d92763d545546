"""The topics as planned from the settings, and what differs from a topic as it is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from botscore.errors import ConfigError
from botscore.settings import AggregationSettings, KafkaSettings, Settings
from botscore.transport.topic_plan import (
    ConfigChange,
    TopicPlan,
    configs_to_change,
    shape_drift,
    topic_plans,
)

HOUR_MS = 3_600_000


def test_every_topic_of_the_pipeline_is_planned_with_its_retention() -> None:
    kafka = KafkaSettings(
        web_logs_retention_h=10, features_retention_h=20, scores_retention_h=3,
        dead_letter_retention_h=40,
    )  # fmt: skip
    plans = topic_plans(Settings(kafka=kafka))
    assert [(p.name, p.configs) for p in plans] == [
        ("web-logs", {"retention.ms": str(10 * HOUR_MS)}),
        ("user-features", {"retention.ms": str(20 * HOUR_MS)}),
        ("threat-scores", {"retention.ms": str(3 * HOUR_MS)}),
        ("threat-scores-shadow", {"retention.ms": str(3 * HOUR_MS)}),
        ("dead-letters", {"retention.ms": str(40 * HOUR_MS)}),
    ]


def test_min_insync_replicas_is_planned_only_when_set() -> None:
    plans = topic_plans(Settings(kafka=KafkaSettings(replication_factor=3, min_insync_replicas=2)))
    assert {p.configs["min.insync.replicas"] for p in plans} == {"2"}


def test_the_topic_names_follow_the_settings() -> None:
    settings = Settings(
        kafka=KafkaSettings(features_topic="f", dead_letter_topic="d"),
        aggregation=AggregationSettings(web_logs_topic="w"),
    )
    assert [p.name for p in topic_plans(settings)] == [
        "w",
        "f",
        "threat-scores",
        "threat-scores-shadow",
        "d",
    ]


def test_web_logs_kept_shorter_than_the_feature_state_lives_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"web_logs_retention_h \(4\).*state_ttl_s \(15300\)"):
        Settings(kafka=KafkaSettings(web_logs_retention_h=4))
    # 5 h covers the default state's 4 h 15 min.
    Settings(kafka=KafkaSettings(web_logs_retention_h=5))


def test_only_the_planned_configs_that_differ_are_changed() -> None:
    plan = TopicPlan("t", "scores", {"retention.ms": "100", "min.insync.replicas": "2"})
    actual = {"retention.ms": "100", "min.insync.replicas": "1", "cleanup.policy": "compact"}
    assert configs_to_change(plan, actual) == [ConfigChange("t", "min.insync.replicas", "1", "2")]
    assert configs_to_change(plan, {}) == [
        ConfigChange("t", "min.insync.replicas", None, "2"),
        ConfigChange("t", "retention.ms", None, "100"),
    ]
    assert configs_to_change(plan, {**actual, "min.insync.replicas": "2"}) == []


def _described(name: str, replicas: list[int]) -> dict[str, object]:
    return {"name": name, "partitions": [{"replica_nodes": list(range(n))} for n in replicas]}


def test_partitions_and_replicas_that_differ_are_reported_not_changed() -> None:
    settings = replace(KafkaSettings(), topic_partitions=4, replication_factor=3)
    drift = shape_drift(
        settings,
        [
            _described("right", [3, 3, 3, 3]),
            _described("narrow", [3, 3]),
            _described("thin", [3, 1, 3, 3]),
        ],
    )
    assert len(drift) == 2
    assert drift[0].startswith("narrow has 2 partitions where kafka.topic_partitions says 4")
    assert drift[1].startswith("thin has 1 replica(s) where kafka.replication_factor says 3")
