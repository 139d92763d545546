"""Protobuf payloads <-> records, with every way a payload can be wrong named.

Decoding is strict about what scoring needs (a user id, a known schema version, finite
feature values) and lenient about the rest (unknown fields are ignored), which is the
compatibility rule in ``proto/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from botscore import vocabulary
from botscore.errors import InvalidMessage
from botscore.v1.threat_score_pb2 import Decision, SourceRecord, ThreatScore
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import DeadLetterReason
from botscore.wire.records import FeatureRecord, ScoreRecord, SourceRef

__all__ = [
    "SUPPORTED_SCHEMA_VERSIONS",
    "UNSPECIFIED_DECISION",
    "decode_threat_score",
    "decode_user_features",
    "decode_web_log",
    "encode_threat_score",
    "encode_user_features",
    "parse_or_reject",
    "source_from_proto",
    "source_to_proto",
]

SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

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


def _decode_keyed(message: M, payload: bytes | None) -> M:
    """Parse a per-user message and check what every one needs: a user id, a known version."""
    if not payload:
        raise InvalidMessage(DeadLetterReason.EMPTY_PAYLOAD)
    parse_or_reject(message, payload)
    if not message.user_id:  # type: ignore[attr-defined]
        raise InvalidMessage(DeadLetterReason.MISSING_USER_ID)
    if not message.HasField("schema_version"):
        raise InvalidMessage(DeadLetterReason.MISSING_SCHEMA_VERSION)
    version = message.schema_version  # type: ignore[attr-defined]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidMessage(DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION, str(version))
    return message


def decode_user_features(
    payload: bytes | None, source: SourceRef, required: Collection[str] = ()
) -> FeatureRecord:
    """Decode and validate one ``UserFeatures`` payload, or raise ``InvalidMessage``.

    ``required`` names the features the model needs; a message without them can never be
    scored, so it is rejected here, where its original bytes are still at hand.
    """
    message = _decode_keyed(UserFeatures(), payload)
    features = dict(message.features)
    bad = sorted(name for name, value in features.items() if not math.isfinite(value))
    if bad:
        raise InvalidMessage(DeadLetterReason.NON_FINITE_FEATURE, ",".join(bad))
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


def decode_web_log(payload: bytes | None) -> WebLog:
    """Decode and validate one ``WebLog``: what the feature stage needs must be there."""
    message = _decode_keyed(WebLog(), payload)
    if message.time_unix_ms <= 0:
        raise InvalidMessage(DeadLetterReason.MISSING_TIME)
    if not message.request_id:
        raise InvalidMessage(DeadLetterReason.MISSING_REQUEST_ID)
    return message


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
    message = parse_or_reject(ThreatScore(), payload)
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
