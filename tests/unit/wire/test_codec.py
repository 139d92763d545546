"""Payloads <-> records, and every reason a payload is rejected."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botscore.errors import InvalidMessage
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.wire.codec import (
    decode_threat_score,
    decode_user_features,
    encode_threat_score,
    encode_user_features,
)
from botscore.wire.records import ScoreRecord, SourceRef

SOURCE = SourceRef("user-features", 2, 41)


def test_user_features_round_trip():
    payload = encode_user_features("u1", 1_700_000_000_000, {"requests_1m": 3.5})
    record = decode_user_features(payload, SOURCE)
    assert record.user_id == "u1"
    assert record.window_end_ms == 1_700_000_000_000
    assert record.features == {"requests_1m": 3.5}
    assert record.schema_version == 1
    assert record.source == SOURCE


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_payload"),
        (None, "empty_payload"),
        (b"\xff\xff\xff\xff", "undecodable"),
        (
            UserFeatures(window_end_unix_ms=1, schema_version=1).SerializeToString(),
            "missing_user_id",
        ),
        (UserFeatures(user_id="u").SerializeToString(), "missing_schema_version"),
        (
            UserFeatures(user_id="u", schema_version=99).SerializeToString(),
            "unsupported_schema_version",
        ),
        (
            UserFeatures(
                user_id="u", schema_version=1, features={"a": math.nan}
            ).SerializeToString(),
            "non_finite_feature",
        ),
        (
            UserFeatures(
                user_id="u", schema_version=1, features={"a": -math.inf}
            ).SerializeToString(),
            "non_finite_feature",
        ),
    ],
)
def test_invalid_payloads_name_their_reason(payload, reason):
    with pytest.raises(InvalidMessage) as caught:
        decode_user_features(payload, SOURCE)
    assert caught.value.reason == reason


def test_unknown_fields_from_a_newer_writer_are_ignored():
    newer = UserFeatures(user_id="u", schema_version=1).SerializeToString()
    newer += b"\xa8\x06\x07"  # field 101, varint 7: a field this reader does not know
    assert decode_user_features(newer, SOURCE).user_id == "u"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_but_invalid_message(payload):
    try:
        record = decode_user_features(payload, SOURCE)
    except InvalidMessage as exc:
        assert exc.reason
    else:
        assert record.user_id
        assert all(math.isfinite(v) for v in record.features.values())


def test_threat_score_round_trip():
    record = ScoreRecord("u1", 0.25, "challenge", "baseline", "3", 10, 20, SOURCE)
    assert decode_threat_score(encode_threat_score(record)) == record


def test_a_message_without_a_feature_the_model_needs_is_rejected_by_name():
    payload = encode_user_features("u1", 1, {"requests_1m": 1.0})
    with pytest.raises(InvalidMessage) as caught:
        decode_user_features(payload, SOURCE, required=("requests_1m", "requests_1h"))
    assert (caught.value.reason, caught.value.detail) == ("missing_feature", "requests_1h")


KNOWN_REASONS = {
    "empty_payload",
    "undecodable",
    "missing_user_id",
    "missing_schema_version",
    "unsupported_schema_version",
    "non_finite_feature",
    "missing_feature",
}


@given(
    user_id=st.text(max_size=20),
    version=st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    features=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(), max_size=3),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
)
def test_structured_fuzz_gives_a_valid_record_or_a_known_reason(user_id, version, features, cut):
    message = UserFeatures(user_id=user_id, features=features)
    if version is not None:
        message.schema_version = version
    payload = message.SerializeToString()
    if cut is not None:
        payload = payload[:cut]
    try:
        record = decode_user_features(payload, SOURCE, required=("a",))
    except InvalidMessage as exc:
        assert exc.reason in KNOWN_REASONS
        if cut is None and user_id and version == 1 and "a" in features:
            assert exc.reason == "non_finite_feature"
    else:
        assert record.user_id and record.schema_version == 1
        assert "a" in record.features
        assert all(math.isfinite(v) for v in record.features.values())
