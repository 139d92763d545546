"""Protobuf payloads <-> records, with every way a payload can be wrong named.

Decoding is strict about what scoring needs (a user id, a known schema version, finite
feature values) and lenient about the rest (unknown fields are ignored), which is the
compatibility rule in ``proto/README.md``. It also enforces the limits that keep per-user
state bounded in bytes: every string that becomes a Redis key or member, or a Kafka key,
has a maximum length, and every integer bound for Redis's Lua is in a range a double holds
exactly. A detail quotes at most ``QUOTE_CHARS`` of a value, since it is logged.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Collection, Sequence
from typing import NamedTuple, TypeVar

from google.protobuf.message import DecodeError, Message

from botscore import vocabulary
from botscore.errors import InvalidMessage
from botscore.model.features import DOMAINS
from botscore.v1.threat_score_pb2 import Decision, SourceRecord, ThreatScore
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import DeadLetterReason
from botscore.wire.records import FeatureRecord, ScoreRecord, SourceRef

__all__ = [
    "HTTP_STATUSES",
    "INT64_MAX",
    "MAX_EXACT_INT",
    "MAX_IP_CHARS",
    "MAX_REQUEST_ID_BYTES",
    "MAX_USER_ID_BYTES",
    "QUOTE_CHARS",
    "SUPPORTED_SCHEMA_VERSIONS",
    "UINT32_MAX",
    "UINT64_MAX",
    "UNSPECIFIED_DECISION",
    "WEB_LOG_SCHEMA_VERSION",
    "FeatureRow",
    "canonical_ip",
    "check_web_log",
    "decode_feature_row",
    "decode_threat_score",
    "decode_user_features",
    "decode_web_log",
    "encode_threat_score",
    "encode_user_features",
    "ip_spelling",
    "parse_or_reject",
    "quote",
    "reject_empty",
    "source_from_proto",
    "source_to_proto",
]

SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
# What an edge writes into ``schema_version`` today.
WEB_LOG_SCHEMA_VERSION = 1

# A user id names Redis keys and keys Kafka records; a request id is a Redis set member.
MAX_USER_ID_BYTES = 256
MAX_REQUEST_ID_BYTES = 128
# The longest text form of an address (IPv4-mapped IPv6).
MAX_IP_CHARS = 45
# The largest integer a double, hence Redis's Lua, holds exactly.
MAX_EXACT_INT = 2**53 - 1
# What protobuf's integer types hold: a reader builds a message from any value within them,
# and the decoders refuse what is out of range for its field.
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
# RFC 9110, section 15.
HTTP_STATUSES = range(100, 600)
# The most of a value an error detail quotes.
QUOTE_CHARS = 64
# C0 and C1 controls (DEL among them) and the Unicode line and paragraph separators: what
# ends a log line, or drives a terminal, where a user id is printed.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

M = TypeVar("M", bound=Message)

# What ``decode_threat_score`` says for a decision field that is missing or unknown.
UNSPECIFIED_DECISION = "unspecified"
# Keyed by plain strings: a record's decision arrives as a Storm tuple value.
_DECISIONS: dict[str, Decision] = {
    vocabulary.Decision.ALLOW: Decision.DECISION_ALLOW,
    vocabulary.Decision.CHALLENGE: Decision.DECISION_CHALLENGE,
    vocabulary.Decision.BLOCK: Decision.DECISION_BLOCK,
}
_DECISION_NAMES = {number: name for name, number in _DECISIONS.items()}


def source_to_proto(source: SourceRef) -> SourceRecord:
    return SourceRecord(topic=source.topic, partition=source.partition, offset=source.offset)


def source_from_proto(source: SourceRecord) -> SourceRef:
    return SourceRef(source.topic, source.partition, source.offset)


def parse_or_reject(message: M, payload: bytes) -> M:
    """Parse ``payload`` into ``message``; bytes protobuf cannot parse are ``undecodable``."""
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise InvalidMessage(DeadLetterReason.UNDECODABLE, str(exc)) from None
    return message


def quote(value: str | bytes | None) -> str:
    """``value`` as an error detail shows it: at most ``QUOTE_CHARS``, and its size if cut."""
    if value is None:
        return "none"
    shown = repr(value[:QUOTE_CHARS])
    if len(value) <= QUOTE_CHARS:
        return shown
    size = len(value) if isinstance(value, bytes) else len(value.encode())
    return f"{shown}... ({size} bytes)"


def _check_length(field: str, value: str, max_bytes: int) -> None:
    size = len(value.encode())
    if size > max_bytes:
        raise InvalidMessage(
            DeadLetterReason.FIELD_TOO_LONG,
            f"{field} is {size} bytes, more than {max_bytes}: {quote(value)}",
        )


def _check_range(field: str, value: int, allowed: range) -> None:
    if value not in allowed:
        raise InvalidMessage(
            DeadLetterReason.OUT_OF_RANGE,
            f"{field} {value} is outside {allowed.start}..{allowed.stop - 1}",
        )


def reject_empty(payload: bytes | None) -> bytes:
    """``payload``, unless it is empty: a tombstone (no value) or 0 bytes, told apart in the
    detail, since a dead letter carries both as 0 bytes."""
    if payload is None:
        raise InvalidMessage(
            DeadLetterReason.EMPTY_PAYLOAD, "a tombstone: the message has no value"
        )
    if not payload:
        raise InvalidMessage(DeadLetterReason.EMPTY_PAYLOAD, "the value is 0 bytes")
    return payload


def _decode_keyed(message: M, payload: bytes | None) -> M:
    """Parse a per-user message and check what every one needs: a user id, a known version."""
    payload = reject_empty(payload)
    parse_or_reject(message, payload)
    if not message.user_id:  # type: ignore[attr-defined]
        raise InvalidMessage(DeadLetterReason.MISSING_USER_ID)
    if not message.HasField("schema_version"):
        raise InvalidMessage(DeadLetterReason.MISSING_SCHEMA_VERSION)
    version = message.schema_version  # type: ignore[attr-defined]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidMessage(DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION, str(version))
    _check_length("user_id", message.user_id, MAX_USER_ID_BYTES)  # type: ignore[attr-defined]
    _check_user_id(message.user_id)  # type: ignore[attr-defined]
    return message


def _check_user_id(user_id: str) -> None:
    """Refuse a user id that names no one (blank) or would garble the logs that print it."""
    if _CONTROL.search(user_id):
        raise InvalidMessage(
            DeadLetterReason.OUT_OF_RANGE, f"user_id {quote(user_id)} has a control character"
        )
    if not user_id.strip():
        raise InvalidMessage(DeadLetterReason.MISSING_USER_ID, f"user_id {quote(user_id)} is blank")


class FeatureRow(NamedTuple):
    """One ``UserFeatures`` as a row of a model's input: the features it needs, in order."""

    user_id: str
    window_end_ms: int
    schema_version: int
    values: list[float]


