"""Payloads <-> records, and every reason a payload is rejected."""

import math

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from botscore.aggregation.definitions import request_record
from botscore.errors import InvalidMessage
from botscore.model.features import CATALOG
from botscore.model.sample_users import sample_users
from botscore.v1.threat_score_pb2 import ThreatScore
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.codec import (
    FeatureRow,
    decode_feature_row,
    decode_threat_score,
    decode_user_features,
    decode_web_log,
    encode_threat_score,
    encode_user_features,
    quote,
)
from botscore.wire.records import ScoreRecord, SourceRef

SOURCE = SourceRef("user-features", 2, 41)
NOW = 1_790_000_000_000
SKEW = 300_000
AGE = 86_400_000


def own_key(payload: bytes | None) -> bytes:
    """The key a producer gives ``payload``: its user id (none when it has none)."""
    try:
        return UserFeatures.FromString(payload or b"").user_id.encode()
    except DecodeError:
        return b""


def test_user_features_round_trip():
    payload = encode_user_features("u1", 1_700_000_000_000, {"requests_1m": 3.5})
    record = decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW)
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
                user_id="u", window_end_unix_ms=1, schema_version=1, features={"a": math.nan}
            ).SerializeToString(),
            "non_finite_feature",
        ),
        (
            UserFeatures(
                user_id="u", window_end_unix_ms=1, schema_version=1, features={"a": -math.inf}
            ).SerializeToString(),
            "non_finite_feature",
        ),
    ],
)
def test_invalid_payloads_name_their_reason(payload, reason):
    with pytest.raises(InvalidMessage) as caught:
        decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW)
    assert caught.value.reason == reason


def test_unknown_fields_from_a_newer_writer_are_ignored():
    newer = UserFeatures(user_id="u", window_end_unix_ms=1, schema_version=1).SerializeToString()
    newer += b"\xa8\x06\x07"  # field 101, varint 7: a field this reader does not know
    assert decode_user_features(newer, own_key(newer), SOURCE, NOW, SKEW).user_id == "u"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_anything_but_invalid_message(payload):
    try:
        record = decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW)
    except InvalidMessage as exc:
        assert exc.reason
    else:
        assert record.user_id
        assert all(math.isfinite(v) for v in record.features.values())


def test_threat_score_round_trip():
    record = ScoreRecord("u1", 0.25, "challenge", "baseline", "3", 10, 20, SOURCE)
    assert decode_threat_score(encode_threat_score(record)) == record


def test_a_threat_score_without_a_known_decision_says_unspecified():
    assert decode_threat_score(ThreatScore(user_id="u1").SerializeToString()).decision == (
        "unspecified"
    )


def test_a_message_without_a_feature_the_model_needs_is_rejected_by_name():
    payload = encode_user_features("u1", 1, {"requests_1m": 1.0})
    with pytest.raises(InvalidMessage) as caught:
        decode_user_features(
            payload, own_key(payload), SOURCE, NOW, SKEW, required=("requests_1m", "requests_1h")
        )
    assert (caught.value.reason, caught.value.detail) == ("missing_feature", "requests_1h")


KNOWN_REASONS = {
    "out_of_range",
    "empty_payload",
    "undecodable",
    "missing_user_id",
    "missing_schema_version",
    "unsupported_schema_version",
    "non_finite_feature",
    "missing_feature",
    "missing_time",
    "time_in_future",
    "key_mismatch",
}


@given(
    user_id=st.text(max_size=20),
    window_end_ms=st.one_of(
        st.integers(min_value=1, max_value=NOW + SKEW), st.integers(-(2**63), 2**63 - 1)
    ),
    version=st.one_of(st.just(1), st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    features=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(), max_size=3),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
)
def test_structured_fuzz_gives_a_valid_record_or_a_known_reason(
    user_id, window_end_ms, version, features, cut
):
    message = UserFeatures(user_id=user_id, window_end_unix_ms=window_end_ms, features=features)
    if version is not None:
        message.schema_version = version
    payload = message.SerializeToString()
    if cut is not None:
        payload = payload[:cut]
    try:
        record = decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW, required=("a",))
    except InvalidMessage as exc:
        assert exc.reason in KNOWN_REASONS
        timely = 0 < window_end_ms <= NOW + SKEW
        if cut is None and _usable(user_id) and timely and version == 1 and "a" in features:
            assert exc.reason == "non_finite_feature"
    else:
        assert record.user_id and record.schema_version == 1
        assert 0 < record.window_end_ms <= NOW + SKEW
        assert "a" in record.features
        assert all(math.isfinite(v) for v in record.features.values())


