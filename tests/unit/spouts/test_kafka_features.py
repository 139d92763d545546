"""The scoring topology's Kafka spout: what it reads, its batches, the messages it turns away."""

import io
import json

import pytest

from botscore.clock import now_ms
from botscore.errors import InvalidMessage
from botscore.settings import Settings
from botscore.wire.codec import FeatureRow, encode_user_features
from botscore.wire.records import FeatureBatch, SourceRef
from spouts.kafka_features import KafkaFeaturesSpout

SOURCE = SourceRef("uf", 3, 77)
SKEW = 30_000


def _started(model_dir):
    """A spout, what its ``source`` said (the topic and the consumer group) and how many
    messages it puts in a tuple."""
    spout = KafkaFeaturesSpout(
        input_stream=io.BytesIO(), output_stream=io.BytesIO(), rdb_signal=None
    )
    options = {
        "botscore.scoring.model_dir": str(model_dir),
        "botscore.scoring.consumer_group": "group-under-test",
        "botscore.scoring.batch_size": 321,
        "botscore.kafka.features_topic": "features-under-test",
        "botscore.aggregation.max_event_skew_ms": SKEW,
    }
    settings = Settings.from_options(options, environ={})
    return spout, spout.source(settings), spout.messages_per_tuple(settings)


@pytest.fixture
def model_dir(tmp_path):
    """A model that needs two features only; its manifest is all ``source`` reads."""
    manifest = {
        "name": "two-features",
        "version": "1",
        "artifact": "model.pkl",
        "sha256": "0" * 64,
        "sklearn_version": "0",
        "feature_names": ["requests_1m", "error_ratio_1h"],
        "thresholds": {"challenge": 0.5, "block": 0.9},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


@pytest.fixture
def spout(model_dir):
    return _started(model_dir)[0]


def test_it_reads_the_features_topic_as_the_scoring_group_in_batches_of_the_batch_size(
    model_dir,
):
    assert _started(model_dir)[1:] == (("features-under-test", "group-under-test"), 321)


def test_a_message_with_the_models_features_becomes_a_row_in_the_models_order(spout):
    features = {"error_ratio_1h": 0.5, "requests_1m": 4.0, "unused": 7.0}
    payload = encode_user_features("user-1", 1_700_000_000_000, features)
    row = spout.decode(payload, b"user-1", SOURCE)
    assert row == FeatureRow("user-1", 1_700_000_000_000, 1, [4.0, 0.5])


def test_rows_of_consecutive_messages_become_one_feature_batch(spout):
    rows = [FeatureRow("u1", 10, 1, [1.0, 0.1]), FeatureRow("u2", 11, 1, [2.0, 0.2])]
    sources = [SourceRef("uf", 3, 77), SourceRef("uf", 3, 79)]
    values = json.loads(json.dumps(spout.tuple_values(rows, sources)))
    assert FeatureBatch.from_values(values) == FeatureBatch(
        user_ids=["u1", "u2"],
        window_end_ms=[10, 11],
        rows=[[1.0, 0.1], [2.0, 0.2]],
        schema_versions=[1, 1],
        topic="uf",
        partition=3,
        offsets=[77, 79],
    )


def test_a_message_without_a_feature_the_model_needs_is_turned_away(spout):
    payload = encode_user_features("user-1", 1, {"requests_1m": 4.0, "requests_1h": 9.0})
    with pytest.raises(InvalidMessage) as rejected:
        spout.decode(payload, b"user-1", SOURCE)
    assert (rejected.value.reason, rejected.value.detail) == ("missing_feature", "error_ratio_1h")


def test_features_the_model_does_not_use_may_be_missing(spout):
    payload = encode_user_features("user-1", 1, {"requests_1m": 4.0, "error_ratio_1h": 0.0})
    assert spout.decode(payload, b"user-1", SOURCE).values == [4.0, 0.0]


def test_a_message_whose_window_ends_past_the_feature_stage_s_skew_is_turned_away(spout):
    features = {"requests_1m": 4.0, "error_ratio_1h": 0.0}
    ahead = now_ms() + SKEW + 60_000  # a minute past the skew: no test runs that slowly
    with pytest.raises(InvalidMessage) as rejected:
        spout.decode(encode_user_features("user-1", ahead, features), b"user-1", SOURCE)
    assert rejected.value.reason == "time_in_future"
    assert rejected.value.detail.startswith(f"window end {ahead} is after ")
    assert rejected.value.detail.endswith(f" plus {SKEW} ms)")
    within = now_ms() + SKEW - 60_000
    row = spout.decode(encode_user_features("user-1", within, features), b"user-1", SOURCE)
    assert row.window_end_ms == within


def test_a_message_without_a_window_end_is_turned_away(spout):
    payload = encode_user_features("user-1", 0, {"requests_1m": 4.0, "error_ratio_1h": 0.0})
    with pytest.raises(InvalidMessage) as rejected:
        spout.decode(payload, b"user-1", SOURCE)
    assert rejected.value.reason == "missing_time"


@pytest.mark.parametrize("key", [None, b"", b"user-2"])
def test_a_message_keyed_by_anything_but_its_user_id_is_turned_away(spout, key):
    payload = encode_user_features("user-1", 1, {"requests_1m": 4.0, "error_ratio_1h": 0.0})
    with pytest.raises(InvalidMessage) as rejected:
        spout.decode(payload, key, SOURCE)
    assert rejected.value.reason == "key_mismatch"