def _check_finite(features: dict[str, float]) -> None:
    """Refuse NaN and infinite values, naming them (the names are the sender's: quoted)."""
    bad = sorted(name for name, value in features.items() if not math.isfinite(value))
    if bad:
        raise InvalidMessage(DeadLetterReason.NON_FINITE_FEATURE, quote(",".join(bad)))


def _check_key(key: bytes | None, user_id: str) -> None:
    """Refuse a message keyed by anything but its user id: a user's messages must all be on
    the one partition that id maps to."""
    if key != user_id.encode():
        raise InvalidMessage(
            DeadLetterReason.KEY_MISMATCH, f"key {quote(key)} is not the user id {quote(user_id)}"
        )


def _decode_features(
    payload: bytes | None, key: bytes | None, now_ms: int, max_skew_ms: int
) -> tuple[UserFeatures, dict[str, float]]:
    """What both feature decoders check before the features a model needs.

    ``key`` is the Kafka record's key: a user's scores go to its features' partition, so
    its features must all be on the one its id maps to. The window end is checked as a
    ``WebLog``'s time is, against the reader's clock ``now_ms`` and ``max_skew_ms``, but
    with no age limit: ``botscore backfill`` re-scores old ranges through the same decoder.
    """
    message = _decode_keyed(UserFeatures(), payload)
    _check_key(key, message.user_id)
    _check_time("window end", message.window_end_unix_ms, now_ms, max_skew_ms)
    features = dict(message.features)
    _check_finite(features)
    _check_domains(features)
    return message, features


