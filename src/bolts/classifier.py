"""Classifier bolt: scores each tuple's batch of users in one call to the model in ``models/``.

Delivery: the batch's scores are emitted as one tuple anchored to the input, then the
input is acked, so the spout hears of success only when the producer has acked the scores
too. A tuple that cannot be scored (malformed, or the model call raised) is failed, never
dropped: the spout replays it and, once its attempts are used up, dead-letters its
messages with their original bytes. Acks and fails are explicit (``auto_ack``,
``auto_anchor`` and ``auto_fail`` are off), so a raising call never crashes the worker.
"""

from __future__ import annotations

import time
from typing import Any

from streamparse import Bolt, Tuple
from threadpoolctl import threadpool_limits

from botscore.clock import now_ms
from botscore.metrics import Metrics
from botscore.model.registry import load_model, resolve_model_dir
from botscore.model.scoring import score_batch
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.records import FeatureBatch, ScoreBatch


# streamparse ships no types: its Bolt is Any to mypy.
class ClassifierBolt(Bolt):  # type: ignore[misc]
    outputs = ScoreBatch.FIELDS
    auto_ack = False
    auto_anchor = False
    auto_fail = False

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
        self.logger.info("scoring with model %s %s", manifest.name, manifest.version)

    def process(self, tup: Tuple) -> None:
        started = time.perf_counter()
        try:
            scores = score_batch(self.model, FeatureBatch.from_values(tup.values), now_ms())
        except Exception:
            self.logger.exception("cannot score tuple %s; failing it for a replay", tup.id)
            self.metrics.count("failed")
            self.fail(tup)
            return
        self.metrics.histogram("predict_seconds", time.perf_counter() - started)
        self.metrics.histogram("batch_size", len(scores.user_ids))
        self.emit(scores.to_values(), anchors=[tup])
        self.ack(tup)
        self.metrics.count("scored", len(scores.user_ids))
