from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class UserFeatures(_message.Message):
    __slots__ = ("user_id", "window_end_unix_ms", "features", "schema_version")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    window_end_unix_ms: int
    features: _containers.ScalarMap[str, float]
    schema_version: int
    def __init__(self, user_id: _Optional[str] = ..., window_end_unix_ms: _Optional[int] = ..., features: _Optional[_Mapping[str, float]] = ..., schema_version: _Optional[int] = ...) -> None: ...
