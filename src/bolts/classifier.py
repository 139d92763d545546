"""Classifier bolt: scores each tuple's batch of users in one call to the model.

The model is the bundled ``scoring.model_dir`` until a release is published (``botscore
models publish``): every ``scoring.release_check_s`` a poller thread reads the live
release from Redis and verifies it, and the bolt switches between two tuples. A refused
release or a Redis outage leaves the running model in place (one log line, a metric).

Shadow scoring: while a challenger is published to the shadow slot (``botscore models
shadow``), each batch scored by the champion is scored by the challenger too, and its
scores go out on the ``shadow`` stream, for their own topic. The challenger never changes
the champion's scores: it is called after them, and a challenger that raises costs its own
scores of that batch only (logged, counted), never the tuple.

Delivery: the batch's scores (and the challenger's) are emitted as one tuple each
anchored to the input, then the input is acked, so the spout hears of success only when
the producers have acked both. A tuple that cannot be scored (malformed, or the model
call raised) is failed, never dropped: the spout replays it and, once its attempts are
used up, halves the batch until the users that fail alone are found, and dead-letters
those with their original bytes. Acks and fails are
explicit (``auto_ack``, ``auto_anchor`` and ``auto_fail`` are off), so a raising call
never crashes the worker.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from streamparse import Stream, Tuple
from threadpoolctl import threadpool_limits

from botscore.clock import now_ms
from botscore.metrics import Metrics, storm_tags
from botscore.model.registry import LoadedModel, load_model, resolve_model_dir
from botscore.model.release_watch import (
    Outcome,
    Poller,
    Reachable,
    Refused,
    ReleaseWatcher,
    ShadowStopped,
    Switched,
    Unpublished,
    Unreachable,
)
from botscore.model.releases import ReleaseStore, Slot, release_id
from botscore.model.scoring import RATE_FEATURE, over_rate_ceiling, score_batch, score_buckets
from botscore.multilang_pipe import Bolt
from botscore.observability.log_repeats import RepeatBudget
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import MetricsSettings, Settings
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Component
from botscore.wire.records import FeatureBatch, ScoreBatch

SHADOW_STREAM = "shadow"


class ClassifierBolt(Bolt):
    outputs = [Stream(ScoreBatch.FIELDS), Stream(ScoreBatch.FIELDS, name=SHADOW_STREAM)]
    auto_ack = False
    auto_anchor = False
    auto_fail = False

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf, role=Component.CLASSIFIER.role)
        self.metrics_settings = settings.metrics
        self.storm_tags = storm_tags(storm_conf, context)
        bundled = load_model(resolve_model_dir(settings.scoring.model_dir))
        # After the load: threadpoolctl limits only the thread pools already loaded, and
        # unpickling the model is what loads scikit-learn's OpenMP. Limited before it, the
        # pool kept a thread per core, spinning between calls (105 µs of CPU per user
        # instead of 17 in bench/README.md's profile).
        threadpool_limits(limits=settings.scoring.model_threads)
        self.block_requests_1m = settings.scoring.block_requests_1m
        self.repeats = RepeatBudget()  # a traceback per kind of failure a minute
        self.model = bundled
        self.challenger: LoadedModel | None = None
        self.metrics = _metrics_for(settings.metrics, bundled, self.storm_tags)
        tag_logs(self.logger, self.metrics.tags)
        self.logger.info("scoring with model %s", release_id(bundled.manifest))
        self._note_rate_ceiling(bundled)
        self.poller: Poller | None = None
        if settings.scoring.release_check_s > 0:
            watcher = ReleaseWatcher(
                ReleaseStore(create_redis(settings.redis)),
                settings.scoring.model_signing_key,
                columns=bundled.manifest.feature_names,
                current_id=release_id(bundled.manifest),
            )
            self.poller = Poller(watcher.check, settings.scoring.release_check_s)
            # A (re)started worker scores with the live release from its first tuple on.
            self.poller.run_once()
            self.apply_releases()
            self.poller.start()

    def process(self, tup: Tuple) -> None:
        self.apply_releases()
        started = time.perf_counter()
        try:
            batch = FeatureBatch.from_values(tup.values)
            scores = score_batch(self.model, batch, now_ms(), self.block_requests_1m)
        except Exception as exc:
            # A model that raises on some rows fails every batch holding one, and the spout
            # halves those batches: a traceback per tuple would flood the log.
            held = self.repeats.due((type(exc), str(exc)))
            if held is not None:
                self.logger.exception(
                    "cannot score tuple %s; failing it for a replay%s",
                    tup.id,
                    self.repeats.held_note(held),
                )
            self.metrics.count("failed")
            self.fail(tup)
            return
        self.metrics.histogram("predict_seconds", time.perf_counter() - started)
        self.emit(scores.to_values(), anchors=[tup])
        ceiling = int(
            over_rate_ceiling(self.model.manifest, batch.rows, self.block_requests_1m).sum()
        )
        if ceiling:
            self.metrics.count("rate_ceiling_blocks", ceiling)
        shadow = self._shadow_scores(tup, batch, scores.scored_time_ms)
        if shadow is not None:
            self.emit(shadow.to_values(), anchors=[tup], stream=SHADOW_STREAM)
        self.ack(tup)
        self._count_scores(scores)

    def _shadow_scores(self, tup: Tuple, batch: FeatureBatch, scored_ms: int) -> ScoreBatch | None:
        """The challenger's scores of ``batch``; None without one, or when it raised."""
        if self.challenger is None:
            return None
        try:
            shadow = score_batch(self.challenger, batch, scored_ms, self.block_requests_1m)
        except Exception as exc:
            held = self.repeats.due(("challenger", type(exc), str(exc)))
            if held is not None:
                self.logger.exception(
                    "challenger %s cannot score tuple %s; no shadow scores for it%s",
                    release_id(self.challenger.manifest),
                    tup.id,
                    self.repeats.held_note(held),
                )
            self.metrics.count("shadow_failed", len(batch.user_ids))
            return None
        challenger = f"challenger:{shadow.model_name}:{shadow.model_version}"
        self.metrics.count("shadow_scored", len(shadow.user_ids), tags=[challenger])
        return shadow

    def _count_scores(self, scores: ScoreBatch) -> None:
        """A few calls per batch, never one per user: decisions, tenths of the score, and
        how old the batch's oldest features were when scored."""
        self.metrics.histogram("batch_size", len(scores.user_ids))
        self.metrics.count("scored", len(scores.user_ids))
        for decision, n in Counter(scores.decisions).items():
            self.metrics.count("decisions", n, tags=[f"decision:{decision}"])
        for bucket, n in Counter(score_buckets(scores.scores)).items():
            self.metrics.count("scores", n, tags=[f"bucket:{bucket}"])
        oldest_ms = min(scores.feature_times_ms)
        self.metrics.histogram("feature_age_seconds", (scores.scored_time_ms - oldest_ms) / 1000)

    def _note_rate_ceiling(self, model: LoadedModel) -> None:
        """Say so when ``scoring.block_requests_1m`` cannot apply: the model has no rate."""
        if self.block_requests_1m and RATE_FEATURE not in model.manifest.feature_names:
            self.logger.warning(
                "model %s does not read %s: scoring.block_requests_1m (%d) blocks no one",
                release_id(model.manifest),
                RATE_FEATURE,
                self.block_requests_1m,
            )

    def apply_releases(self) -> None:
        """Act on what the release poller found; only ever between two tuples."""
        if self.poller is not None:
            for outcome in self.poller.pending():
                self._apply(outcome)

    def _apply(self, outcome: Outcome) -> None:
        running = release_id(self.model.manifest)
        if isinstance(outcome, (Switched, Refused)) and outcome.slot is Slot.SHADOW:
            self._apply_shadow(outcome)
        elif isinstance(outcome, ShadowStopped):
            self.logger.info("shadow scoring with %s stopped", outcome.release_id)
            self.challenger = None
        elif isinstance(outcome, Switched):
            self.logger.info("switching from model %s to published %s", running, outcome.release_id)
            previous, self.model = self.metrics, outcome.model
            self.metrics = _metrics_for(self.metrics_settings, outcome.model, self.storm_tags)
            tag_logs(self.logger, self.metrics.tags)
            previous.close()
            self.metrics.count("model_switched")
            self._note_rate_ceiling(outcome.model)
        elif isinstance(outcome, Refused):
            self.logger.error(
                "refused published model %s, still scoring with %s: %s",
                outcome.release_id,
                running,
                outcome.reason,
            )
            self.metrics.count("model_refused")
        elif isinstance(outcome, Unpublished):
            self.logger.error(
                "no model is published as live any more (was Redis emptied?); still scoring "
                "with %s, but a classifier started now scores with the bundled model: "
                "publish %s again",
                outcome.release_id,
                outcome.release_id,
            )
        elif isinstance(outcome, Unreachable):
            self.logger.warning(
                "cannot read published models from Redis (%s); scoring with %s, retrying",
                outcome.error,
                running,
            )
            self.metrics.count("releases_unreachable")
        elif isinstance(outcome, Reachable):
            self.logger.info("Redis answers again; published models are checked again")

    def _apply_shadow(self, outcome: Switched | Refused) -> None:
        if isinstance(outcome, Switched):
            self.logger.info("shadow scoring with challenger %s", outcome.release_id)
            self.challenger = outcome.model
            return
        running = "none" if self.challenger is None else release_id(self.challenger.manifest)
        self.logger.error(
            "refused challenger %s, shadow scoring goes on with %s: %s",
            outcome.release_id,
            running,
            outcome.reason,
        )
        self.metrics.count("shadow_refused")


def _metrics_for(settings: MetricsSettings, model: LoadedModel, tags: list[str]) -> Metrics:
    """Metrics tagged with the model that scores, so a switch shows on every graph."""
    manifest = model.manifest
    return Metrics(
        settings, Component.CLASSIFIER, tags=[f"model:{manifest.name}:{manifest.version}", *tags]
    )
