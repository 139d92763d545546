"""Re-scoring a time range of ``UserFeatures`` from Kafka, beside the live pipeline.

``botscore backfill`` reads the features topic by assignment, without a consumer group,
so the scoring topology's group and its commits are untouched; it scores with the model
given (a new version, say, on the traffic it would have seen) and writes the scores to a
topic of their own unless told otherwise. Messages the live pipeline dead-lettered are
counted by reason, not dead-lettered again. Running it again writes the same scores again,
which readers of scores take as one (``proto/README.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from botscore.errors import InvalidMessage
from botscore.model.registry import LoadedModel
from botscore.model.scoring import score_batch
from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.transport.topic_reader import read_between
from botscore.wire.codec import decode_feature_row, encode_threat_score
from botscore.wire.records import FeatureBatch, ScoreRecord

__all__ = ["BackfillResult", "backfill", "rescore"]


@dataclass
class BackfillResult:
    """What a backfill read, scored and wrote."""

    read: int = 0
    # Decision -> scores written with it (confirmed by Kafka).
    written: Counter[str] = field(default_factory=Counter)
    # Dead-letter reason -> messages that could not be scored (the live pipeline's letters).
    invalid: Counter[str] = field(default_factory=Counter)
    failed: int = 0  # scores Kafka did not confirm; a refused send stops the backfill
    first_error: str = ""


def rescore(
    records: Iterable[Any],
    model: LoadedModel,
    scored_time_ms: int,
    batch_size: int,
    result: BackfillResult,
    block_requests_1m: int = 0,
    *,
    max_skew_ms: int,
) -> Iterator[ScoreRecord]:
    """Score ``records`` (Kafka records of ``UserFeatures``) as the classifier would: in
    batches of up to ``batch_size`` consecutive valid messages of one partition, each
    score naming its source, a user past ``block_requests_1m`` blocked. What the features
    spout turns away (with ``scored_time_ms`` for its clock, ``max_skew_ms`` its skew) is
    counted in ``result`` by reason, as is what it read."""
    names = model.manifest.feature_names
    pending: dict[tuple[str, int], list[tuple[int, Any]]] = {}

    def scored(key: tuple[str, int]) -> Iterator[ScoreRecord]:
        rows = pending.pop(key, [])
        if rows:
            batch = FeatureBatch(
                user_ids=[row.user_id for _, row in rows],
                window_end_ms=[row.window_end_ms for _, row in rows],
                rows=[row.values for _, row in rows],
                schema_versions=[row.schema_version for _, row in rows],
                topic=key[0],
                partition=key[1],
                offsets=[offset for offset, _ in rows],
            )
            yield from score_batch(model, batch, scored_time_ms, block_requests_1m).records()

    for record in records:
        result.read += 1
        key = (record.topic, record.partition)
        try:
            row = decode_feature_row(record.value, record.key, names, scored_time_ms, max_skew_ms)
        except InvalidMessage as exc:
            result.invalid[exc.reason] += 1
            yield from scored(key)  # a batch holds consecutive offsets only
            continue
        pending.setdefault(key, []).append((record.offset, row))
        if len(pending[key]) >= batch_size:
            yield from scored(key)
    for key in list(pending):
        yield from scored(key)


def backfill(
    settings: KafkaSettings,
    model: LoadedModel,
    since_ms: int,
    until_ms: int,
    target: str,
    *,
    scored_time_ms: int,
    batch_size: int,
    block_requests_1m: int = 0,
    max_skew_ms: int,
) -> BackfillResult:
    """Score the features topic's messages written from ``since_ms`` to before
    ``until_ms`` with ``model`` and write the scores to ``target``; wait for Kafka to
    confirm each."""
    result = BackfillResult()
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    producer = create_producer(settings, client_id="botscore-backfill")
    sent = []
    try:
        records = read_between(consumer, settings.features_topic, since_ms, until_ms)
        scores = rescore(
            records,
            model,
            scored_time_ms,
            batch_size,
            result,
            block_requests_1m,
            max_skew_ms=max_skew_ms,
        )
        for score in scores:
            value = encode_threat_score(score)
            try:
                future = producer.send(target, key=score.user_id.encode(), value=value)
            except KafkaError as exc:  # likely the same for every next one: stop
                result.failed += 1
                result.first_error = str(exc)
                break
            sent.append((score.decision, future))
        producer.flush()
        for decision, future in sent:
            try:
                future.get(timeout=0)
            except KafkaError as exc:
                result.failed += 1
                result.first_error = result.first_error or str(exc)
            else:
                result.written[decision] += 1
    finally:
        producer.close(timeout=5)
        consumer.close()
    return result
