"""Plain records that travel between components as Storm tuple values.

Storm's JSON multilang protocol has no bytes type, so the spout decodes protobuf and
components exchange these records as lists of JSON values. Field order here is the
tuple's field order; ``FIELDS`` is what a component declares as its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["FeatureRecord", "RequestRecord", "ScoreRecord", "SourceRef"]


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from: identifies it for delivery tracking and idempotence."""

    topic: str
    partition: int
    offset: int

    def tuple_id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class FeatureRecord:
    user_id: str
    window_end_ms: int
    features: dict[str, float]
    schema_version: int
    source: SourceRef

    FIELDS: ClassVar[list[str]] = [
        "user_id",
        "window_end_ms",
        "features",
        "schema_version",
        "topic",
        "partition",
        "offset",
    ]

    def to_values(self) -> list[Any]:
        s = self.source
        return [
            self.user_id,
            self.window_end_ms,
            self.features,
            self.schema_version,
            s.topic,
            s.partition,
            s.offset,
        ]

    @classmethod
    def from_values(cls, values: list[Any]) -> FeatureRecord:
        user_id, window_end_ms, features, schema_version, topic, partition, offset = values
        return cls(
            user_id,
            int(window_end_ms),
            features,
            int(schema_version),
            SourceRef(topic, int(partition), int(offset)),
        )


@dataclass(frozen=True)
class ScoreRecord:
    user_id: str
    score: float
    decision: str
    model_name: str
    model_version: str
    feature_time_ms: int
    scored_time_ms: int
    source: SourceRef

    FIELDS: ClassVar[list[str]] = [
        "user_id",
        "score",
        "decision",
        "model_name",
        "model_version",
        "feature_time_ms",
        "scored_time_ms",
        "topic",
        "partition",
        "offset",
    ]

    def to_values(self) -> list[Any]:
        s = self.source
        return [
            self.user_id,
            self.score,
            self.decision,
            self.model_name,
            self.model_version,
            self.feature_time_ms,
            self.scored_time_ms,
            s.topic,
            s.partition,
            s.offset,
        ]

    @classmethod
    def from_values(cls, values: list[Any]) -> ScoreRecord:
        (
            user_id,
            score,
            decision,
            model_name,
            model_version,
            feature_time_ms,
            scored_time_ms,
            topic,
            partition,
            offset,
        ) = values
        return cls(
            user_id,
            float(score),
            decision,
            model_name,
            model_version,
            int(feature_time_ms),
            int(scored_time_ms),
            SourceRef(topic, int(partition), int(offset)),
        )


@dataclass(frozen=True)
class RequestRecord:
    """One edge request, reduced to what the feature stage uses.

    ``replay_floor`` is the lowest offset of the partition that can still be delivered
    again (the committed position): the feature store forgets dedup marks below it.
    """

    user_id: str
    time_ms: int
    request_id: str
    ip: str
    user_agent: str
    path: str
    flags: list[str]
    source: SourceRef
    replay_floor: int

    FIELDS: ClassVar[list[str]] = [
        "user_id",
        "time_ms",
        "request_id",
        "ip",
        "user_agent",
        "path",
        "flags",
        "topic",
        "partition",
        "offset",
        "replay_floor",
    ]

    def to_values(self) -> list[Any]:
        s = self.source
        return [
            self.user_id,
            self.time_ms,
            self.request_id,
            self.ip,
            self.user_agent,
            self.path,
            self.flags,
            s.topic,
            s.partition,
            s.offset,
            self.replay_floor,
        ]

    @classmethod
    def from_values(cls, values: list[Any]) -> RequestRecord:
        (
            user_id,
            time_ms,
            request_id,
            ip,
            user_agent,
            path,
            flags,
            topic,
            partition,
            offset,
            replay_floor,
        ) = values
        return cls(
            user_id,
            int(time_ms),
            request_id,
            ip,
            user_agent,
            path,
            list(flags),
            SourceRef(topic, int(partition), int(offset)),
            int(replay_floor),
        )
