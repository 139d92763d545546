"""Plain records that travel between components as Storm tuple values.

Storm's JSON multilang protocol has no bytes type, so the spout decodes protobuf and
components exchange these records as lists of JSON values (lists, str, int, float: what
a msgpack serializer carries too). Field order here is the tuple's field order, with a
``source`` field spread into ``topic, partition, offset``; ``FIELDS`` is what a
component declares as its outputs. Tuples carry a batch of messages of one partition
(``RequestBatch``, ``FeatureBatch``, ``ScoreBatch``; a publisher's poll,
``PublicationBatch``): per-message fields are parallel lists
of plain values, so a serializer handles a few long lists, not a list per message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "FeatureBatch",
    "FeatureRecord",
    "PublicationBatch",
    "RequestBatch",
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
class RequestBatch(_TupleRecord):
    """Requests read from consecutive offsets of one partition, each reduced as a
    ``RequestRecord``; ``replay_floor`` is the partition's, as for a ``RequestRecord``, and
    ``generation`` the feature state's as the reader knew it ('' if it did not check)."""

    user_ids: list[str]
    times_ms: list[int]
    request_ids: list[str]
    ips: list[str]
    user_agents: list[str]
    paths: list[str]
    flags: list[list[str]]
    topic: str
    partition: int
    offsets: list[int]
    replay_floor: int
    generation: str = ""

    def __post_init__(self) -> None:
        per_request = ["user_ids", "times_ms", "request_ids", "ips", "user_agents", "paths"]
        _check_parallel(self, [*per_request, "flags", "offsets"])

    @classmethod
    def of(cls, records: Sequence[RequestRecord], generation: str = "") -> RequestBatch:
        """The batch of ``records``, which come from one partition.

        Its floor is the records' lowest: a floor only lets dedup marks go, and the lowest
        lets none go that a record's own floor would keep.
        """
        if not records:
            raise ValueError("a RequestBatch holds at least one request")
        topic, partition = records[0].source.topic, records[0].source.partition
        if any((r.source.topic, r.source.partition) != (topic, partition) for r in records):
            raise ValueError("a RequestBatch holds the requests of one partition")
        return cls(
            user_ids=[r.user_id for r in records],
            times_ms=[r.time_ms for r in records],
            request_ids=[r.request_id for r in records],
            ips=[r.ip for r in records],
            user_agents=[r.user_agent for r in records],
            paths=[r.path for r in records],
            flags=[r.flags for r in records],
            topic=topic,
            partition=partition,
            offsets=[r.source.offset for r in records],
            replay_floor=min(r.replay_floor for r in records),
            generation=generation,
        )

    def records(self) -> Iterator[RequestRecord]:
        """One ``RequestRecord`` per request, in offset order, as the feature store takes them."""
        for user_id, time_ms, request_id, ip, user_agent, path, flags, offset in zip(
            self.user_ids,
            self.times_ms,
            self.request_ids,
            self.ips,
            self.user_agents,
            self.paths,
            self.flags,
            self.offsets,
            strict=True,
        ):
            yield RequestRecord(
                user_id=user_id,
                time_ms=time_ms,
                request_id=request_id,
                ip=ip,
                user_agent=user_agent,
                path=path,
                flags=flags,
                source=SourceRef(self.topic, self.partition, offset),
                replay_floor=self.replay_floor,
            )


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
class PublicationBatch(_TupleRecord):
    """Users a publisher read in one poll: their features as of ``window_end_ms`` (their
    latest request), ``rows`` in ``feature_names``' order. ``publisher`` is the publisher's
    task index, what the topology groups on: one producer writes all of a publisher's
    tuples, so a user's publications reach Kafka in the order they were read."""

    publisher: int
    user_ids: list[str]
    window_end_ms: list[int]
    feature_names: list[str]
    rows: list[list[float]]

    def __post_init__(self) -> None:
        _check_parallel(self, ["user_ids", "window_end_ms", "rows"])


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
