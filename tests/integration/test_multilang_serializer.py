"""The msgpack multilang serializer against its real peers, and the switch that selects it.

(a) The Java class ``botscore.storm.MsgpackSerializer`` talks to pystorm's own
MsgpackSerializer through a small Storm-side driver (``java/MultilangEcho.java`` here); the same
script through Storm's JsonSerializer and pystorm's JSON one must read the same, except that
bytes are only possible in msgpack. (b) The scoring topology under `sparse run` with each
choice in config.json.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pystorm.serializers.json_serializer import JSONSerializer
from pystorm.serializers.msgpack_serializer import MsgpackSerializer
from pystorm.serializers.serializer import Serializer
from ruamel.yaml import YAML

from botscore.model.features import feature_matrix
from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.multilang import JSON_VALUE_CLASSES, MULTILANG_SERIALIZER, SERIALIZER_CLASSES
from botscore.transport.kafka_clients import create_producer
from botscore.wire.codec import decode_threat_score, encode_user_features

from .harness import (
    ROOT,
    consume_all,
    delete_topics,
    fresh_topics,
    read_topic,
    run_topics,
    scoring_group,
    sparse_run,
    stack_env,
    wait_committed_to_end,
)

pytestmark = pytest.mark.integration

ECHO_SOURCE = Path(__file__).parent / "java" / "MultilangEcho.java"
PYSTORM = {"json": JSONSerializer, "msgpack": MsgpackSerializer}
PID = 4242
SESSION_TIMEOUT_S = 60  # a lost message would otherwise block both ends for good

# Every kind of value a tuple carries, as JSON can carry it too. A dict with an int key comes
# back with a string key under both serializers (JSON has no other keys).
VALUES: list[Any] = [
    0,
    -1,
    127,
    128,
    -33,
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    0.1,
    -1.5e300,
    5e-324,
    "",
    "plain",
    "é ü 日本語 🎉",
    'line\nbreak "quoted" \\ back',
    True,
    False,
    None,
    [1, [2.5, ["three", []]]],
    {"a": 1, "nested": {"b": [None, "x"]}, "empty": {}},
    {1: "int key"},
]
MSGPACK_ONLY: list[Any] = [b"\x00\xff\x80 bytes", b"", math.inf, -math.inf]


def typed(value: Any) -> Any:
    """``value`` with the type of every scalar beside it: True must not come back as 1."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


@pytest.fixture(scope="module")
def echo_classpath(tmp_path_factory) -> str:
    """The project's compiled Java (`lein javac`), its class path, and the echo driver."""
    env = stack_env()
    subprocess.run(["lein", "javac"], cwd=ROOT, env=env, check=True, timeout=300)
    classpath = subprocess.run(
        ["lein", "classpath"], cwd=ROOT, env=env, check=True, timeout=300, capture_output=True
    ).stdout.decode()
    classpath = classpath.strip().splitlines()[-1]
    classes = tmp_path_factory.mktemp("echo-classes")
    subprocess.run(
        ["javac", "-Xlint:all,-path", "-Werror", "-d", str(classes), "-cp", classpath, ECHO_SOURCE],
        check=True,
        timeout=120,
    )
    return f"{classpath}:{classes}"


