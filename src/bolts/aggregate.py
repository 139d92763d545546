"""Aggregation bolt: folds each edge request into its user's feature state in Redis.

Delivery: a tuple is acked only after Redis has stored its update (one round trip per
micro-batch), so a Redis outage loses nothing: the batch is failed, the spout replays it
with backoff, and the dedup marks in Redis make an update that did land count once.
Publishing the features is the ``DueFeaturesSpout``'s job; this bolt emits nothing.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from streamparse import Tuple

from bolts.micro_batch import MicroBatchBolt
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.clock import now_ms
from botscore.metrics import Metrics
from botscore.settings import Settings
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Component
from botscore.wire.records import RequestRecord


class AggregateBolt(MicroBatchBolt[RequestRecord]):
    outputs: list[str] = []

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf)
        self.store = RedisFeatureStore(
            create_redis(settings.redis), settings.aggregation.state_ttl_s
        )
        self.metrics = Metrics(settings.metrics, Component.AGGREGATE)
        self.start_batching(settings.aggregation.batch_size, settings.aggregation.max_batch_wait_ms)

    def to_item(self, tup: Tuple) -> RequestRecord:
        return RequestRecord.from_values(tup.values)

    def handle_batch(self, batch: list[tuple[Tuple, RequestRecord]]) -> None:
        started = time.perf_counter()
        try:
            fresh = self.store.apply([r for _, r in batch], now_ms())
        except redis.RedisError as exc:
            self.logger.warning("Redis did not take %d updates, replaying: %s", len(batch), exc)
            self.metrics.count("redis_failed", len(batch))
            for tup, _ in batch:
                self.fail(tup)
            return
        for tup, _ in batch:
            self.ack(tup)
        duplicates = len(fresh) - sum(fresh)
        self.metrics.count("applied", len(fresh) - duplicates)
        if duplicates:
            self.metrics.count("duplicates", duplicates)
        self.metrics.histogram("redis_seconds", time.perf_counter() - started)
        self.metrics.histogram("batch_size", len(batch))