def _usable(user_id: str) -> bool:
    """Whether the decoders take ``user_id``: not blank, no control character."""
    controls = {*map(chr, range(32)), *map(chr, range(127, 160)), "\u2028", "\u2029"}
    return bool(user_id.strip()) and not controls.intersection(user_id)


def _both(
    payload: bytes | None, key: bytes | None, names: tuple[str, ...]
) -> tuple[object, object]:
    """What ``decode_user_features`` and ``decode_feature_row`` make of ``payload`` keyed by
    ``key``: the record as a row, or the rejection as (reason, detail)."""
    answers: list[object] = []
    for decode in (
        lambda: _as_row(decode_user_features(payload, key, SOURCE, NOW, SKEW, names), names),
        lambda: decode_feature_row(payload, key, names, NOW, SKEW),
    ):
        try:
            answers.append(decode())
        except InvalidMessage as exc:
            answers.append((exc.reason, exc.detail))
    return answers[0], answers[1]


def _as_row(record, names):
    return FeatureRow(
        record.user_id,
        record.window_end_ms,
        record.schema_version,
        [record.features[n] for n in names],
    )


NAMES = st.sampled_from(["a", "b", "c", "d"])
# Non-finite values now and then, beside the names asked for or among them.
FINITE = st.floats(allow_nan=False, allow_infinity=False)
VALUES = st.one_of(FINITE, FINITE, FINITE, st.sampled_from([math.nan, math.inf, -math.inf]))


@settings(max_examples=500)
@given(
    user_id=st.text(max_size=20),
    window_end_ms=st.one_of(
        st.integers(min_value=1, max_value=NOW + SKEW), st.integers(-(2**63), 2**63 - 1)
    ),
    version=st.one_of(st.just(1), st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    features=st.dictionaries(NAMES, VALUES, min_size=2, max_size=4),
    names=st.lists(NAMES, max_size=4, unique=True).map(tuple),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
    noise=st.one_of(st.none(), st.binary(max_size=64)),
    key=st.one_of(st.none(), st.none(), st.binary(max_size=8)),
)
def test_a_feature_row_agrees_with_the_record_on_any_payload(
    user_id, window_end_ms, version, features, names, cut, noise, key
):
    message = UserFeatures(user_id=user_id, window_end_unix_ms=window_end_ms, features=features)
    if version is not None:
        message.schema_version = version
    payload = message.SerializeToString()
    if cut is not None:
        payload = payload[:cut]
    if noise is not None:
        payload = noise if cut is None else payload + noise
    record_answer, row_answer = _both(payload, own_key(payload) if key is None else key, names)
    assert row_answer == record_answer


@given(st.one_of(st.none(), st.binary(max_size=512)), st.one_of(st.none(), st.binary(max_size=8)))
def test_a_feature_row_agrees_with_the_record_on_arbitrary_bytes(payload, key):
    record_answer, row_answer = _both(payload, key, ("a", "b"))
    assert row_answer == record_answer


@pytest.mark.parametrize(
    ("window_end_ms", "reason", "detail"),
    [
        (0, "missing_time", ""),
        (-1, "out_of_range", "window end -1 is before 1970"),
        (-(2**63), "out_of_range", f"window end {-(2**63)} is before 1970"),
        (
            NOW + SKEW + 1,
            "time_in_future",
            f"window end {NOW + SKEW + 1} is after {NOW + SKEW} (the clock {NOW} plus {SKEW} ms)",
        ),
        (
            2**63 - 1,
            "time_in_future",
            f"window end {2**63 - 1} is after {NOW + SKEW} (the clock {NOW} plus {SKEW} ms)",
        ),
    ],
)
def test_a_window_end_unset_before_1970_or_ahead_of_the_clock_is_refused(
    window_end_ms, reason, detail
):
    payload = encode_user_features("u1", window_end_ms, {"a": 1.0})
    rejected = _rejected(payload)
    assert (rejected.reason, rejected.detail) == (reason, detail)
    assert _both(payload, own_key(payload), ("a",)) == ((reason, detail), (reason, detail))


@pytest.mark.parametrize("window_end_ms", [1, NOW - 365 * 86_400_000, NOW, NOW + SKEW])
def test_a_window_end_of_any_age_up_to_the_skew_is_taken(window_end_ms):
    """No age limit: ``botscore backfill`` re-scores old ranges through these decoders."""
    payload = encode_user_features("u1", window_end_ms, {"a": 1.0})
    record = decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW)
    assert record.window_end_ms == window_end_ms
    assert (
        decode_feature_row(payload, own_key(payload), ("a",), NOW, SKEW).window_end_ms
        == window_end_ms
    )