def _check_domains(features: dict[str, float]) -> None:
    """Refuse a catalogue feature outside its domain (``model.features.DOMAINS``), naming
    the first in the catalogue's order; a feature it does not know needs only be finite."""
    for name, domain in DOMAINS.items():
        value = features.get(name)
        if value is not None and value not in domain:
            raise InvalidMessage(
                DeadLetterReason.OUT_OF_RANGE, f"{quote(name)} {value!r} is outside {domain}"
            )


def decode_feature_row(
    payload: bytes | None, key: bytes | None, names: Sequence[str], now_ms: int, max_skew_ms: int
) -> FeatureRow:
    """Decode ``payload`` straight into a row of the features ``names``, in that order.

    Accepts and rejects exactly what ``decode_user_features`` does with the same arguments,
    with the same reasons, without a record and its features mapping per user.
    """
    message, features = _decode_features(payload, key, now_ms, max_skew_ms)
    try:
        values = [features[name] for name in names]
    except KeyError:
        missing = [name for name in names if name not in features]
        raise InvalidMessage(DeadLetterReason.MISSING_FEATURE, ",".join(missing)) from None
    return FeatureRow(message.user_id, message.window_end_unix_ms, message.schema_version, values)


def decode_user_features(
    payload: bytes | None,
    key: bytes | None,
    source: SourceRef,
    now_ms: int,
    max_skew_ms: int,
    required: Collection[str] = (),
) -> FeatureRecord:
    """Decode and validate one ``UserFeatures`` payload, or raise ``InvalidMessage``.

    ``required`` names the features the model needs; a message without them can never be
    scored, so it is rejected here, where its original bytes are still at hand.
    """
    message, features = _decode_features(payload, key, now_ms, max_skew_ms)
    missing = [name for name in required if name not in features]
    if missing:
        raise InvalidMessage(DeadLetterReason.MISSING_FEATURE, ",".join(missing))
    return FeatureRecord(
        user_id=message.user_id,
        window_end_ms=message.window_end_unix_ms,
        features=features,
        schema_version=message.schema_version,
        source=source,
    )


def decode_web_log(
    payload: bytes | None,
    key: bytes | None,
    now_ms: int,
    max_skew_ms: int,
    *,
    max_age_ms: int | None,
) -> WebLog:
    """Decode and validate one ``WebLog``: what the feature stage needs, within its limits.

    ``key`` is the Kafka record's key and must be the user id: a user's requests are
    deduplicated per partition, which holds only if they all arrive on the one partition
    their id maps to. ``now_ms`` is the reader's clock: windows end at the user's latest
    time, so a time more than ``max_skew_ms`` ahead of it would push every real request
    out of them; one more than ``max_age_ms`` behind it (None: no limit) would count in no
    window a live decision reads.
    """
    message = _decode_keyed(WebLog(), payload)
    _check_key(key, message.user_id)
    check_web_log(message, now_ms, max_skew_ms, max_age_ms=max_age_ms)
    return message


