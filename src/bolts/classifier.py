"""Classifier bolt: scores users in micro-batches with the model from ``models/``.

Delivery: each score is emitted anchored to its input tuple, then the input is acked, so
the spout hears of success only when the producer has acked the score too. A user that
cannot be scored is failed, never dropped: the spout replays it and, once its attempts
are used up, dead-letters it with the original bytes (the spout already rejects messages
without the model's features, so this only happens when something is wrong here).
Batching: see ``MicroBatchBolt``.
"""

from __future__ import annotations

import time
from typing import Any

from streamparse import Tuple
from threadpoolctl import threadpool_limits

from bolts.micro_batch import MicroBatchBolt
from botscore.clock import now_ms
from botscore.metrics import Metrics
from botscore.model.registry import load_model, resolve_model_dir
from botscore.model.scoring import score_batch
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.records import FeatureRecord, ScoreRecord


class ClassifierBolt(MicroBatchBolt[FeatureRecord]):
    outputs = ScoreRecord.FIELDS

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        threadpool_limits(limits=settings.scoring.model_threads)
        self.model = load_model(resolve_model_dir(settings.scoring.model_dir))
        manifest = self.model.manifest
        self.metrics = Metrics(
            settings.metrics,
            Component.CLASSIFIER,
            tags=[f"model:{manifest.name}:{manifest.version}"],
        )
        self.start_batching(settings.scoring.batch_size, settings.scoring.max_batch_wait_ms)
        self.logger.info("scoring with model %s %s", manifest.name, manifest.version)

    def to_item(self, tup: Tuple) -> FeatureRecord:
        return FeatureRecord.from_values(tup.values)

    def handle_batch(self, batch: list[tuple[Tuple, FeatureRecord]]) -> None:
        tuples = {id(record): tup for tup, record in batch}
        started = time.perf_counter()
        try:
            result = score_batch(self.model, [r for _, r in batch], now_ms())
        except Exception:
            # Fail the batch so the spout replays it rather than losing it.
            self.logger.exception("scoring a batch of %d failed", len(batch))
            for tup, _ in batch:
                self.fail(tup)
            return
        self.metrics.histogram("predict_seconds", time.perf_counter() - started)
        self.metrics.histogram("batch_size", len(batch))
        for record, score in result.scored:
            tup = tuples[id(record)]
            self.emit(score.to_values(), anchors=[tup])
            self.ack(tup)
        for record, error in result.rejected:
            self.logger.error("cannot score %s: %s", record.source.tuple_id(), error)
            self.metrics.count("rejected", tags=[f"reason:{error.reason}"])
            self.fail(tuples[id(record)])
        self.metrics.count("scored", len(result.scored))
