"""Kafka clients built from settings, with the delivery options the pipeline relies on."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from botscore.settings import KafkaSettings

__all__ = ["create_consumer", "create_producer", "ensure_topics"]


def create_consumer(settings: KafkaSettings, client_id: str, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits on its own: offsets are committed after acks."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        "group_id": settings.consumer_group,
        "auto_offset_reset": settings.auto_offset_reset,
        "enable_auto_commit": False,
        "max_poll_records": 500,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def create_producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> KafkaProducer:
    """A producer whose send only succeeds once every in-sync replica has the record."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.producer_linger_ms,
        "retries": 2147483647,
        "delivery_timeout_ms": 120_000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def ensure_topics(settings: KafkaSettings, topics: list[str]) -> list[str]:
    """Create missing topics with the configured partition count; return those created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers.split(","), client_id="botscore-admin"
    )
    try:
        existing = set(admin.list_topics())
        created = []
        for name in topics:
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=1)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
