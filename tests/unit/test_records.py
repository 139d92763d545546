import json

from botscore.records import FeatureRecord, ScoreRecord, SourceRef

SOURCE = SourceRef("user-features", 3, 12345)


def test_feature_record_survives_storms_json_protocol():
    record = FeatureRecord("u", 17, {"a": 0.1 + 0.2, "b": 1e-300}, 1, SOURCE)
    values = json.loads(json.dumps(record.to_values()))
    assert FeatureRecord.from_values(values) == record
    assert len(values) == len(FeatureRecord.FIELDS)


def test_score_record_survives_storms_json_protocol():
    record = ScoreRecord("u", 0.123456789012345678, "allow", "m", "1", 1, 2, SOURCE)
    values = json.loads(json.dumps(record.to_values()))
    assert ScoreRecord.from_values(values) == record
    assert len(values) == len(ScoreRecord.FIELDS)


def test_tuple_id_names_the_message():
    assert SOURCE.tuple_id() == "user-features/3/12345"
