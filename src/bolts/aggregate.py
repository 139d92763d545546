"""Aggregation bolt: folds a tuple's batch of edge requests into its users' state in Redis.

Delivery: a tuple is acked only after Redis has stored its whole batch (one round trip),
so a Redis outage loses nothing: the tuple is failed, the spout replays its batch with
backoff, and the dedup marks in Redis make a request that did land count once.
Publishing the features is the ``DueFeaturesSpout``'s job; this bolt emits nothing.
A user whose stored state was unusable (another program's value in its keys) has it
deleted and started again from the tuple's requests: logged and counted as ``state_reset``.
A tuple read under another generation of the state than Redis holds (Redis lost it since)
is failed: its spout reads the logs again for the new one (``StateLost``, logged once per
generation). With ``aggregation.state_replicas``, a tuple is acked only once that many
replicas of each Redis primary it wrote to have its batch; otherwise it is failed and
replayed (``unreplicated``), so a failover loses no acked request.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from streamparse import Tuple

from botscore.aggregation.redis_state import feature_store
from botscore.clock import now_ms
from botscore.errors import StateLost, StateNotReplicated
from botscore.metrics import Metrics, storm_tags
from botscore.multilang_pipe import Bolt
from botscore.observability.outage_log import OutageLog
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.records import RequestBatch


class AggregateBolt(Bolt):
    """Acks or fails each tuple itself, once Redis answered; it emits nothing to anchor."""

    outputs: list[str] = []
    auto_ack = False
    auto_anchor = False
    auto_fail = False

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf, role=Component.AGGREGATE.role)
        self.store = feature_store(settings)
        self.metrics = Metrics(
            settings.metrics, Component.AGGREGATE, tags=storm_tags(storm_conf, context)
        )
        tag_logs(self.logger, self.metrics.tags)
        self.refused_generation = ""  # the last generation a refusal was logged for
        # Every tuple fails while Redis is away: one line as it starts, one as it ends.
        self.redis_down = OutageLog(
            self.logger,
            "Redis did not take %d updates, replaying them until it does: %s",
            "Redis takes updates again after %.1f s; %d updates were failed meanwhile",
        )
        self.unreplicated = OutageLog(
            self.logger,
            "replaying %d updates not yet on replicas, and any more until they are: %s",
            "replicas confirm updates again after %.1f s; %d updates were failed meanwhile",
        )

    def process(self, tup: Tuple) -> None:
        batch = RequestBatch.from_values(tup.values)
        records = list(batch.records())
        started = time.perf_counter()
        try:
            applied = self.store.apply(records, now_ms(), batch.generation)
        except StateLost as exc:
            if batch.generation != self.refused_generation:
                self.refused_generation = batch.generation
                self.logger.warning("refusing tuples read before Redis lost the state: %s", exc)
            self.metrics.count("stale_batches")
            self.fail(tup)
            return
        except StateNotReplicated as exc:
            self.unreplicated.failed(len(records), exc)
            self.metrics.count("unreplicated", len(records))
            self.fail(tup)
            return
        except redis.RedisError as exc:
            self.redis_down.failed(len(records), exc)
            self.metrics.count("redis_failed", len(records))
            self.fail(tup)
            return
        self.ack(tup)
        self.redis_down.succeeded()
        self.unreplicated.succeeded()
        for user_id, reason in applied.reset.items():
            self.logger.error("deleted the unusable feature state of user %r: %s", user_id, reason)
        if applied.reset:
            self.metrics.count("state_reset", len(applied.reset))
        fresh = applied.fresh
        duplicates = len(fresh) - sum(fresh)
        self.metrics.count("applied", len(fresh) - duplicates)
        if duplicates:
            self.metrics.count("duplicates", duplicates)
        self.metrics.histogram("redis_seconds", time.perf_counter() - started)
        self.metrics.histogram("batch_size", len(records))
