"""``botscore enforce``: the Kafka loop that applies threat scores to the edge's decisions.

Delivery (at least once): a polled batch goes to Redis in one MULTI pipeline and its
offsets are committed only after Redis accepted it and Kafka confirmed its dead letters
(``DeadLetterOutbox.flush_and_confirm``).
While Redis is down the same batch is retried with backoff and nothing is committed; a
crash replays the uncommitted batch, which the merge makes harmless. A retry longer than
the consumer's ``max_poll_interval_ms`` (5 min) costs the group membership: the commit
then fails, is logged, and the partitions' next owner replays from the last commit.

Every ``kafka.lag_interval_ms``, retries included, it sends the lag and committed offset of
each owned partition it has committed since it started (``transport.consumer_lag``).

Redis that loses the decisions (restarted without its data, flushed) while the enforcer
runs is noticed at the next batch (``Written.lost``): logged, counted as
``decisions_lost``, and every owned partition is read again from the first score that may
still decide (``max_score_age_ms`` and ``max_clock_skew_ms`` back). The merge does not
depend on arrival order, so this restores exactly the decisions in force. Commits carry the
decisions' generation as their metadata: a partition newly assigned whose commit names
another generation (Redis lost the decisions while no enforcer ran) is read again the same
way before any of it is applied; its records wait while the comparison cannot be made
(Redis or the group's coordinator down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from botscore.clock import now_ms
from botscore.enforcement.decisions import DecisionWriter, parse_score
from botscore.errors import InvalidMessage, SendNotConfirmed
from botscore.metrics import Metrics
from botscore.settings import EnforcementSettings, Settings
from botscore.transport.consumer_lag import LagGauges
from botscore.transport.dead_letter_outbox import DeadLetterOutbox
from botscore.transport.delivery import Backoff
from botscore.transport.kafka_clients import (
    commit_positions,
    create_consumer,
    create_producer,
    poll_group,
    wait_for_topic,
)
from botscore.transport.offsets import PartitionKey
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Component
from botscore.wire.dead_letters import DeadLetterRecord
from botscore.wire.records import ScoreRecord, SourceRef

__all__ = ["run_enforcer"]

log = logging.getLogger(__name__)

# Pace of retrying a failed batch, and of resending its failed dead letters.
_RETRY_BACKOFF = Backoff(first_s=0.2, max_s=5.0)


# A long outage logs its first failures, then every power of two and every 120th attempt
# (about every ten minutes at the 5 s cap), not one line per attempt.
_LOG_EVERY = 120


def _worth_logging(attempt: int) -> bool:
    return attempt <= 3 or attempt & (attempt - 1) == 0 or attempt % _LOG_EVERY == 0


def _until_done(
    stop: threading.Event,
    what: str,
    action: Callable[[], Any],
    meanwhile: Callable[[], None] = lambda: None,
    failed: Callable[[], None] = lambda: None,
) -> bool:
    """Run ``action`` until it succeeds (True) or ``stop`` is set (False), with backoff.

    ``meanwhile`` runs before each attempt (the lag gauges keep going through an outage),
    ``failed`` after each failed one (a metric).
    """
    attempt, first_failure = 0, 0.0
    while not stop.is_set():
        meanwhile()
        try:
            action()
        except (redis.RedisError, KafkaError, SendNotConfirmed) as exc:
            attempt += 1
            failed()
            first_failure = first_failure or time.monotonic()
            delay = _RETRY_BACKOFF.delay(attempt)
            if _worth_logging(attempt):
                log.error(
                    "%s failed (attempt %d), offsets not committed, retrying in %.1f s: %s",
                    what,
                    attempt,
                    delay,
                    exc,
                )
            stop.wait(delay)
            continue
        if attempt:
            log.warning(
                "%s succeeded after %d failed attempts over %.1f s",
                what,
                attempt,
                time.monotonic() - first_failure,
            )
        return True
    return False


def run_enforcer(settings: Settings, stop: threading.Event | None = None) -> None:
    """Apply threat scores to the edge's decisions until ``stop`` is set.

    Never raises for an unreachable Redis or Kafka: it logs and retries the same batch.
    Returns within about a second of ``stop`` (at most a Redis socket timeout more).
    """
    stop = stop or threading.Event()
    kafka, topic = settings.kafka, settings.kafka.scores_topic
    group = settings.enforcement.consumer_group
    consumer = create_consumer(kafka, client_id=f"botscore-{Component.ENFORCER}", group_id=group)
    producer = create_producer(kafka, client_id=f"botscore-{Component.ENFORCER}-dlq")
    # A batch's offsets wait for all its letters at once, so its tokens carry nothing.
    letters: DeadLetterOutbox[None] = DeadLetterOutbox(
        producer, kafka.dead_letter_topic, _RETRY_BACKOFF, logger=log
    )
    client = create_redis(settings.redis)
    writer = DecisionWriter(client, settings.enforcement)
    metrics = Metrics(settings.metrics, Component.ENFORCER)
    commits: dict[PartitionKey, int] = {}
    lag = LagGauges(consumer, metrics, kafka.lag_interval_ms / 1000, log)

    def report_lag() -> None:
        lag.report(lambda: _owned(commits, consumer))

    lost: list[bool] = []  # the batch just written found the decisions lost
    # Partitions whose commit's generation was compared with the decisions'.
    checked: set[TopicPartition] = set()

    try:
        if not consumer.partitions_for_topic(topic):
            log.warning("waiting for topic %s (create it with `botscore topics`)", topic)
        wait_for_topic(consumer, topic, stop.is_set, stop.wait)
        consumer.subscribe([topic])
        log.info("applying %s as group %s to Redis db %d", topic, group, settings.redis.db)
        while not stop.is_set():
            report_lag()
            polled = poll_group(consumer, timeout_ms=500)
            checked &= consumer.assignment()
            if consumer.assignment() - checked:
                # Before any record of a new partition is applied (and committed under it).
                if not _until_done(
                    stop,
                    "reading the decisions' generation",
                    writer.read_generation,
                    report_lag,
                    failed=lambda: metrics.count("redis_failed"),
                ):
                    break
                stale = _committed_under_another_generation(consumer, writer.generation, checked)
                polled = _checked_only(consumer, polled, checked - stale)
                if stale:
                    metrics.count("decisions_lost")
                    _apply_again(consumer, settings.enforcement, stale)
            if not polled:
                if not consumer.assignment():
                    stop.wait(0.1)  # poll returns at once without partitions
                continue
            if not _apply_batch(
                polled, writer, letters, stop, metrics, report_lag, lambda: lost.append(True)
            ):
                break
            commits.update(_commit(consumer, polled, writer.generation))
            if lost:
                lost.clear()
                _apply_again(consumer, settings.enforcement)
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)
        client.close()
        metrics.close()
        log.info("enforcer stopped")


def _apply_batch(
    polled: dict[TopicPartition, list[Any]],
    writer: DecisionWriter,
    letters: DeadLetterOutbox[None],
    stop: threading.Event,
    metrics: Metrics,
    meanwhile: Callable[[], None] = lambda: None,
    lost: Callable[[], None] = lambda: None,
) -> bool:
    """Write one polled batch; False when stopped before it was safely done.

    ``meanwhile`` runs before each attempt of each step, ``lost`` when Redis turned out
    to have lost the decisions.
    """
    scores: list[ScoreRecord] = []
    for records in polled.values():
        for record in records:
            source = SourceRef(record.topic, record.partition, record.offset)
            try:
                scores.append(parse_score(record.value))
            except InvalidMessage as exc:
                log.warning("dead-lettering score at %s: %s", source.tuple_id(), exc)
                metrics.count("dead_lettered", tags=[f"reason:{exc.reason}"])
                letters.add(
                    DeadLetterRecord(
                        record.value or b"",
                        record.key or b"",
                        exc.reason,
                        exc.detail,
                        Component.ENFORCER,
                        source,
                        now_ms(),
                    ),
                    None,
                )
    outcomes: list[str] = []

    def write() -> None:
        started = time.perf_counter()
        written = writer.write(scores, now_ms())
        metrics.histogram("redis_seconds", time.perf_counter() - started)
        outcomes.extend(written.outcomes)
        if written.replaced:
            log.error("replaced keys of another type in Redis: %s", ", ".join(written.replaced))
            metrics.count("keys_replaced", len(written.replaced))
        if written.lost:
            log.error("Redis lost the decisions (restarted without its data, or flushed)")
            metrics.count("decisions_lost")
            lost()

    written = _until_done(
        stop,
        f"writing {len(scores)} decisions to Redis",
        write,
        meanwhile,
        failed=lambda: metrics.count("redis_failed"),
    )
    if not written or not _until_done(
        stop, "dead letters", lambda: letters.flush_and_confirm(timeout_s=2), meanwhile
    ):
        return False
    for outcome, n in Counter(outcomes).items():
        metrics.count("scores", n, tags=[f"outcome:{outcome}"])
    return True


def _committed_under_another_generation(
    consumer: KafkaConsumer, current: str, checked: set[TopicPartition]
) -> set[TopicPartition]:
    """Partitions assigned but not yet ``checked`` whose commit names another generation
    than ``current``, the decisions' (a commit without one predates generations); each
    is added to ``checked``. One whose commit cannot be read now is tried next time."""
    stale = set()
    for tp in sorted(consumer.assignment() - checked):
        try:
            found = consumer.committed(tp, metadata=True, timeout_ms=2000)
        except KafkaError as exc:
            log.warning("commit of %s unknown, will check again: %s", tp, exc)
            continue
        checked.add(tp)
        if found is not None and found.metadata not in ("", current):
            log.error(
                "Redis lost the decisions while no enforcer read %s (committed under "
                "generation %s, now %s)",
                tp,
                found.metadata,
                current,
            )
            stale.add(tp)
    return stale


def _checked_only(
    consumer: KafkaConsumer,
    polled: dict[TopicPartition, list[Any]],
    checked: set[TopicPartition],
) -> dict[TopicPartition, list[Any]]:
    """The polled records of ``checked`` partitions. The others are moved back to their
    first record, to be polled again: a partition whose commit was not compared with the
    decisions' generation must not be applied and committed under it first, or a loss
    while no enforcer ran would go unnoticed; a stale one is read again from further back."""
    kept = {}
    for tp, records in polled.items():
        if tp in checked:
            kept[tp] = records
        elif tp in consumer.assignment():
            consumer.seek(tp, records[0].offset)
    return kept


def _apply_again(
    consumer: KafkaConsumer,
    settings: EnforcementSettings,
    partitions: set[TopicPartition] | None = None,
) -> None:
    """Move ``partitions`` (default: every owned one) back to the first score that may
    still decide."""
    since_ms = now_ms() - settings.max_score_age_ms - settings.max_clock_skew_ms
    owned = consumer.assignment() if partitions is None else partitions
    try:
        found = consumer.offsets_for_times({tp: since_ms for tp in owned}, timeout_ms=5000)
    except KafkaError as exc:
        log.error("cannot find the scores to apply again, decisions return with new ones: %s", exc)
        return
    for tp, hit in found.items():
        if hit is not None:
            consumer.seek(tp, hit.offset)
    log.warning(
        "applying again the scores written since %d (partitions %s)",
        since_ms,
        sorted(tp.partition for tp in owned),
    )


def _commit(
    consumer: KafkaConsumer, polled: dict[TopicPartition, list[Any]], generation: str
) -> dict[PartitionKey, int]:
    """Commit past ``polled`` under the decisions' ``generation``; returns the positions
    committed (none when the commit failed)."""
    positions = {(tp.topic, tp.partition): records[-1].offset + 1 for tp, records in polled.items()}
    try:
        consumer.commit(commit_positions(positions, generation), timeout_ms=2000)
    except KafkaError as exc:
        # Safe: whoever owns the partitions next replays them, and replays change nothing.
        log.warning("offset commit failed, the batch will be replayed: %s", exc)
        return {}
    return positions


def _owned(commits: dict[PartitionKey, int], consumer: KafkaConsumer) -> dict[PartitionKey, int]:
    """Our commits of the partitions the consumer still owns; the others are forgotten."""
    owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    for key in set(commits) - owned:
        del commits[key]
    return dict(commits)
