"""What the producers' delivery settings cost: scores per second into the local broker.

Our producers are idempotent and keep one request in flight per connection (see
``botscore.transport.kafka_clients.create_producer``); the second line has five in flight,
for comparison. Prints figures only; no assertions. Needs
the local broker (`make up`); creates and deletes its own topic. Run with `make bench`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka.admin import KafkaAdminClient

from botscore.settings import KafkaSettings, load_project_settings
from botscore.transport.kafka_clients import connection_config, create_producer, ensure_topics
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef

SCORES = 50_000


def send_all(
    settings: KafkaSettings, topic: str, payloads: list[tuple[bytes, bytes]], **overrides: Any
) -> float:
    """Seconds to send every payload and have the broker confirm it."""
    producer = create_producer(settings, client_id="bench-producer", **overrides)
    producer.send(topic, key=b"warm-up", value=payloads[0][1]).get(timeout=30)
    started = time.perf_counter()
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def main() -> None:
    settings = load_project_settings().kafka
    topic = f"bench-producer-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    payloads = [
        (
            f"user-{i}".encode(),
            encode_threat_score(
                ScoreRecord(
                    f"user-{i}", 0.5, "allow", "baseline", "1", 0, 0, SourceRef("t", i % 4, i)
                )
            ),
        )
        for i in range(SCORES)
    ]
    size = sum(len(v) for _, v in payloads) / SCORES
    print(f"{SCORES:,} scores of {size:.0f} bytes, acks=all, 4 partitions")
    try:
        for label, overrides in (
            ("ours (1 in flight)", {}),
            ("5 in flight", {"max_in_flight_requests_per_connection": 5}),
        ):
            elapsed = send_all(settings, topic, payloads, **overrides)
            print(f"{label:<26}{SCORES / elapsed:10,.0f} scores/s")
    finally:
        admin = KafkaAdminClient(**connection_config(settings))
        admin.delete_topics([topic])
        admin.close()


if __name__ == "__main__":
    main()