def test_no_window_end_beyond_what_lua_holds_exactly_is_taken_whatever_the_skew():
    over = encode_user_features("u1", 2**53, {"a": 1.0})
    with pytest.raises(InvalidMessage) as caught:
        decode_feature_row(over, own_key(over), ("a",), NOW, 2**62)
    assert caught.value.reason == "time_in_future"
    exact = encode_user_features("u1", 2**53 - 1, {"a": 1.0})
    assert (
        decode_user_features(exact, own_key(exact), SOURCE, NOW, 2**62).window_end_ms == 2**53 - 1
    )


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        (None, "key none is not the user id 'u1'"),
        (b"", "key b'' is not the user id 'u1'"),
        (b"u2", "key b'u2' is not the user id 'u1'"),
        (b"u1\x00", "key b'u1\\x00' is not the user id 'u1'"),
    ],
)
def test_user_features_keyed_by_anything_but_their_user_id_are_refused(key, detail):
    payload = encode_user_features("u1", NOW, {"a": 1.0})
    rejection = ("key_mismatch", detail)
    assert _both(payload, key, ("a",)) == (rejection, rejection)


@pytest.mark.parametrize(
    ("name", "value", "domain"),
    [
        ("requests_1m", -1.0, "0 or more"),
        ("distinct_ips_4h", -1e-300, "0 or more"),
        ("login_attempts_1h", -1e300, "0 or more"),
        ("error_ratio_1h", 1.0000000000000002, "0..1"),
        ("tls_contradicts_ua_ratio_1h", -0.5, "0..1"),
        ("js_check_ratio_1h", 1e300, "0..1"),
        ("interarrival_mean_s", -0.001, "0 or more"),
        ("interarrival_cv", -1.0, "0 or more"),
    ],
)
def test_a_catalogue_feature_outside_its_domain_is_refused_by_name_and_value(name, value, domain):
    payload = encode_user_features("u1", NOW, {"a": 1.0, name: value})
    rejection = ("out_of_range", f"{quote(name)} {value!r} is outside {domain}")
    assert _both(payload, own_key(payload), ("a",)) == (rejection, rejection)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("requests_1m", 0.0),
        ("requests_1h", -0.0),
        ("requests_1h", 1e300),  # no upper bound on a count: the rate ceiling judges it
        ("error_ratio_1h", 0.0),
        ("error_ratio_1h", 1.0),
        ("interarrival_mean_s", 0.0),  # requests within one millisecond
        ("interarrival_cv", 0.0),
        ("not_in_the_catalogue", -5.0),  # only finite: a newer stage's feature
    ],
)
def test_a_feature_at_the_edge_of_its_domain_is_taken(name, value):
    payload = encode_user_features("u1", NOW, {name: value})
    assert decode_feature_row(payload, own_key(payload), (name,), NOW, SKEW).values == [value]


def test_every_sample_user_of_botscore_feed_is_taken():
    for user in sample_users(2000, seed=11):
        payload = encode_user_features(user.user_id, NOW, user.features)
        decode_feature_row(payload, own_key(payload), CATALOG, NOW, SKEW)


def test_a_feature_row_holds_the_named_features_in_their_order():
    payload = encode_user_features("u1", 1_700_000_000_000, {"a": 1.5, "b": -2.0, "c": 0.0})
    assert decode_feature_row(payload, own_key(payload), ("c", "a"), NOW, SKEW) == FeatureRow(
        "u1", 1_700_000_000_000, 1, [0.0, 1.5]
    )


def test_a_feature_row_names_every_missing_feature_in_the_order_asked():
    payload = encode_user_features("u1", 1, {"b": 1.0})
    with pytest.raises(InvalidMessage) as caught:
        decode_feature_row(payload, own_key(payload), ("d", "b", "a"), NOW, SKEW)
    assert (caught.value.reason, caught.value.detail) == ("missing_feature", "d,a")


def _rejected(payload: bytes | None, required: tuple[str, ...] = ()) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW, required)
    return caught.value


def test_undecodable_names_what_protobuf_could_not_parse():
    assert "botscore.v1.UserFeatures" in _rejected(b"\xff\xff\xff\xff").detail


