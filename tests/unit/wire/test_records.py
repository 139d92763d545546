"""Records <-> tuple values: the field order components declare is the order they send."""

import json

import pytest

from botscore.wire.records import FeatureRecord, RequestRecord, ScoreRecord, SourceRef

SOURCE = SourceRef("web-logs", 3, 1234)
RECORDS = [
    FeatureRecord("u1", 17, {"a": 0.1 + 0.2, "b": 1e-300}, 1, SOURCE),
    ScoreRecord("u1", 0.123456789012345678, "allow", "baseline", "2", 1, 2, SOURCE),
    RequestRecord("u1", 1_790_000_000_000, "r1", "192.0.2.1", "ua", "/", ["req"], SOURCE, 1200),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_values_survive_the_json_multilang_trip(record):
    values = json.loads(json.dumps(record.to_values()))
    assert len(values) == len(type(record).FIELDS)
    assert type(record).from_values(values) == record
    fields = dict(zip(type(record).FIELDS, values, strict=True))
    assert (fields["topic"], fields["partition"], fields["offset"]) == ("web-logs", 3, 1234)


def test_a_whole_number_score_comes_back_a_float():
    values = RECORDS[1].to_values()
    values[1] = 1
    assert isinstance(ScoreRecord.from_values(values).score, float)


def test_tuple_id_names_the_message():
    assert SOURCE.tuple_id() == "web-logs/3/1234"
