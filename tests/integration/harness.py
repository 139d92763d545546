"""Helpers for tests against the real stack: a run's own topics, `sparse run`, reading topics.

Nothing here starts or fakes a service: `make up` does that. A missing service fails the
test with the command that starts it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from botscore.settings import KafkaSettings, RedisSettings, Settings
from botscore.transport.kafka_clients import connection_config, create_producer, ensure_topics
from botscore.transport.redis_client import create_redis
from botscore.transport.topic_reader import StartAt, assign_topic, read_to_end

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("BOTSCORE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def stack_env(**overrides: str) -> dict[str, str]:
    """Environment of a user who ran `make up`: our storm launcher and the venv on PATH."""
    env = dict(os.environ)
    venv_bin = Path(os.sys.executable).parent
    env["PATH"] = os.pathsep.join([str(ROOT / "bin"), str(venv_bin), env.get("PATH", "")])
    env.setdefault("LEIN_ROOT", "1")  # Leiningen refuses root otherwise
    env.update(overrides)
    return env


def stack_script(
    script: Path,
    command: str,
    timeout_s: float = 600,
    hint: str = "",
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> str:
    """What ``script command`` prints, stripped; the test fails with its output (and
    ``hint``) when it fails. ``env`` replaces ``stack_env()`` (a state folder, ports); ``args``
    follow ``command``."""
    done = subprocess.run(
        [str(script), command, *args],
        env=stack_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        name = script.relative_to(ROOT)
        pytest.fail(
            f"`{name} {' '.join((command, *args))}` failed:\n{done.stdout}{done.stderr}{hint}"
        )
    return done.stdout.strip()


def botscore_cli(
    settings: KafkaSettings, *args: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """``bin/botscore args`` as an operator runs it, on ``settings``' broker and topics."""
    env = stack_env(
        BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        BOTSCORE_KAFKA_FEATURES_TOPIC=settings.features_topic,
        BOTSCORE_KAFKA_SCORES_TOPIC=settings.scores_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=settings.dead_letter_topic,
    )
    return subprocess.run(
        ["bin/botscore", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def stack_redis_db(db: int) -> RedisSettings:
    """Database ``db`` of the Redis the environment names (``BOTSCORE_REDIS_*``), as the
    components under test will find it: the stack's, 127.0.0.1:6379, by default."""
    return replace(Settings.from_options({}).redis, db=db)


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def fresh_topics(
    kafka_settings: KafkaSettings,
    prefix: str = "it",
    run: str | None = None,
    also: tuple[str, ...] = (),
) -> KafkaSettings:
    """Topics and a consumer group of the caller's own, so runs never see each other's data.

    Creates the features, scores, shadow scores and dead-letter topics, plus ``also``, as
    ``kafka_settings`` say (brokers, partitions, replicas).
    """
    run = run or new_run_id()
    settings = replace(
        kafka_settings,
        features_topic=f"{prefix}-features-{run}",
        scores_topic=f"{prefix}-scores-{run}",
        shadow_scores_topic=f"{prefix}-shadow-scores-{run}",
        dead_letter_topic=f"{prefix}-dead-letters-{run}",
    )
    ensure_topics(settings, [*run_topics(settings), *also])
    return settings


def limit_message_bytes(settings: KafkaSettings, topic: str, limit: int) -> None:
    """Give ``topic`` a smaller limit (``max.message.bytes``), as an operator might: Kafka
    refuses a batch over it for good (``MessageSizeTooLargeError``, not retried)."""
    admin = KafkaAdminClient(**connection_config(settings))
    try:
        config = {"max.message.bytes": str(limit)}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])
    finally:
        admin.close()


def refused_dead_letter(settings: KafkaSettings) -> bytes:
    """A message no spout can decode, whose dead letter Kafka refuses for good: the run's
    dead-letter topic is given a smaller limit, and the message's bytes (random: they would
    not compress) are over it."""
    limit = 100_000
    limit_message_bytes(settings, settings.dead_letter_topic, limit)
    return b"\x07" + random.Random(7).randbytes(2 * limit)  # field 0, wire type 7: neither exists


