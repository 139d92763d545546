from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TlsFingerprint(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TLS_FINGERPRINT_UNCHECKED: _ClassVar[TlsFingerprint]
    TLS_FINGERPRINT_MATCHES_USER_AGENT: _ClassVar[TlsFingerprint]
    TLS_FINGERPRINT_CONTRADICTS_USER_AGENT: _ClassVar[TlsFingerprint]
TLS_FINGERPRINT_UNCHECKED: TlsFingerprint
TLS_FINGERPRINT_MATCHES_USER_AGENT: TlsFingerprint
TLS_FINGERPRINT_CONTRADICTS_USER_AGENT: TlsFingerprint

class WebLog(_message.Message):
    __slots__ = ("time_unix_ms", "user_id", "ip", "ip_is_datacenter", "method", "path", "status", "user_agent", "referrer", "response_bytes", "js_check_passed", "request_id", "edge_node", "schema_version", "tls_fingerprint")
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    IP_IS_DATACENTER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    JS_CHECK_PASSED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EDGE_NODE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TLS_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    time_unix_ms: int
    user_id: str
    ip: str
    ip_is_datacenter: bool
    method: str
    path: str
    status: int
    user_agent: str
    referrer: str
    response_bytes: int
    js_check_passed: bool
    request_id: str
    edge_node: str
    schema_version: int
    tls_fingerprint: TlsFingerprint
    def __init__(self, time_unix_ms: _Optional[int] = ..., user_id: _Optional[str] = ..., ip: _Optional[str] = ..., ip_is_datacenter: bool = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., status: _Optional[int] = ..., user_agent: _Optional[str] = ..., referrer: _Optional[str] = ..., response_bytes: _Optional[int] = ..., js_check_passed: bool = ..., request_id: _Optional[str] = ..., edge_node: _Optional[str] = ..., schema_version: _Optional[int] = ..., tls_fingerprint: _Optional[_Union[TlsFingerprint, str]] = ...) -> None: ...