def test_unsupported_schema_version_names_the_version():
    payload = UserFeatures(user_id="u", schema_version=99).SerializeToString()
    assert _rejected(payload).detail == "99"


def test_non_finite_features_are_named_in_order():
    features = {"b": math.nan, "c": 1.0, "a": math.inf}
    payload = encode_user_features("u", 1, features)
    assert _rejected(payload).detail == "'a,b'"


def test_non_finite_feature_names_are_quoted_so_they_cannot_forge_a_log_line():
    features = {"x\nFAKE": math.nan}
    payload = encode_user_features("u", 1, features)
    assert _rejected(payload).detail == "'x\\nFAKE'"


def test_non_finite_feature_names_are_cut_like_any_quoted_value():
    # The names are the sender's: 900 kB of them must not reach the log whole.
    long_name = "x" * 900_000
    features = {long_name: math.nan, "a": math.inf}
    payload = encode_user_features("u", 1, features)
    detail = _rejected(payload).detail
    assert detail == quote(f"a,{long_name}")
    assert len(detail) < 100 and detail.startswith("'a,xxx") and "(900002 bytes)" in detail


def test_every_missing_feature_is_named_in_the_order_required():
    payload = encode_user_features("u1", 1, {"requests_1m": 1.0})
    rejected = _rejected(payload, ("errors", "requests_1m", "requests_1h"))
    assert (rejected.reason, rejected.detail) == ("missing_feature", "errors,requests_1h")


def test_a_user_id_over_its_limit_is_rejected_in_every_keyed_message():
    longest, over = "é" * 128, "é" * 128 + "a"  # 256 and 257 bytes
    payload = encode_user_features(longest, 1, {})
    assert decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW).user_id == longest
    rejected = _rejected(encode_user_features(over, 1, {}))
    assert rejected.reason == "field_too_long"
    assert rejected.detail.startswith("user_id is 257 bytes, more than 256")
    score = ThreatScore(user_id=over).SerializeToString()
    with pytest.raises(InvalidMessage) as caught:
        decode_threat_score(score)
    assert (caught.value.reason, caught.value.detail) == (rejected.reason, rejected.detail)
    assert decode_threat_score(ThreatScore(user_id=longest).SerializeToString()).user_id == longest


BLANK = "is blank"
CONTROL = "has a control character"


@pytest.mark.parametrize(
    ("user_id", "reason", "says"),
    [
        (" ", "missing_user_id", BLANK),
        ("\u3000 ", "missing_user_id", BLANK),
        ("\u3000\t", "out_of_range", CONTROL),
        ("a\nb\x00c", "out_of_range", CONTROL),
        ("a\x1b[2J", "out_of_range", CONTROL),
        ("a\x7f", "out_of_range", CONTROL),
        ("a\x9bb", "out_of_range", CONTROL),
        ("a\u2028b", "out_of_range", CONTROL),
    ],
)
def test_a_blank_user_id_or_one_with_a_control_character_is_refused_on_both_topics(
    user_id, reason, says
):
    features = _rejected(encode_user_features(user_id, 1, {}))
    log = web_log_rejection(web_log(user_id=user_id), key=user_id.encode())
    detail = f"user_id {quote(user_id)} {says}"
    assert (features.reason, features.detail) == (log.reason, log.detail) == (reason, detail)


@pytest.mark.parametrize("user_id", ["u-\N{ROBOT FACE}", "a b", "fp-0123abcd", "\u00e9t\u00e9"])
def test_a_user_id_of_printable_characters_is_taken_on_both_topics(user_id):
    payload = encode_user_features(user_id, 1, {})
    assert decode_user_features(payload, own_key(payload), SOURCE, NOW, SKEW).user_id == user_id
    assert decode(web_log(user_id=user_id)).user_id == user_id


# --- WebLog --------------------------------------------------------------------------------


def web_log(**changes: object) -> WebLog:
    """A valid WebLog of user u1, with ``changes`` applied (None clears a field)."""
    message = WebLog(
        time_unix_ms=NOW,
        user_id="u1",
        ip="192.0.2.1",
        method="GET",
        path="/",
        status=200,
        user_agent="ua",
        response_bytes=1234,
        request_id="r1",
        schema_version=1,
    )
    for name, value in changes.items():
        if value is None:
            message.ClearField(name)
        else:
            setattr(message, name, value)
    return message


