"""The scoring topology's Kafka spout: what it reads, and which messages it turns away."""

import io
import json

import pytest

from botscore.errors import InvalidMessage
from botscore.settings import Settings
from botscore.wire.codec import encode_user_features
from botscore.wire.records import FeatureRecord, SourceRef
from spouts.kafka_features import KafkaFeaturesSpout

SOURCE = SourceRef("uf", 3, 77)


def _started(model_dir):
    """A spout and what its ``source`` said: the topic and the consumer group."""
    spout = KafkaFeaturesSpout(
        input_stream=io.BytesIO(), output_stream=io.BytesIO(), rdb_signal=None
    )
    options = {
        "botscore.scoring.model_dir": str(model_dir),
        "botscore.scoring.consumer_group": "group-under-test",
        "botscore.kafka.features_topic": "features-under-test",
    }
    return spout, spout.source(Settings.from_options(options, environ={}))


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


def test_it_reads_the_features_topic_as_the_scoring_group(model_dir):
    assert _started(model_dir)[1] == ("features-under-test", "group-under-test")


def test_a_message_with_the_models_features_becomes_a_feature_record(spout):
    features = {"requests_1m": 4.0, "error_ratio_1h": 0.5}
    values = spout.decode(encode_user_features("user-1", 1_700_000_000_000, features), None, SOURCE)
    assert FeatureRecord.from_values(values) == FeatureRecord(
        "user-1", 1_700_000_000_000, features, 1, SOURCE
    )


def test_a_message_without_a_feature_the_model_needs_is_turned_away(spout):
    payload = encode_user_features("user-1", 1, {"requests_1m": 4.0, "requests_1h": 9.0})
    with pytest.raises(InvalidMessage) as rejected:
        spout.decode(payload, None, SOURCE)
    assert (rejected.value.reason, rejected.value.detail) == ("missing_feature", "error_ratio_1h")


def test_features_the_model_does_not_use_may_be_missing(spout):
    payload = encode_user_features("user-1", 1, {"requests_1m": 4.0, "error_ratio_1h": 0.0})
    assert FeatureRecord.from_values(spout.decode(payload, None, SOURCE)).features == {
        "requests_1m": 4.0,
        "error_ratio_1h": 0.0,
    }
