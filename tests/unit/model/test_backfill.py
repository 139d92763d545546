"""Re-scoring records as the classifier would: batches of consecutive valid messages of one
partition, each score naming its source, what cannot be scored counted by reason."""

from collections import namedtuple

from botscore.model.backfill import BackfillResult, rescore
from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.wire.codec import encode_user_features
from botscore.wire.records import FeatureBatch

Record = namedtuple("Record", "topic partition offset key value")
# Backfill's clock is the scored time (99 below); the sample windows end at 1000 + offset.
SKEW = 1000


def _valid(partition, offset, user):
    value = encode_user_features(user.user_id, 1000 + offset, user.features)
    return Record("features", partition, offset, user.user_id.encode(), value)


def test_batches_hold_consecutive_valid_messages_of_one_partition(small_model_dir, monkeypatch):
    model = load_model(small_model_dir)
    users = list(sample_users(7, seed=5))
    records = [
        _valid(0, 10, users[0]),
        _valid(1, 3, users[1]),
        _valid(0, 11, users[2]),
        Record("features", 0, 12, b"u-garbage", b"\x07garbage"),
        _valid(0, 13, users[3]),
        _valid(1, 4, users[4]),
        _valid(1, 5, users[5]),
        Record("features", 1, 6, b"u-missing", encode_user_features("u-missing", 1, {"x": 1.0})),
        _valid(0, 14, users[6]),
    ]
    batches = []
    real = score_batch

    def recording(model, batch, scored_time_ms, block_requests_1m):
        batches.append((batch.partition, batch.offsets))
        return real(model, batch, scored_time_ms, block_requests_1m)

    monkeypatch.setattr("botscore.model.backfill.score_batch", recording)
    result = BackfillResult()
    scores = list(
        rescore(records, model, scored_time_ms=99, batch_size=2, result=result, max_skew_ms=SKEW)
    )

    # batch_size 2 ends three batches; the message at 1/6 that cannot be scored ends
    # partition 1's [5] (a batch never spans a gap), and the end of the records none.
    assert batches == [(0, [10, 11]), (1, [3, 4]), (1, [5]), (0, [13, 14])]
    assert result.read == 9
    assert result.invalid == {"undecodable": 1, "missing_feature": 1}
    valid = [r for r in records if r.offset not in (12, 6)]
    assert sorted((s.source.partition, s.source.offset) for s in scores) == sorted(
        (r.partition, r.offset) for r in valid
    )
    by_source = {(s.source.partition, s.source.offset): s for s in scores}
    for record, user in zip(valid, [users[i] for i in (0, 1, 2, 3, 4, 5, 6)], strict=True):
        score = by_source[(record.partition, record.offset)]
        alone = FeatureBatch(
            [user.user_id],
            [1000 + record.offset],
            [[user.features[n] for n in model.manifest.feature_names]],
            [1],
            "features",
            record.partition,
            [record.offset],
        )
        [expected] = real(model, alone, 99).records()
        assert score == expected


def test_a_window_end_or_a_key_the_spout_would_refuse_is_counted_by_its_reason(small_model_dir):
    """Old windows are what a backfill is for; only the spout's own refusals are counted."""
    model = load_model(small_model_dir)
    user = next(sample_users(1, seed=5))
    key = user.user_id.encode()
    records = [
        Record("features", 0, offset, key, encode_user_features(user.user_id, end, user.features))
        for offset, end in enumerate((1, 0, 5001, 5000))
    ]
    records.append(Record("features", 0, 4, b"someone-else", records[0].value))
    result = BackfillResult()
    scores = list(rescore(records, model, 4000, 10, result, max_skew_ms=1000))
    assert [s.source.offset for s in scores] == [0, 3]
    assert result.invalid == {"missing_time": 1, "time_in_future": 1, "key_mismatch": 1}
