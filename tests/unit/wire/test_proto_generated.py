"""The committed Python protobuf code is exactly what ``make proto`` generates."""

from botscore.v1 import dead_letter_pb2, threat_score_pb2, user_features_pb2


def test_committed_code_matches_the_proto_files(project_root, proto_generator, tmp_path):
    proto_generator.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2.py*"))
    assert generated, "protoc produced nothing"
    stale = [
        str(rel)
        for rel in generated
        if (project_root / "src" / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, f"run `make proto` and commit: {stale}"


def test_messages_keep_their_field_numbers():
    # Renumbering breaks every reader in the field; this pins the contract.
    features = {f.name: f.number for f in user_features_pb2.UserFeatures.DESCRIPTOR.fields}
    assert features == {"user_id": 1, "window_end_unix_ms": 2, "features": 3, "schema_version": 4}
    score = {f.name: f.number for f in threat_score_pb2.ThreatScore.DESCRIPTOR.fields}
    assert score == {
        "user_id": 1,
        "score": 2,
        "decision": 3,
        "model_name": 4,
        "model_version": 5,
        "feature_time_unix_ms": 6,
        "scored_time_unix_ms": 7,
        "source": 8,
    }
    letter = {f.name: f.number for f in dead_letter_pb2.DeadLetter.DESCRIPTOR.fields}
    assert letter == {
        "original_value": 1,
        "original_key": 2,
        "reason": 3,
        "detail": 4,
        "component": 5,
        "source": 6,
        "dead_lettered_unix_ms": 7,
    }
