"""Records <-> tuple values: the field order components declare is the order they send."""

import dataclasses
import json

import msgpack
import pytest

from botscore.wire.records import (
    FeatureBatch,
    FeatureRecord,
    RequestBatch,
    RequestRecord,
    ScoreBatch,
    ScoreRecord,
    SourceRef,
)

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


FEATURES = FeatureBatch(
    user_ids=["u1", "ü2"],
    window_end_ms=[17, 18],
    rows=[[0.1 + 0.2, 1e-300], [2.0, 0.0]],
    schema_versions=[1, 1],
    topic="user-features",
    partition=3,
    offsets=[40, 42],
)
SCORES = ScoreBatch(
    user_ids=["u1", "ü2"],
    scores=[0.123456789012345678, 1.0],
    decisions=["allow", "block"],
    model_name="baseline",
    model_version="2",
    feature_times_ms=[17, 18],
    scored_time_ms=99,
    topic="user-features",
    partition=3,
    offsets=[40, 42],
)


REQUEST_RECORDS = [
    RequestRecord(
        "u1", 1_790_000_000_000, "r1", "192.0.2.1", "ua", "/", ["req"], SourceRef("wl", 3, 40), 30
    ),
    RequestRecord(
        "ü2",
        1_790_000_000_001,
        "r2",
        "2001:db8::1",
        "ü/1",
        "/ä",
        ["req", "err"],
        SourceRef("wl", 3, 42),
        30,
    ),
]
REQUESTS = RequestBatch.of(REQUEST_RECORDS)
BATCHES = [FEATURES, SCORES, REQUESTS]


def _json_trip(values):
    return json.loads(json.dumps(values))


def _msgpack_trip(values):
    """As pystorm's msgpack serializer sends and reads tuple values."""
    return msgpack.unpackb(msgpack.packb(values))


@pytest.mark.parametrize("trip", [_json_trip, _msgpack_trip], ids=["json", "msgpack"])
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: type(b).__name__)
def test_batches_are_plain_lists_that_survive_the_multilang_trip(batch, trip):
    values = batch.to_values()
    assert trip(values) == values  # nothing the serializer would change
    assert type(batch).from_values(trip(values)) == batch
    fields = dict(zip(type(batch).FIELDS, values, strict=True))
    assert (fields["partition"], fields["offsets"]) == (3, [40, 42])


def test_a_request_batch_yields_its_records_back_in_offset_order():
    assert list(REQUESTS.records()) == REQUEST_RECORDS
    # partition stated once, and no generation checked unless one is given
    assert REQUESTS.to_values()[-5:] == ["wl", 3, [40, 42], 30, ""]
    stamped = RequestBatch.of(REQUEST_RECORDS, "g1")
    assert RequestBatch.from_values(stamped.to_values()) == stamped
    assert stamped.generation == "g1"


def test_a_request_batch_takes_the_lowest_replay_floor_of_its_records():
    later = dataclasses.replace(REQUEST_RECORDS[1], replay_floor=41)
    assert RequestBatch.of([REQUEST_RECORDS[0], later]).replay_floor == 30


@pytest.mark.parametrize(
    "source", [SourceRef("wl", 4, 43), SourceRef("other", 3, 43)], ids=["partition", "topic"]
)
def test_a_request_batch_holds_one_partition_only(source):
    other = dataclasses.replace(REQUEST_RECORDS[1], source=source)
    with pytest.raises(ValueError, match="one partition"):
        RequestBatch.of([REQUEST_RECORDS[0], other])


def test_a_score_batch_yields_one_score_record_per_user():
    assert list(SCORES.records()) == [
        ScoreRecord(
            "u1",
            0.123456789012345678,
            "allow",
            "baseline",
            "2",
            17,
            99,
            SourceRef("user-features", 3, 40),
        ),
        ScoreRecord("ü2", 1.0, "block", "baseline", "2", 18, 99, SourceRef("user-features", 3, 42)),
    ]


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (FEATURES, "offsets"),
        (FEATURES, "schema_versions"),
        (SCORES, "decisions"),
        (SCORES, "scores"),
        (REQUESTS, "flags"),
        (REQUESTS, "user_agents"),
    ],
)
def test_a_batch_with_a_list_of_another_length_is_refused(batch, field):
    values = batch.to_values()
    values[type(batch).FIELDS.index(field)] = getattr(batch, field)[:1]
    with pytest.raises(ValueError, match=f"'{field}': 1"):
        type(batch).from_values(values)