def test_the_classes_the_json_serializer_registers_with_kryo_are_storms(echo_classpath):
    """Kryo refuses a tuple holding an unregistered class only when it crosses workers, which
    local mode never does: so each registered name is looked up in Storm's own jars."""
    found = subprocess.run(
        ["javap", "-cp", echo_classpath, *JSON_VALUE_CLASSES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    for name in JSON_VALUE_CLASSES:
        assert f"class {name} " in found.stdout


@contextmanager
def echo_process(classpath: str, serializer: str, pid_dir: Path) -> Iterator[subprocess.Popen]:
    """Storm's end with ``serializer``'s Java class; killed after SESSION_TIMEOUT_S."""
    process = subprocess.Popen(
        ["java", "-cp", classpath, "MultilangEcho", SERIALIZER_CLASSES[serializer], str(pid_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watchdog = threading.Timer(SESSION_TIMEOUT_S, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()


@contextmanager
def echo_session(
    classpath: str, serializer: str, pid_dir: Path
) -> Iterator[tuple[Serializer, dict[str, Any]]]:
    """pystorm's ``serializer`` connected to the echo, past the handshake: (it, handshake)."""
    with echo_process(classpath, serializer, pid_dir) as process:
        python_end = PYSTORM[serializer](
            process.stdout, process.stdin, threading.RLock(), threading.RLock()
        )
        handshake = python_end.read_message()
        python_end.send_message({"pid": PID})
        answer = python_end.read_message()
        assert (answer["comp"], answer["tuple"]) == ("pid", [PID])
        yield python_end, handshake


# What pystorm's spouts and bolts send, in each form the protocol allows.
SCRIPT: list[dict[str, Any]] = [
    {
        "command": "emit",
        "tuple": VALUES,
        "anchors": ["-6955786537413359385", "12"],
        "stream": "scores",
        "need_task_ids": True,
    },
    {"command": "emit", "tuple": [1], "need_task_ids": False, "anchors": "77"},
    {"command": "emit", "tuple": ["x"], "id": "spout-tuple-1"},
    {"command": "ack", "id": "-6955786537413359385"},
    {"command": "fail", "id": 31},
    {"command": "ack", "id": ["features", 3, 1024]},
    {"command": "log", "msg": "hello ✓", "level": 3},
    {"command": "error", "msg": "boom"},
    {"command": "metrics", "name": "latency", "params": {"ms": 1.5, "n": 3}},
    {"command": "sync"},
]
# Per message: the echo's answers (the parsed fields, then task ids or a spout ack).
ANSWERS_PER_MESSAGE = [2, 1, 2, 2, 1, 2, 1, 1, 1, 1]


def run_script(classpath: str, serializer: str, pid_dir: Path) -> list[Any]:
    answers = []
    with echo_session(classpath, serializer, pid_dir) as (python_end, _):
        for message, count in zip(SCRIPT, ANSWERS_PER_MESSAGE, strict=True):
            python_end.send_message(message)
            answers.append([python_end.read_message() for _ in range(count)])
    return answers


def test_handshake_is_the_one_storms_json_serializer_sends(echo_classpath, tmp_path):
    handshakes = {}
    for serializer in ("json", "msgpack"):
        with echo_session(echo_classpath, serializer, tmp_path) as (_, handshake):
            handshakes[serializer] = handshake
    assert handshakes["msgpack"] == handshakes["json"]
    assert typed(handshakes["msgpack"]) == typed(handshakes["json"])
    handshake = handshakes["msgpack"]
    assert handshake["pidDir"] == str(tmp_path)
    assert handshake["conf"]["topology.max.spout.pending"] == 5000
    assert handshake["conf"]["a.list"] == [1, "x"]
    context = handshake["context"]
    assert (context["taskid"], context["componentid"]) == (2, "echo")
    assert context["task->component"] == {"1": "src", "2": "echo"}
    assert context["source->stream->fields"] == {"src": {"default": ["word"]}}


def test_shell_messages_read_as_storms_json_serializer_reads_them(echo_classpath, tmp_path):
    under_json = run_script(echo_classpath, "json", tmp_path)
    under_msgpack = run_script(echo_classpath, "msgpack", tmp_path)
    assert typed(under_msgpack) == typed(under_json)
    emit, direct, spout_emit, bolt_ack, fail, _, log, error, metrics, sync = [
        answers[0] for answers in under_msgpack
    ]
    # fields: id, anchors, need_task_ids, msg, metric name, metric params, log level, tuple
    assert (emit["comp"], emit["stream"], emit["task"]) == ("emit", "scores", 0)
    assert emit["tuple"][:7] == [None, ["-6955786537413359385", "12"], True] + [None] * 3 + ["INFO"]
    assert under_msgpack[0][1] == [7, 8]  # task ids, as the emit asked
    assert (direct["tuple"][1:3], direct["tuple"][7]) == ([["77"], False], [1])
    assert (spout_emit["stream"], spout_emit["tuple"][0], spout_emit["tuple"][2]) == (
        "default",
        "spout-tuple-1",
        True,
    )
    assert bolt_ack["tuple"][0] == "-6955786537413359385"
    assert under_msgpack[3][1] == {"command": "ack", "id": "-6955786537413359385"}
    assert fail["tuple"][0] == 31
    assert under_msgpack[5][1] == {"command": "ack", "id": ["features", 3, 1024]}
    assert (log["tuple"][3], log["tuple"][6]) == ("hello ✓", "WARN")
    assert (error["comp"], error["tuple"][3]) == ("error", "boom")
    assert metrics["tuple"][4:6] == ["latency", {"ms": 1.5, "n": 3}]
    assert sync["comp"] == "sync"


def test_every_value_type_survives_the_round_trip_in_msgpack(echo_classpath, tmp_path):
    sent = [*VALUES, *MSGPACK_ONLY, math.nan]
    with echo_session(echo_classpath, "msgpack", tmp_path) as (python_end, _):
        # A direct emit names its task: Storm 2.8's JsonSerializer fails on it (it casts the
        # Integer its parser gives to Long), so only msgpack is checked with one.
        python_end.send_message(
            {"command": "emit", "tuple": sent, "need_task_ids": False, "task": 9}
        )
        answer = python_end.read_message()
        echoed = answer["tuple"][7]
    assert answer["task"] == 9
    assert math.isnan(echoed.pop())
    expected = [*VALUES[:-1], {"1": "int key"}, *MSGPACK_ONLY]
    assert typed(echoed) == typed(expected)


def test_a_message_cut_short_is_a_broken_pipe_and_garbage_an_error(echo_classpath, tmp_path):
    emit = MsgpackSerializer(None, None, None, None).serialize_dict(
        {"command": "emit", "tuple": ["whole"]}
    )
    outcomes = {}
    for name, tail in (("cut", emit[:-3]), ("garbage", b"\xc1")):
        with echo_process(echo_classpath, "msgpack", tmp_path) as process:
            python_end = MsgpackSerializer(
                process.stdout, process.stdin, threading.RLock(), threading.RLock()
            )
            python_end.read_message()
            python_end.send_message({"pid": PID})
            python_end.read_message()
            process.stdin.write(emit + tail)
            process.stdin.close()
            assert python_end.read_message()["tuple"][7] == ["whole"]
            outcomes[name] = (process.wait(), process.stderr.read().decode())
    code, stderr = outcomes["cut"]
    assert code == 0
    assert (
        "NoOutputException: Pipe to subprocess seems to be broken! It ended in the middle" in stderr
    )
    code, stderr = outcomes["garbage"]
    assert code == 1
    assert "IOException: the multilang process wrote something that is not msgpack" in stderr


USERS = 300


def flux_definition(log_path: Path) -> dict[str, Any]:
    """The Flux YAML `sparse run` wrote and named in its log (it leaves it behind: removed)."""
    [path] = re.findall(
        r"org\.apache\.storm\.flux\.Flux .* (\S+\.yaml)$", log_path.read_text(), re.M
    )
    try:
        return YAML(typ="safe", pure=True).load(Path(path).read_text())
    finally:
        Path(path).unlink()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_scoring_topology_under_each_serializer(
    serializer, kafka_settings, storm_on_path, tmp_path
):
    config = json.loads((ROOT / "config.json").read_text())
    config["serializer"] = serializer
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    settings = fresh_topics(kafka_settings, prefix=f"it-{serializer}")
    users = list(sample_users(USERS, seed=12))
    producer = create_producer(settings, client_id="it-producer")
    sent = {}
    for i, user in enumerate(users):
        payload = encode_user_features(user.user_id, 1_790_000_000_000 + i, user.features)
        producer.send(settings.features_topic, key=user.user_id.encode(), value=payload)
        sent[user.user_id] = user.features
    producer.flush()
    producer.close()
    log_path = tmp_path / "sparse-run.log"
    try:
        with sparse_run(settings, log_path, config=config_path) as process:
            consume_all(settings, settings.scores_topic, USERS, 110, process, log_path)
            wait_committed_to_end(
                settings, scoring_group(settings), settings.features_topic, 60, process
            )
        scores = [decode_threat_score(r.value) for r in read_topic(settings, settings.scores_topic)]
    finally:
        delete_topics(settings, run_topics(settings))
    # Both ends switched: Storm's class in the topology settings, pystorm's in each command.
    # (Scores came, so the two spoke the same: pystorm's msgpack cannot read JSON.)
    flux = flux_definition(log_path)
    assert flux["config"][MULTILANG_SERIALIZER] == SERIALIZER_CLASSES[serializer]
    commands = [c["constructorArgs"][0] for c in flux["spouts"] + flux["bolts"]]
    assert commands and all(
        c[0] == "streamparse_run" and c[1].startswith(f"-s {serializer} ") for c in commands
    )
    assert sorted(s.user_id for s in scores) == sorted(sent), "not one score per user"
    model = load_model(ROOT / "models" / "baseline")
    features = [sent[s.user_id] for s in scores]
    offline = model.estimator.predict_proba(feature_matrix(features, model.manifest.feature_names))
    online = np.array([s.score for s in scores])
    assert np.max(np.abs(online - offline[:, 1])) <= 1e-9
