from botscore.v1 import threat_score_pb2 as _threat_score_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeadLetter(_message.Message):
    __slots__ = ("original_value", "original_key", "reason", "detail", "component", "source", "dead_lettered_unix_ms")
    ORIGINAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    original_value: bytes
    original_key: bytes
    reason: str
    detail: str
    component: str
    source: _threat_score_pb2.SourceRecord
    dead_lettered_unix_ms: int
    def __init__(self, original_value: _Optional[bytes] = ..., original_key: _Optional[bytes] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., component: _Optional[str] = ..., source: _Optional[_Union[_threat_score_pb2.SourceRecord, _Mapping]] = ..., dead_lettered_unix_ms: _Optional[int] = ...) -> None: ...
