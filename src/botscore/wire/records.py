"""Plain records that travel between components as Storm tuple values.

Storm's JSON multilang protocol has no bytes type, so the spout decodes protobuf and
components exchange these records as lists of JSON values (lists, str, int, float: what
a msgpack serializer carries too). Field order here is the tuple's field order, with a
``source`` field spread into ``topic, partition, offset``; ``FIELDS`` is what a
component declares as its outputs. The scoring topology's tuples carry a batch of users
of one partition (``FeatureBatch``, ``ScoreBatch``): per-user fields are parallel lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "FeatureBatch",
    "FeatureRecord",
    "RequestRecord",
    "ScoreBatch",
    "ScoreRecord",
    "SourceRef",
]

R = TypeVar("R", bound="_TupleRecord")
_SOURCE_FIELDS = ["topic", "partition", "offset"]
# JSON keeps ints and floats apart, but a replayed tuple may come from anywhere: coerce.
_COERCE = {"int": int, "float": float}


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from: identifies it for delivery tracking and idempotence."""

    topic: str
    partition: int
    offset: int

    def tuple_id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class _TupleRecord:
    FIELDS: ClassVar[list[str]]

    def to_values(self) -> list[Any]:
        values: list[Any] = []
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if isinstance(value, SourceRef):
                values += [value.topic, value.partition, value.offset]
            else:
                values.append(value)
        return values

    @classmethod
    def from_values(cls: type[R], values: list[Any]) -> R:
        remaining = iter(values)
        kwargs: dict[str, Any] = {}
        for item in fields(cls):  # type: ignore[arg-type]
            if item.type == "SourceRef":
                kwargs[item.name] = SourceRef(
                    next(remaining), int(next(remaining)), int(next(remaining))
                )
            else:
                value = next(remaining)
                coerce = _COERCE.get(str(item.type))
                kwargs[item.name] = coerce(value) if coerce else value
        return cls(**kwargs)


def _tuple_record(cls: type[R]) -> type[R]:
    """Give a dataclass record its ``FIELDS``: the names of its tuple values, in order."""
    cls.FIELDS = [
        name
        for item in fields(cls)  # type: ignore[arg-type]
        for name in (_SOURCE_FIELDS if item.type == "SourceRef" else [item.name])
    ]
    return cls


@_tuple_record
@dataclass(frozen=True)
class FeatureRecord(_TupleRecord):
    user_id: str
    window_end_ms: int
    features: dict[str, float]
    schema_version: int
    source: SourceRef


@_tuple_record
@dataclass(frozen=True)
class ScoreRecord(_TupleRecord):
    user_id: str
    score: float
    decision: str
    model_name: str
    model_version: str
    feature_time_ms: int
    scored_time_ms: int
    source: SourceRef


@_tuple_record
@dataclass(frozen=True)
class RequestRecord(_TupleRecord):
    """One edge request, reduced to what the feature stage uses.

    ``replay_floor`` is the lowest offset of ``source``'s partition that can still be
    delivered again: the feature store forgets that partition's dedup marks below it.
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


def _check_parallel(record: Any, names: list[str]) -> None:
    """Refuse a batch whose per-user lists do not all have one entry per offset."""
    lengths = {name: len(getattr(record, name)) for name in names}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{type(record).__name__} lists differ in length: {lengths}")


@_tuple_record
@dataclass(frozen=True)
class FeatureBatch(_TupleRecord):
    """Users read from consecutive offsets of one partition; ``rows`` holds each user's
    features in the model's feature order."""

    user_ids: list[str]
    window_end_ms: list[int]
    rows: list[list[float]]
    schema_versions: list[int]
    topic: str
    partition: int
    offsets: list[int]

    def __post_init__(self) -> None:
        _check_parallel(self, ["user_ids", "window_end_ms", "rows", "schema_versions", "offsets"])


@_tuple_record
@dataclass(frozen=True)
class ScoreBatch(_TupleRecord):
    """A ``FeatureBatch`` scored: one score and decision per user, in the same order."""

    user_ids: list[str]
    scores: list[float]
    decisions: list[str]
    model_name: str
    model_version: str
    feature_times_ms: list[int]
    scored_time_ms: int
    topic: str
    partition: int
    offsets: list[int]

    def __post_init__(self) -> None:
        _check_parallel(self, ["user_ids", "scores", "decisions", "feature_times_ms", "offsets"])

    def records(self) -> Iterator[ScoreRecord]:
        """One ``ScoreRecord`` per user, as each is written to Kafka."""
        for user_id, score, decision, feature_time_ms, offset in zip(
            self.user_ids,
            self.scores,
            self.decisions,
            self.feature_times_ms,
            self.offsets,
            strict=True,
        ):
            yield ScoreRecord(
                user_id=user_id,
                score=float(score),
                decision=decision,
                model_name=self.model_name,
                model_version=self.model_version,
                feature_time_ms=feature_time_ms,
                scored_time_ms=self.scored_time_ms,
                source=SourceRef(self.topic, self.partition, offset),
            )
