"""Kafka spout of the aggregation topology: edge ``WebLog`` requests in, request records out.

Each record carries the partition's replay floor, below which the feature store may
forget its dedup marks. Delivery: see ``KafkaSourceSpout``.
"""

from __future__ import annotations

from typing import Any

from botscore.aggregation.definitions import request_record
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.codec import decode_web_log
from botscore.wire.records import RequestRecord, SourceRef
from spouts.kafka_source import KafkaSourceSpout


class KafkaWebLogsSpout(KafkaSourceSpout):
    outputs = RequestRecord.FIELDS
    component = Component.WEB_LOGS_SPOUT

    def source(self, settings: Settings) -> tuple[str, str]:
        return settings.aggregation.web_logs_topic, settings.aggregation.consumer_group

    def decode(self, value: bytes | None, source: SourceRef) -> list[Any]:
        floor = self.in_flight.offsets.replay_floor((source.topic, source.partition))
        return request_record(decode_web_log(value), source, floor).to_values()
