"""Classifier bolt: scores users in micro-batches with the model from ``models/``.

Delivery: each score is emitted anchored to its input tuple, then the input is acked, so
the spout hears of success only when the producer has acked the score too. A user that
cannot be scored is failed, never dropped: the spout replays it and, once its attempts
are used up, dead-letters it with the original bytes (the spout already rejects messages
without the model's features, so this only happens when something is wrong here). A batch
closes at ``botscore.scoring.batch_size`` users or ``max_batch_wait_ms`` after its first
user, whichever comes first; a small thread closes batches by age because Storm only
calls ``process`` when a tuple arrives.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from streamparse import Bolt, Tuple
from threadpoolctl import threadpool_limits

from botscore.batching import MicroBatcher
from botscore.metrics import Metrics
from botscore.model_registry import load_model, resolve_model_dir
from botscore.records import FeatureRecord, ScoreRecord
from botscore.scoring import score_batch
from botscore.settings import Settings


class ClassifierBolt(Bolt):
    outputs = ScoreRecord.FIELDS
    auto_ack = False
    auto_anchor = False
    auto_fail = False

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        threadpool_limits(limits=settings.scoring.model_threads)
        self.model = load_model(resolve_model_dir(settings.scoring.model_dir))
        manifest = self.model.manifest
        self.metrics = Metrics(
            settings.metrics, "classifier", tags=[f"model:{manifest.name}:{manifest.version}"]
        )
        self.batcher: MicroBatcher[tuple[Tuple, FeatureRecord]] = MicroBatcher(
            settings.scoring.batch_size, settings.scoring.max_batch_wait_ms / 1000
        )
        self.lock = threading.Lock()
        threading.Thread(target=self._close_aged_batches, name="batch-timer", daemon=True).start()
        self.logger.info("scoring with model %s %s", manifest.name, manifest.version)

    def process(self, tup: Tuple) -> None:
        record = FeatureRecord.from_values(tup.values)
        with self.lock:
            batch = self.batcher.add((tup, record), time.monotonic())
            if batch:
                self._score(batch)

    def _close_aged_batches(self) -> None:
        idle_wait = self.batcher.max_wait_s
        while True:
            with self.lock:
                now = time.monotonic()
                batch = self.batcher.due(now)
                if batch:
                    self._score(batch)
                wait = self.batcher.seconds_until_due(now)
            time.sleep(idle_wait if wait is None else max(wait, 0.001))

    def _score(self, batch: list[tuple[Tuple, FeatureRecord]]) -> None:
        tuples = {id(record): tup for tup, record in batch}
        started = time.perf_counter()
        try:
            result = score_batch(self.model, [r for _, r in batch], int(time.time() * 1000))
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
