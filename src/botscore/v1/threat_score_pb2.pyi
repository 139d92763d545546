from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_CHALLENGE: _ClassVar[Decision]
    DECISION_BLOCK: _ClassVar[Decision]
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_CHALLENGE: Decision
DECISION_BLOCK: Decision

class SourceRecord(_message.Message):
    __slots__ = ("topic", "partition", "offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ThreatScore(_message.Message):
    __slots__ = ("user_id", "score", "decision", "model_name", "model_version", "feature_time_unix_ms", "scored_time_unix_ms", "source")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SCORED_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    score: float
    decision: Decision
    model_name: str
    model_version: str
    feature_time_unix_ms: int
    scored_time_unix_ms: int
    source: SourceRecord
    def __init__(self, user_id: _Optional[str] = ..., score: _Optional[float] = ..., decision: _Optional[_Union[Decision, str]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., feature_time_unix_ms: _Optional[int] = ..., scored_time_unix_ms: _Optional[int] = ..., source: _Optional[_Union[SourceRecord, _Mapping]] = ...) -> None: ...
