"""Kafka spout of the aggregation topology: edge ``WebLog`` requests in, batches of them out.

A tuple carries up to ``aggregation.batch_size`` requests of one partition
(``RequestBatch``) with its partition's replay floor, below which the feature store may
forget that partition's dedup marks. A WebLog keyed by anything but its user id, stamped
more than ``aggregation.max_event_skew_ms`` ahead of this spout's clock, or over a field's
limit is dead-lettered (``decode_web_log``). Delivery: see ``KafkaSourceSpout``.

The state the tuples build is the feature store's, in Redis: every
``aggregation.state_check_ms`` the spout reads its generation, and when Redis lost it the
spout reads its partitions again from ``aggregation.state_ttl_s`` (and the allowed event
skew) back (``KafkaSourceSpout``). Each batch carries the generation it was read under,
and the store refuses one read under another than Redis holds, so the new state is built
from the logs read again alone.
"""

from __future__ import annotations

from typing import Any

import redis

from botscore.aggregation.definitions import request_record
from botscore.aggregation.redis_state import feature_store
from botscore.clock import now_ms
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import decode_web_log
from botscore.wire.records import RequestBatch, RequestRecord, SourceRef
from spouts.kafka_source import KafkaSourceSpout


class KafkaWebLogsSpout(KafkaSourceSpout):
    outputs = RequestBatch.FIELDS
    component = Component.WEB_LOGS_SPOUT

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        settings = Settings.from_options(storm_conf, role=self.component.role)
        self.max_skew_ms = settings.aggregation.max_event_skew_ms
        self.max_age_ms = settings.aggregation.max_event_age_ms
        self.rebuild_ms = settings.aggregation.state_ttl_s * 1000 + self.max_skew_ms
        self.store = feature_store(settings)
        self.generation_known = True  # the last check reached Redis: log the first failure
        super().initialize(storm_conf, context)

    def state_check_interval_s(self, settings: Settings) -> float:
        return settings.aggregation.state_check_ms / 1000

    def state_generation(self) -> str | None:
        try:
            generation = self.store.read_generation()
        except redis.RedisError as exc:
            if self.generation_known:
                self.logger.warning("cannot check the feature state in Redis: %s", exc)
            self.generation_known = False
            return None
        self.generation_known = True
        return generation

    def rebuild_since_ms(self) -> int:
        return now_ms() - self.rebuild_ms

    def source(self, settings: Settings) -> tuple[str, str]:
        return settings.aggregation.web_logs_topic, settings.aggregation.consumer_group

    def messages_per_tuple(self, settings: Settings) -> int:
        return settings.aggregation.batch_size

    def decode(self, value: bytes | None, key: bytes | None, source: SourceRef) -> RequestRecord:
        log = decode_web_log(value, key, now_ms(), self.max_skew_ms, max_age_ms=self.max_age_ms)
        floor = self.in_flight.offsets.replay_floor((source.topic, source.partition))
        return request_record(log, source, floor)

    def tuple_values(self, rows: list[RequestRecord], sources: list[SourceRef]) -> list[Any]:
        return RequestBatch.of(rows, self.generation or "").to_values()
