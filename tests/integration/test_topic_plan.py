"""`botscore topics` against the real broker: topics created as planned, configs that
drifted brought back, partitions that differ reported and left alone."""

from __future__ import annotations

import subprocess

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import connection_config

from .harness import ROOT, delete_topics, new_run_id, stack_env

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def _topics(settings: KafkaSettings, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bin/botscore", "topics"],
        cwd=ROOT,
        env=stack_env(BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_topics_are_created_and_kept_as_planned(kafka_settings: KafkaSettings) -> None:
    run = new_run_id()
    names = {
        "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": f"it-plan-web-logs-{run}",
        "BOTSCORE_KAFKA_FEATURES_TOPIC": f"it-plan-features-{run}",
        "BOTSCORE_KAFKA_SCORES_TOPIC": f"it-plan-scores-{run}",
        "BOTSCORE_KAFKA_SHADOW_SCORES_TOPIC": f"it-plan-shadow-{run}",
        "BOTSCORE_KAFKA_DEAD_LETTER_TOPIC": f"it-plan-dead-letters-{run}",
    }
    env = {**names, "BOTSCORE_KAFKA_SCORES_RETENTION_H": "6"}
    scores = names["BOTSCORE_KAFKA_SCORES_TOPIC"]
    admin = KafkaAdminClient(**connection_config(kafka_settings))
    try:
        # Made by hand before: 2 partitions, kept for an hour.
        admin.create_topics([NewTopic(scores, 2, 1, topic_configs={"retention.ms": str(HOUR_MS)})])
        first = _topics(kafka_settings, env)
        assert first.returncode == 0, first.stderr
        assert f"changed {scores} retention.ms: {HOUR_MS} -> {6 * HOUR_MS}" in first.stdout
        created = first.stdout.split("created: ", 1)[1].splitlines()[0]
        assert all(n in created for k, n in names.items() if n != scores), first.stdout
        assert scores not in created
        assert f"{scores} has 2 partitions where kafka.topic_partitions says" in first.stderr

        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names.values()]
        kept = {
            name: int(configs["retention.ms"]["value"])
            for name, configs in admin.describe_configs(resources)["topic"].items()
        }
        assert kept == {
            names["BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC"]: 168 * HOUR_MS,
            names["BOTSCORE_KAFKA_FEATURES_TOPIC"]: 168 * HOUR_MS,
            scores: 6 * HOUR_MS,
            names["BOTSCORE_KAFKA_SHADOW_SCORES_TOPIC"]: 6 * HOUR_MS,
            names["BOTSCORE_KAFKA_DEAD_LETTER_TOPIC"]: 720 * HOUR_MS,
        }
        partitions = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([scores])}
        assert partitions == {scores: 2}  # reported, never changed

        again = _topics(kafka_settings, env)
        assert again.returncode == 0, again.stderr
        assert "changed" not in again.stdout and "created: none" in again.stdout
    finally:
        admin.close()
        delete_topics(kafka_settings, list(names.values()))