def scoring_group(settings: KafkaSettings) -> str:
    """The scoring topology's consumer group in a test run: named after the run's features topic."""
    return f"{settings.features_topic}-scoring"


def topology_env(settings: KafkaSettings) -> dict[str, str]:
    """``BOTSCORE_*`` overrides that point the scoring topology at a run's topics and group."""
    return {
        "BOTSCORE_KAFKA_FEATURES_TOPIC": settings.features_topic,
        "BOTSCORE_KAFKA_SCORES_TOPIC": settings.scores_topic,
        "BOTSCORE_KAFKA_SHADOW_SCORES_TOPIC": settings.shadow_scores_topic,
        "BOTSCORE_SCORING_CONSUMER_GROUP": scoring_group(settings),
        "BOTSCORE_KAFKA_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
    }


def run_topics(settings: KafkaSettings) -> list[str]:
    """The topics ``fresh_topics`` created for ``settings`` (without ``also``)."""
    return [
        settings.features_topic,
        settings.scores_topic,
        settings.shadow_scores_topic,
        settings.dead_letter_topic,
    ]


def delete_topics(settings: KafkaSettings, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers.split(","))
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


@contextmanager
def sparse_run(
    settings: KafkaSettings,
    log_path: Path,
    ttl_s: int = 900,
    topology: str = "scoring",
    config: Path | None = None,
    **extra_env: str,
) -> Iterator[subprocess.Popen]:
    """`sparse run -e local -n <topology>` as a user types it, pointed at the test's topics.

    ``config`` replaces config.json (``sparse run --config``); ``extra_env`` adds
    ``BOTSCORE_*`` overrides (e.g. TLS settings) for the components.
    """
    env = stack_env(**topology_env(settings), **extra_env)
    config_args = ["--config", str(config)] if config else []
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sparse", "run", "-e", "local", "-n", topology, "-t", str(ttl_s), *config_args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def enforcing(
    settings: KafkaSettings, group: str, log_path: Path, **extra_env: str
) -> Iterator[subprocess.Popen]:
    """`botscore enforce` as a user types it, reading the run's scores topic as ``group``
    until the block ends; ``extra_env`` adds ``BOTSCORE_*`` overrides (its Redis database)."""
    env = stack_env(
        BOTSCORE_KAFKA_SCORES_TOPIC=settings.scores_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=settings.dead_letter_topic,
        BOTSCORE_ENFORCEMENT_CONSUMER_GROUP=group,
        **extra_env,
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["botscore", "enforce"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


def consume_all(
    settings: KafkaSettings,
    topic: str,
    expected: int,
    timeout_s: float,
    alive: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> list:
    """Read `topic` from the beginning until `expected` records arrived or time runs out.

    The consumer is configured like our own clients, TLS included, from `settings`.
    """
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    deadline = time.monotonic() + timeout_s
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} never appeared")
        time.sleep(0.2)
    assign_topic(consumer, topic, start=StartAt.BEGINNING)
    records = []
    try:
        while len(records) < expected and time.monotonic() < deadline:
            if alive is not None and alive.poll() is not None:
                tail = log_path.read_text(errors="replace")[-4000:] if log_path else ""
                raise AssertionError(f"sparse run exited with {alive.returncode}:\n{tail}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` -> its end offset (the next offset to be written)."""
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


# What ``plant_position_faults`` leaves on a topic before a topology reads it.
DELETED_BEFORE_READ = 7  # messages on partition 0 that retention "deleted" unread
PAST_THE_END = 10**9  # the group's commit on partition 1, past its log's end


def plant_position_faults(settings: KafkaSettings, topic: str, group: str) -> None:
    """Leave ``topic`` as a spout of ``group`` can find it after an outage or a mishap.

    Partition 0 starts with ``DELETED_BEFORE_READ`` messages that are deleted (as
    retention would) while the group's commit stays at 0, below the log's new start;
    partition 1 carries a commit past its end (the topic recreated under a group that kept
    its offsets). Call it before producing the run's own messages.
    """
    producer = create_producer(settings, client_id="it-plant")
    try:
        sent = [
            producer.send(topic, key=b"planted", value=b"deleted-%d" % i, partition=0)
            for i in range(DELETED_BEFORE_READ)
        ]
        placed = [(f.get(30).partition, f.get(30).offset) for f in sent]
    finally:
        producer.close()
    offsets_file = ROOT / ".stack" / f"delete-records-{new_run_id()}.json"
    offsets_file.parent.mkdir(exist_ok=True)
    offsets_file.write_text(
        f'{{"version": 1, "partitions": [{{"topic": "{topic}", "partition": 0, '
        f'"offset": {DELETED_BEFORE_READ}}}]}}'
    )
    try:
        subprocess.run(
            [
                str(ROOT / "stack/kafka/kafka.sh"),
                "run-class",
                "org.apache.kafka.tools.DeleteRecordsCommand",
                "--bootstrap-server",
                settings.bootstrap_servers,
                "--offset-json-file",
                str(offsets_file),
            ],
            check=True,
            capture_output=True,
            env=stack_env(),
            timeout=120,
        )
    finally:
        offsets_file.unlink()
    consumer = KafkaConsumer(
        **connection_config(settings), group_id=group, enable_auto_commit=False
    )
    try:
        consumer.commit(
            {
                TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1),
                TopicPartition(topic, 1): OffsetAndMetadata(PAST_THE_END, "", -1),
            }
        )
    finally:
        consumer.close()
    assert placed == [(0, i) for i in range(DELETED_BEFORE_READ)], placed


def committed_offsets(settings: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` -> ``group``'s committed position (0 if none yet).

    On a fresh broker the first group lookup creates the offsets topic and is answered
    "coordinator not available": such retriable errors are retried for up to 30 s.
    """
    deadline = time.monotonic() + 30
    while True:
        admin = KafkaAdminClient(**connection_config(settings))
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
            break
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
        finally:
            admin.close()
        time.sleep(0.5)
    committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    return {p: committed.get(p, 0) for p in end_offsets(settings, topic)}


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``check()`` holds; fails naming ``what`` after ``timeout_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def wait_committed_to_end(
    settings: KafkaSettings,
    group: str,
    topic: str,
    timeout_s: float,
    alive: subprocess.Popen | None = None,
) -> dict[int, int]:
    """Block until ``group`` has committed every offset of ``topic``; return the positions.

    A consumer commits an offset only once everything it caused is on Kafka, so after
    this returns the output topics hold all they will ever hold for the input so far:
    negative checks can read them to their end instead of waiting a while.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        end = end_offsets(settings, topic)
        committed = committed_offsets(settings, group, topic)
        if committed == end:
            return committed
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"sparse run exited with {alive.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group {group} committed {committed} of {topic} after {timeout_s:.0f} s; "
                f"end offsets {end}"
            )
        time.sleep(0.5)


def only_line(log: str, text: str) -> str:
    """The line of ``log`` that contains ``text``; fails unless there is exactly one."""
    lines = [line for line in log.splitlines() if text in line]
    assert len(lines) == 1, f"{len(lines)} lines contain {text!r}"
    return lines[0]


def read_topic(settings: KafkaSettings, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to the end offsets at the time of the call."""
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    try:
        return list(read_to_end(consumer, topic))
    finally:
        consumer.close()


def wait_until_reading(process: subprocess.Popen, log_path: Path, timeout_s: float = 300) -> None:
    """Block until the topology's Kafka spout has joined its group (its log says so)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if re.search(r"reading \S+ as group", text):
            return
        if process.poll() is not None:
            raise AssertionError(f"sparse run exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"topology not reading after {timeout_s:.0f} s; see {log_path}")


@contextmanager
def empty_redis_db(db: int) -> Iterator[redis.Redis]:
    """A client on database ``db`` of the stack's Redis, emptied before and after.

    Each test module has a database of its own, so none sees another's keys.
    """
    settings = stack_redis_db(db)
    client = create_redis(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"no Redis at {settings.host}:{settings.port} ({exc}): start the stack with `make up`"
        )
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