def decode(message: WebLog, key: bytes | None = None) -> WebLog:
    key = message.user_id.encode() if key is None else key
    return decode_web_log(message.SerializeToString(), key, NOW, SKEW, max_age_ms=AGE)


def web_log_rejection(message: WebLog | bytes | None, key: bytes | None = b"u1") -> InvalidMessage:
    payload = message.SerializeToString() if isinstance(message, WebLog) else message
    with pytest.raises(InvalidMessage) as caught:
        decode_web_log(payload, key, NOW, SKEW, max_age_ms=AGE)
    return caught.value


def test_a_valid_web_log_comes_back_whole():
    assert decode(web_log()) == web_log()


@pytest.mark.parametrize(
    ("accepted", "edge"),
    [
        (web_log(time_unix_ms=NOW + SKEW), "at the skew"),
        (web_log(time_unix_ms=NOW - AGE), "at the age limit"),
        (web_log(user_id="é" * 128), "user id of 256 bytes"),
        (web_log(request_id="r" * 128), "request id of 128 bytes"),
        (web_log(ip="2001:db8::7"), "IPv6"),
        (web_log(ip="ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"), "45 characters"),
        (web_log(status=100), "lowest status"),
        (web_log(status=599), "highest status"),
        (web_log(response_bytes=2**53 - 1), "largest exact integer"),
        (web_log(user_agent="x" * 100_000), "a long user agent is cut later, not rejected"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_web_logs_at_the_edge_of_every_limit_are_accepted(accepted, edge):
    assert decode(accepted) == accepted


@pytest.mark.parametrize(
    ("message", "key", "reason", "detail"),
    [
        (None, b"u1", "empty_payload", "a tombstone: the message has no value"),
        (b"", b"u1", "empty_payload", "the value is 0 bytes"),
        (b"\xff\xfe", b"u1", "undecodable", "Error parsing message with type 'botscore.v1.WebLog'"),
        (web_log(user_id=""), b"", "missing_user_id", ""),
        (web_log(schema_version=None), b"u1", "missing_schema_version", ""),
        (web_log(schema_version=2), b"u1", "unsupported_schema_version", "2"),
        (web_log(), None, "key_mismatch", "key none is not the user id 'u1'"),
        (web_log(), b"", "key_mismatch", "key b'' is not the user id 'u1'"),
        (web_log(), b"u2", "key_mismatch", "key b'u2' is not the user id 'u1'"),
        (web_log(time_unix_ms=None), b"u1", "missing_time", ""),
        (web_log(time_unix_ms=-5), b"u1", "out_of_range", "time -5 is before 1970"),
        (
            web_log(time_unix_ms=-(2**63)),
            b"u1",
            "out_of_range",
            f"time {-(2**63)} is before 1970",
        ),
        (
            web_log(time_unix_ms=NOW + SKEW + 1),
            b"u1",
            "time_in_future",
            f"time {NOW + SKEW + 1} is after {NOW + SKEW} (the clock {NOW} plus {SKEW} ms)",
        ),
        (
            web_log(time_unix_ms=2**63 - 1),
            b"u1",
            "time_in_future",
            f"time {2**63 - 1} is after {NOW + SKEW} (the clock {NOW} plus {SKEW} ms)",
        ),
        (
            web_log(time_unix_ms=NOW - AGE - 1),
            b"u1",
            "time_too_old",
            f"time {NOW - AGE - 1} is before {NOW - AGE} (the clock {NOW} less {AGE} ms)",
        ),
        (
            web_log(time_unix_ms=1),
            b"u1",
            "time_too_old",
            f"time 1 is before {NOW - AGE} (the clock {NOW} less {AGE} ms)",
        ),
        (web_log(request_id=""), b"u1", "missing_request_id", ""),
        (
            web_log(request_id="r" * 129),
            b"u1",
            "field_too_long",
            f"request_id is 129 bytes, more than 128: {quote('r' * 129)}",
        ),
        (web_log(ip=""), b"u1", "invalid_ip", "ip '' is not an IPv4 or IPv6 address"),
        (
            web_log(ip="192.0.2.256"),
            b"u1",
            "invalid_ip",
            "ip '192.0.2.256' is not an IPv4 or IPv6 address",
        ),
        (
            web_log(ip="fe80::1%" + "x" * 38),
            b"u1",
            "invalid_ip",
            f"ip {quote('fe80::1%' + 'x' * 38)} is not an IPv4 or IPv6 address",
        ),
        (web_log(ip="fe80::1%eth0"), b"u1", "invalid_ip", "ip 'fe80::1%eth0' has a scope id"),
        (
            web_log(ip="fe80::1%\n\x00x"),
            b"u1",
            "invalid_ip",
            "ip 'fe80::1%\\n\\x00x' has a scope id",
        ),
        (web_log(status=None), b"u1", "out_of_range", "status 0 is outside 100..599"),
        (web_log(status=99), b"u1", "out_of_range", "status 99 is outside 100..599"),
        (web_log(status=600), b"u1", "out_of_range", "status 600 is outside 100..599"),
        (
            web_log(response_bytes=2**53),
            b"u1",
            "out_of_range",
            f"response_bytes {2**53} is outside 0..{2**53 - 1}",
        ),
    ],
)
def test_every_unusable_web_log_names_its_reason_and_detail(message, key, reason, detail):
    rejected = web_log_rejection(message, key)
    assert (rejected.reason, rejected.detail) == (reason, detail)


def test_the_time_limit_follows_the_clock_and_the_skew():
    payload = web_log(time_unix_ms=NOW + 10_000).SerializeToString()
    assert (
        decode_web_log(payload, b"u1", NOW + 1, 9_999, max_age_ms=AGE).time_unix_ms == NOW + 10_000
    )
    assert decode_web_log(payload, b"u1", NOW, 10_000, max_age_ms=AGE).time_unix_ms == NOW + 10_000
    for now, skew in ((NOW, 9_999), (NOW - 1, 10_000)):
        with pytest.raises(InvalidMessage) as caught:
            decode_web_log(payload, b"u1", now, skew, max_age_ms=AGE)
        assert caught.value.reason == "time_in_future"


def test_the_age_limit_follows_the_clock_and_none_takes_any_age():
    payload = web_log(time_unix_ms=NOW - AGE).SerializeToString()
    assert decode_web_log(payload, b"u1", NOW, SKEW, max_age_ms=AGE).time_unix_ms == NOW - AGE
    with pytest.raises(InvalidMessage) as caught:
        decode_web_log(payload, b"u1", NOW + 1, SKEW, max_age_ms=AGE)
    assert caught.value.reason == "time_too_old"
    ancient = web_log(time_unix_ms=1).SerializeToString()
    assert decode_web_log(ancient, b"u1", NOW, SKEW, max_age_ms=None).time_unix_ms == 1


def test_no_time_beyond_what_lua_holds_exactly_is_accepted_whatever_the_skew():
    payload = web_log(time_unix_ms=2**53).SerializeToString()
    with pytest.raises(InvalidMessage) as caught:
        decode_web_log(payload, b"u1", NOW, 2**62, max_age_ms=AGE)
    assert caught.value.reason == "time_in_future"
    exact = web_log(time_unix_ms=2**53 - 1).SerializeToString()
    assert decode_web_log(exact, b"u1", NOW, 2**62, max_age_ms=AGE).time_unix_ms == 2**53 - 1


@pytest.mark.parametrize("field", ["user_id", "request_id", "ip"])
def test_a_huge_field_is_rejected_with_a_short_detail(field):
    huge = "9" * 700_000
    message = web_log(**{field: huge})
    rejected = web_log_rejection(message, key=message.user_id.encode())
    assert rejected.reason in {"field_too_long", "invalid_ip"}
    assert "700000 bytes" in rejected.detail
    assert len(str(rejected)) < 200


def test_quote_cuts_long_values_and_names_their_size():
    assert quote(None) == "none"
    assert quote("a" * 64) == repr("a" * 64)
    assert quote(b"k" * 64) == repr(b"k" * 64)
    assert quote("é" * 65) == repr("é" * 64) + "... (130 bytes)"
    assert quote(b"k" * 65) == repr(b"k" * 64) + "... (65 bytes)"


@given(st.binary(max_size=512), st.one_of(st.none(), st.binary(max_size=8)))
def test_arbitrary_web_log_bytes_never_raise_anything_but_invalid_message(payload, key):
    try:
        message = decode_web_log(payload, key, NOW, SKEW, max_age_ms=AGE)
    except InvalidMessage as exc:
        assert exc.reason
    else:
        assert message.user_id.encode() == key
        assert NOW - AGE <= message.time_unix_ms <= NOW + SKEW


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("::1", "::1"),
        ("::0001", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:DB8::A", "2001:db8::a"),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_an_address_is_counted_in_its_one_canonical_spelling(spelling, address):
    checked = decode(web_log(ip=spelling))
    assert request_record(checked, SOURCE).ip == address
