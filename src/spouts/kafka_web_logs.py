"""Kafka spout of the aggregation topology: edge ``WebLog`` requests in, batches of them out.

A tuple carries up to ``aggregation.batch_size`` requests of one partition
(``RequestBatch``) with its partition's replay floor, below which the feature store may
forget that partition's dedup marks. A WebLog keyed by anything but its user id, stamped
more than ``aggregation.max_event_skew_ms`` ahead of this spout's clock, or over a field's
limit is dead-lettered (``decode_web_log``). Delivery: see ``KafkaSourceSpout``.
"""

from __future__ import annotations

from typing import Any

from botscore.aggregation.definitions import request_record
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
        self.max_skew_ms = Settings.from_options(storm_conf).aggregation.max_event_skew_ms
        super().initialize(storm_conf, context)

    def source(self, settings: Settings) -> tuple[str, str]:
        return settings.aggregation.web_logs_topic, settings.aggregation.consumer_group

    def messages_per_tuple(self, settings: Settings) -> int:
        return settings.aggregation.batch_size

    def decode(self, value: bytes | None, key: bytes | None, source: SourceRef) -> RequestRecord:
        log = decode_web_log(value, key, now_ms(), self.max_skew_ms)
        floor = self.in_flight.offsets.replay_floor((source.topic, source.partition))
        return request_record(log, source, floor)

    def tuple_values(self, rows: list[RequestRecord], sources: list[SourceRef]) -> list[Any]:
        return RequestBatch.of(rows).to_values()