def _check_time(field: str, time_ms: int, now_ms: int, max_skew_ms: int) -> None:
    """Refuse a time that is unset (0, protobuf's default), before 1970, or more than
    ``max_skew_ms`` ahead of ``now_ms`` or past what Redis's Lua holds exactly."""
    if time_ms == 0:
        raise InvalidMessage(DeadLetterReason.MISSING_TIME)
    if time_ms < 0:
        raise InvalidMessage(DeadLetterReason.OUT_OF_RANGE, f"{field} {time_ms} is before 1970")
    latest = min(now_ms + max_skew_ms, MAX_EXACT_INT)
    if time_ms > latest:
        raise InvalidMessage(
            DeadLetterReason.TIME_IN_FUTURE,
            f"{field} {time_ms} is after {latest} (the clock {now_ms} plus {max_skew_ms} ms)",
        )


def check_web_log(
    message: WebLog, now_ms: int, max_skew_ms: int, *, max_age_ms: int | None
) -> None:
    """``InvalidMessage`` when ``message`` is not a request the feature stage can count: the
    checks of ``decode_web_log`` after the key's, for requests read without Kafka."""
    time_ms = message.time_unix_ms
    _check_time("time", time_ms, now_ms, max_skew_ms)
    if max_age_ms is not None and time_ms < now_ms - max_age_ms:
        raise InvalidMessage(
            DeadLetterReason.TIME_TOO_OLD,
            f"time {time_ms} is before {now_ms - max_age_ms} (the clock {now_ms} less "
            f"{max_age_ms} ms)",
        )
    if not message.request_id:
        raise InvalidMessage(DeadLetterReason.MISSING_REQUEST_ID)
    _check_length("request_id", message.request_id, MAX_REQUEST_ID_BYTES)
    canonical_ip(message.ip)
    _check_range("status", message.status, HTTP_STATUSES)
    _check_range("response_bytes", message.response_bytes, range(MAX_EXACT_INT + 1))


def canonical_ip(text: str) -> str:
    """The one spelling of the address ``text`` (``::1`` for ``::0001``), which the distinct
    addresses count, or ``InvalidMessage`` (``invalid_ip``). A scope id (``fe80::1%eth0``)
    is refused: it names an interface of the sender's, in any characters."""
    address = _address(text)
    if address is None:
        raise InvalidMessage(
            DeadLetterReason.INVALID_IP, f"ip {quote(text)} is not an IPv4 or IPv6 address"
        )
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise InvalidMessage(DeadLetterReason.INVALID_IP, f"ip {quote(text)} has a scope id")
    return str(address)


def ip_spelling(text: str) -> str:
    """``text`` in its one spelling when it is an address, else as it is: what the feature
    state counts. Refusing is the decoders' (``canonical_ip``), before anything is stored."""
    address = _address(text)
    return text if address is None else str(address)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text) if len(text) <= MAX_IP_CHARS else None
    except ValueError:
        return None


def encode_user_features(
    user_id: str, window_end_ms: int, features: dict[str, float], schema_version: int = 1
) -> bytes:
    message = UserFeatures(
        user_id=user_id,
        window_end_unix_ms=window_end_ms,
        features=features,
        schema_version=schema_version,
    )
    return message.SerializeToString()


def encode_threat_score(record: ScoreRecord) -> bytes:
    message = ThreatScore(
        user_id=record.user_id,
        score=record.score,
        decision=_DECISIONS[record.decision],
        model_name=record.model_name,
        model_version=record.model_version,
        feature_time_unix_ms=record.feature_time_ms,
        scored_time_unix_ms=record.scored_time_ms,
        source=source_to_proto(record.source),
    )
    return message.SerializeToString()


def decode_threat_score(payload: bytes) -> ScoreRecord:
    """Decode a ``ThreatScore``; its user id, which keys Redis decisions, is length-checked."""
    message = parse_or_reject(ThreatScore(), payload)
    _check_length("user_id", message.user_id, MAX_USER_ID_BYTES)
    return ScoreRecord(
        user_id=message.user_id,
        score=message.score,
        decision=_DECISION_NAMES.get(message.decision, UNSPECIFIED_DECISION),
        model_name=message.model_name,
        model_version=message.model_version,
        feature_time_ms=message.feature_time_unix_ms,
        scored_time_ms=message.scored_time_unix_ms,
        source=source_from_proto(message.source),
    )
