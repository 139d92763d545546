"""Run a simulation onto Kafka: WebLogs keyed by user id, paced in real time.

Event times are the simulated clock started at the wall clock, and each event is sent
when the wall clock reaches it, so event time and arrival time agree for the feature
stage and for the enforcement loop's decisions.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from botscore.errors import BotscoreError
from botscore.kafka_clients import create_producer, ensure_topics
from botscore.settings import Settings
from botscore.simulator.labels import write_labels
from botscore.simulator.population import build_population
from botscore.simulator.traffic import DecisionFor, SimulationStats, TrafficGenerator, always_allow

__all__ = ["SimulationStats", "simulate"]

# Sleeping for less than this costs more than it saves at high rates.
_MIN_SLEEP_S = 0.002


def simulate(
    settings: Settings,
    rate: float,
    duration_s: float,
    seed: int,
    labels_path: str | Path,
    users: int,
    bot_share: float,
    progress: bool,
    *,
    topic: str = "web-logs",
    decision_for: DecisionFor = always_allow,
    start_unix_ms: int | None = None,
) -> SimulationStats:
    """Produce ``rate`` WebLogs per second for ``duration_s`` seconds; return the counts.

    The labels file is written first, so the ground truth exists even if the run is
    interrupted. Raises ``BotscoreError`` when Kafka did not confirm every message.
    """
    population = build_population(users, bot_share, seed)
    write_labels(population, labels_path)
    wall_start_ms = int(time.time() * 1000) if start_unix_ms is None else start_unix_ms
    generator = TrafficGenerator(
        population, rate, duration_s, seed, wall_start_ms, decision_for=decision_for
    )
    ensure_topics(settings.kafka, [topic])
    producer = create_producer(settings.kafka, client_id="botscore-simulator")
    failures: list[BaseException] = []
    bar = tqdm(total=round(rate * duration_s), unit="req", disable=not progress, desc=f"-> {topic}")
    started = time.monotonic()
    try:
        for event in generator:
            delay = started + (event.time_unix_ms - wall_start_ms) / 1000 - time.monotonic()
            if delay > _MIN_SLEEP_S:
                time.sleep(delay)
            future = producer.send(
                topic, key=event.user_id.encode(), value=event.SerializeToString()
            )
            future.add_errback(failures.append)
            bar.update()
            if bar.n % 1000 == 0:
                bar.set_postfix(blocked=generator.stats.blocked, refresh=False)
        producer.flush()
    finally:
        bar.close()
        producer.close(timeout=5)
    if failures:
        raise BotscoreError(
            f"{len(failures)} of {generator.stats.sent} WebLogs not confirmed by Kafka: "
            f"{failures[0]!r}"
        )
    return generator.stats
