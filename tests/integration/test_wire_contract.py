"""The wire contract across languages, on the code generated from ``proto/``.

Go: ``botscore-edge``, the Go edge client of ``clients/edge``, against the real broker. A Go
edge's WebLogs are what the feature stage reads (same messages, same partitions, any codec),
the pipeline's ThreatScores are what a Go edge reads, and each side accepts the other's
messages across a version step: an old reader a new writer's, a new reader an old one's.

Java: ``java/ContractEcho.java`` here, on ``gen/java``, reads every message the pipeline
writes and writes it back unchanged, also one of a later version (its new field kept).
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from kafka.partitioner.default import murmur2

from botscore.clock import now_ms
from botscore.enforcement.decisions import DecisionWriter, decision_key
from botscore.enforcement.edge import EdgeDecisions
from botscore.errors import InvalidMessage
from botscore.model.features import CATALOG
from botscore.settings import EnforcementSettings, KafkaSettings
from botscore.transport.redis_client import create_redis
from botscore.v1.dead_letter_pb2 import DeadLetter
from botscore.v1.threat_score_pb2 import ThreatScore
from botscore.v1.user_features_pb2 import UserFeatures
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_CONTRADICTS_USER_AGENT, WebLog
from botscore.vocabulary import Component, DeadLetterReason, Decision
from botscore.wire.codec import decode_web_log, encode_threat_score, encode_user_features
from botscore.wire.dead_letters import DeadLetterRecord, encode_dead_letter
from botscore.wire.records import ScoreRecord, SourceRef

from .aggregation_stream import recorded_logs
from .faults import free_port
from .harness import (
    ROOT,
    delete_topics,
    end_offsets,
    fresh_topics,
    read_topic,
    run_topics,
    stack_env,
    stack_redis_db,
    stack_script,
)
from .stream import produce

pytestmark = [pytest.mark.integration, pytest.mark.contract]

CONTRACT_SH = ROOT / "stack/contract.sh"
ECHO_SOURCE = Path(__file__).parent / "java" / "ContractEcho.java"


def _script(command: str) -> str:
    """What ``stack/contract.sh command`` prints (a path, or a class path)."""
    return stack_script(CONTRACT_SH, command)


@pytest.fixture(scope="module")
def edge() -> Path:
    """botscore-edge, built from this clone."""
    return Path(_script("edge"))


@pytest.fixture(scope="module")
def java_echo(tmp_path_factory) -> list[str]:
    """The command that runs ContractEcho on gen/java, both compiled."""
    classpath = _script("java")
    classes = tmp_path_factory.mktemp("contract-echo")
    subprocess.run(
        ["javac", "-Xlint:all,-path", "-Werror", "-d", str(classes), "-cp", classpath, ECHO_SOURCE],
        check=True,
        timeout=120,
    )
    return ["java", "-cp", f"{classpath}:{classes}", "ContractEcho"]


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[KafkaSettings]:
    settings = fresh_topics(kafka_settings)
    yield settings
    delete_topics(settings, run_topics(settings))


def _run(edge: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return _run_env(edge, {}, *args, stdin=stdin)


def _run_env(
    edge: Path, env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """botscore-edge in the test's environment, ``env`` on top."""
    return subprocess.run(
        [str(edge), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=stack_env(**env),
    )


def _send(
    edge: Path, settings: KafkaSettings, logs: list[WebLog], compression: str = "snappy"
) -> list[tuple[int, int]]:
    """``logs`` sent by the Go edge to the run's features topic; where each landed."""
    lines = "".join(json_format.MessageToJson(log, indent=None) + "\n" for log in logs)
    done = _run(
        edge,
        "send",
        "-brokers",
        settings.bootstrap_servers,
        "-topic",
        settings.features_topic,
        "-compression",
        compression,
        stdin=lines,
    )
    assert done.returncode == 0, done.stderr
    placed = [json.loads(line) for line in done.stdout.splitlines()]
    return [(p["partition"], p["offset"]) for p in placed]


def _scores_read_by_go(edge: Path, settings: KafkaSettings, count: int) -> list[dict]:
    done = _run(
        edge,
        "scores",
        "-brokers",
        settings.bootstrap_servers,
        "-topic",
        settings.scores_topic,
        "-count",
        str(count),
        "-timeout",
        "60s",
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _unusual_logs() -> list[WebLog]:
    """Fields at the edges of what the feature stage accepts."""
    now = now_ms()
    return [
        WebLog(
            time_unix_ms=now,
            user_id="ü-\N{ROBOT FACE}-" + "x" * 200,
            ip="2001:db8::1",
            method="POST",
            path="/söme/päth?q=\N{ROBOT FACE}",
            status=599,
            user_agent="Mozilla/5.0 \N{ROBOT FACE}",
            referrer="",
            response_bytes=2**53 - 1,
            js_check_passed=True,
            request_id="r" * 128,
            edge_node="edge-ü",
            schema_version=1,
            tls_fingerprint=TLS_FINGERPRINT_CONTRADICTS_USER_AGENT,
        ),
        # Every field at its default but those the feature stage requires: absent on the wire.
        WebLog(
            time_unix_ms=1, user_id="u", ip="0.0.0.0", status=100, request_id="r", schema_version=1
        ),
        WebLog(
            time_unix_ms=now,
            user_id="u-zero-version",
            ip="10.0.0.1",
            status=200,
            request_id="r0",
            schema_version=0,
        ),  # present though 0: proto3 optional
    ]


@pytest.mark.parametrize(
    ("language", "committed", "pattern"),
    [("go", "gen/go", "*.pb.go"), ("java", "gen/java/src/main/java", "*.java")],
)
def test_code_generated_from_the_proto_files_is_committed(
    language, committed, pattern, project_root, proto_generator, tmp_path
):
    """The committed Go and Java code is exactly what `make proto` generates."""
    if language == "go":
        proto_generator.generate_go(tmp_path, Path(_script("go-plugin")))
    else:
        proto_generator.generate_java(tmp_path, Path(_script("java-protoc")))
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob(pattern)}
    assert generated, "protoc made nothing"
    assert generated == {
        p.relative_to(project_root / committed) for p in (project_root / committed).rglob(pattern)
    }
    stale = [
        str(rel)
        for rel in sorted(generated)
        if (project_root / committed / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, f"run `make proto` and commit: {stale}"


def test_weblogs_sent_by_a_go_edge_are_what_the_feature_stage_reads(edge, topics):
    """Same messages after the feature stage's strict decoder, whichever codec compressed
    them, keyed by user id, and on the partition kafka-python's producers put the same user
    on (murmur2 of the key): a user's requests from Go and from Python edges meet in one
    partition, as deduplication needs."""
    logs = recorded_logs(users=40, rate=20, duration_s=30, seed=31) + _unusual_logs()
    sent = []
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        placed = _send(edge, topics, logs, codec)
        assert len(placed) == len(logs)
        sent += zip(logs, placed, strict=True)
    records = {(r.partition, r.offset): r for r in read_topic(topics, topics.features_topic)}
    assert len(records) == len(sent)
    partitions = len(end_offsets(topics, topics.features_topic))
    for log, where in sent:
        record = records[where]
        key = log.user_id.encode()
        if log.schema_version == 0:  # present, so refused as unsupported, not as missing
            with pytest.raises(InvalidMessage) as refused:
                decode_web_log(
                    record.value, record.key, now_ms(), max_skew_ms=60_000, max_age_ms=None
                )
            assert refused.value.reason == DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION
        else:
            read = decode_web_log(
                record.value, record.key, now_ms(), max_skew_ms=60_000, max_age_ms=None
            )
            assert read == log
        assert record.key == key
        assert where[0] == (murmur2(key) & 0x7FFFFFFF) % partitions


def _scores() -> list[ScoreRecord]:
    """Scores as the classifier writes them, with the values at the edges of their types."""
    scores = []
    for i, (decision, score) in enumerate(
        [
            ("allow", 0.0),
            ("challenge", 0.6),
            ("block", 1.0),
            ("allow", 5e-324),
            ("block", 0.1 + 0.2),
        ]
    ):
        feature_ms = now_ms() - i
        scores.append(
            ScoreRecord(
                user_id=f"u-{i}-\N{ROBOT FACE}",
                score=score,
                decision=decision,
                model_name="baseline",
                model_version=f"v{i}",
                feature_time_ms=feature_ms,
                scored_time_ms=feature_ms + 2**40,
                source=SourceRef("user-features-ü", 2**31 - 1, 2**63 - 1 - i),
            )
        )
    return scores


def test_scores_written_by_the_pipeline_are_what_a_go_edge_reads(edge, topics):
    scores = _scores()
    payloads = [(s.user_id.encode(), encode_threat_score(s)) for s in scores]
    placed = produce(topics, payloads, topic=topics.scores_topic)
    lines = _scores_read_by_go(edge, topics, len(scores))
    by_place = {(line["partition"], line["offset"]): line for line in lines}
    for (key, value), where in zip(payloads, placed, strict=True):
        line = by_place[where]
        assert line["key"] == key.decode()
        read = json_format.ParseDict(line["score"], ThreatScore())
        assert read == ThreatScore.FromString(value)


def _next_version(message: type[Message], package: str) -> type[Message]:
    """``message`` as a later version of the contract would define it, in ``package``: one
    field added (number 99, a string) and one value added to each enum of its file."""
    file = descriptor_pb2.FileDescriptorProto()
    message.DESCRIPTOR.file.CopyToProto(file)
    assert not file.dependency, "a file that imports another needs those copied too"
    file.name = f"{package}/{file.name}"
    file.package = package
    for field in (f for m in file.message_type for f in m.field if f.type_name):
        field.type_name = field.type_name.replace(".botscore.v1.", f".{package}.")
    [defined] = [m for m in file.message_type if m.name == message.DESCRIPTOR.name]
    defined.field.add(
        name="added_later",
        number=99,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        json_name="addedLater",
    )
    for enum in file.enum_type:
        enum.value.add(name=f"{enum.name.upper()}_ADDED_LATER", number=7)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{package}.{message.DESCRIPTOR.name}")
    )


def test_a_go_edge_reads_scores_of_a_later_version(edge, topics):
    """An old reader (the Go edge) and a new writer: the field it does not know is skipped,
    every field it knows reads the same, and an enum value it does not know is kept as its
    number (proto3's enums are open)."""
    next_score = _next_version(ThreatScore, "botscore.next1")
    scores = _scores()
    written = []
    for i, score in enumerate(scores):
        message = next_score.FromString(encode_threat_score(score))
        message.added_later = f"later-{i}"
        if i == 0:
            message.decision = 7
        written.append(message.SerializeToString())
    produce(
        topics,
        [(s.user_id.encode(), w) for s, w in zip(scores, written, strict=True)],
        topic=topics.scores_topic,
    )
    lines = sorted(_scores_read_by_go(edge, topics, len(scores)), key=lambda line: line["key"])
    for score, line in zip(sorted(scores, key=lambda s: s.user_id), lines, strict=True):
        read = json_format.ParseDict(line["score"], ThreatScore())
        expected = ThreatScore.FromString(encode_threat_score(score))
        if score is scores[0]:
            assert line["score"]["decision"] == 7
            expected.decision = 7  # type: ignore[assignment]  # an open enum keeps it
        assert read == expected
        assert "addedLater" not in line["score"]


def test_a_later_version_reads_a_go_edges_weblogs(edge, topics):
    """A new reader and an old writer (the Go edge): every field the writer knew reads the
    same, the added one is absent (its default), and the message survives a round trip."""
    next_log = _next_version(WebLog, "botscore.next2")
    logs = _unusual_logs()
    placed = _send(edge, topics, logs)
    records = {(r.partition, r.offset): r for r in read_topic(topics, topics.features_topic)}
    for log, where in zip(logs, placed, strict=True):
        read = next_log.FromString(records[where].value)
        assert not read.added_later
        assert WebLog.FromString(read.SerializeToString()) == log
        assert json_format.MessageToDict(read) == json_format.MessageToDict(log)


def test_a_go_edge_refuses_bad_input_before_sending_anything(edge, topics):
    """A line that is not a WebLog, or one without the user id its key is made of: a clear
    error naming the line, exit 1, and nothing sent; a record that is not a ThreatScore is
    reported in its line, and the rest read."""
    good = json_format.MessageToJson(_unusual_logs()[1], indent=None)
    for bad, said in [
        ('{"userId": "u", "status": "many"}', "line 2 is not a WebLog"),
        ('{"timeUnixMs": "5"}', "line 2 has no user_id"),
        ("not json", "line 2 is not a WebLog"),
    ]:
        done = _run(
            edge,
            "send",
            "-brokers",
            topics.bootstrap_servers,
            "-topic",
            topics.features_topic,
            stdin=f"{good}\n{bad}\n{good}\n",
        )
        assert done.returncode == 1 and said in done.stderr, (done.returncode, done.stderr)
    assert sum(end_offsets(topics, topics.features_topic).values()) == 0

    known = _scores()[1]
    produce(
        topics,
        [(b"u-bad", b"\x07garbage"), (known.user_id.encode(), encode_threat_score(known))],
        topic=topics.scores_topic,
    )
    lines = {line["key"]: line for line in _scores_read_by_go(edge, topics, 2)}
    assert "error" in lines["u-bad"] and "score" not in lines["u-bad"]
    assert lines[known.user_id]["score"]["userId"] == known.user_id


def _through_java(echo: list[str], messages: list[Message]) -> list[tuple[bytes, dict]]:
    """Each message parsed by Java: the bytes it writes back, and its JSON."""
    lines = "".join(
        f"{m.DESCRIPTOR.name} {base64.b64encode(m.SerializeToString()).decode()}\n"
        for m in messages
    )
    done = subprocess.run(echo, input=lines, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    echoed = []
    for line in done.stdout.splitlines():
        written, json_text = line.split("\t", 1)
        assert written != "error", json_text
        echoed.append((base64.b64decode(written), json.loads(json_text)))
    assert len(echoed) == len(messages)
    return echoed


def _pipeline_messages() -> list[Message]:
    """One of each message the pipeline writes, with values at the edges of their types."""
    features = {name: float(i) for i, name in enumerate(CATALOG)}
    features.update({CATALOG[0]: 0.0, CATALOG[1]: 5e-324, CATALOG[2]: -1.5e300})
    letter = DeadLetterRecord(
        original_value=bytes(range(256)),
        original_key="ü".encode(),
        reason=DeadLetterReason.UNDECODABLE,
        detail="cut inside field 2 \N{ROBOT FACE}",
        component=Component.AGGREGATE,
        source=SourceRef("web-logs", 3, 2**62),
        dead_lettered_ms=now_ms(),
    )
    return [
        *recorded_logs(users=60, rate=20, duration_s=10, seed=32),
        *_unusual_logs(),
        UserFeatures.FromString(encode_user_features("u-\N{ROBOT FACE}", 2**53 - 1, features)),
        *(ThreatScore.FromString(encode_threat_score(score)) for score in _scores()),
        DeadLetter.FromString(encode_dead_letter(letter)),
    ]


def test_java_reads_and_writes_back_every_message_the_pipeline_writes(java_echo):
    messages = _pipeline_messages()
    for message, (written, as_json) in zip(
        messages, _through_java(java_echo, messages), strict=True
    ):
        assert type(message).FromString(written) == message
        assert json_format.ParseDict(as_json, type(message)()) == message


def test_java_keeps_what_a_later_version_added(java_echo):
    """An old reader (Java) that writes a message back keeps the field and the enum value a
    later version added, so a new reader after it loses nothing."""
    later = []
    for message, package in [(WebLog, "botscore.next3"), (ThreatScore, "botscore.next4")]:
        next_type = _next_version(message, package)
        for i, old in enumerate(_pipeline_messages()):
            if isinstance(old, message):
                new = next_type.FromString(old.SerializeToString())
                new.added_later = f"later-{i}"
                later.append(new)
    later[0].tls_fingerprint = 7
    later[-1].decision = 7
    for new, (written, as_json) in zip(later, _through_java(java_echo, later), strict=True):
        assert type(new).FromString(written) == new
        assert "addedLater" not in as_json


DECISIONS_DB = 1  # the stack's Redis, a database of this module's own


def test_a_go_edge_reads_the_decisions_the_enforcer_wrote_as_the_python_edge_does(edge):
    """Scores merged by the enforcer's writer, a value botscore never writes and a user
    with none: the Go edge's answer for each is the Python edge's, with the time left;
    with Redis unreachable it fails naming the address, where a serving edge allows."""
    settings = stack_redis_db(DECISIONS_DB)
    client = create_redis(settings)
    client.flushdb()
    try:
        writer = DecisionWriter(client, EnforcementSettings())
        writer.read_generation()
        at = now_ms()
        decided = [("u-block", 0.99, Decision.BLOCK), ("u-challenge", 0.8, Decision.CHALLENGE)]
        decided.append(("u-allow", 0.1, Decision.ALLOW))
        writer.write(
            [
                ScoreRecord(user, score, decision, "m", "1", at, at, SourceRef("t", 0, i))
                for i, (user, score, decision) in enumerate(decided)
            ],
            at,
        )
        client.set(decision_key("u-foreign"), "teapot")
        users = [user for user, _, _ in decided] + ["u-foreign", "u-unknown"]
        env = {"BOTSCORE_REDIS_PORT": str(settings.port), "BOTSCORE_REDIS_DB": str(DECISIONS_DB)}
        done = _run_env(edge, env, "decisions", stdin="".join(f"{u}\n" for u in users))
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        python = EdgeDecisions(client, 0)
        assert [line["user"] for line in lines] == users
        assert [line["decision"] for line in lines] == [python.decision_for(u) for u in users]
        assert [line["decision"] for line in lines][:2] == ["block", "challenge"]
        ttl = EnforcementSettings()
        assert 0 < lines[0]["ttl_ms"] <= ttl.block_ttl_s * 1000
        assert 0 < lines[1]["ttl_ms"] <= ttl.challenge_ttl_s * 1000
        assert all("ttl_ms" not in line for line in lines[2:])
    finally:
        client.flushdb()
        client.close()
    port = free_port()
    down = _run_env(edge, {"BOTSCORE_REDIS_PORT": str(port)}, "decisions", stdin="u-block\n")
    assert down.returncode != 0
    assert f"reading decisions from Redis at 127.0.0.1:{port}" in down.stderr
