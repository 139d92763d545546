"""Scoring, Kafka in to Kafka out: the topology under `sparse run` beside a plain Python loop.

Issue 12's benchmark, scoring part. On one pre-loaded topic of ``UserFeatures``:
(a) users/s of the scoring topology, from its first score to its last;
(b) users/s of one process doing the same work with the same clients and model: poll a
    batch, score it in one model call, send the scores, wait for Kafka, commit;
(c) feature-to-score latency at a fixed offered rate into a fresh topic the topology reads;
(e) a soak: a steady rate for minutes, with the RSS of every process of the topology (the
    JVM and each Python component) sampled each minute.
Prints figures only, never asserts them; the last line is the summary issue 12 specifies.
``--profile DIR`` also records where the CPU goes in (a) and (b) (``bench/profiling.py``).
Needs the local stack (`make up`); creates its own topics and deletes them. Run with
`make bench`, or `PYTHONPATH=src .venv/bin/python bench/scoring_pipeline.py --help`.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.record.util import crc32c_c
from threadpoolctl import threadpool_limits

from botscore.clock import now_ms
from botscore.model.registry import LoadedModel, load_model, resolve_model_dir
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.settings import KafkaSettings, Settings, load_project_settings
from botscore.transport.kafka_clients import (
    commit_positions,
    connection_config,
    create_consumer,
    create_producer,
    ensure_topics,
    poll_group,
    wait_for_topic,
)
from botscore.transport.topic_reader import StartAt, assign_topic, read_to_end
from botscore.wire.codec import (
    decode_feature_row,
    decode_threat_score,
    encode_threat_score,
    encode_user_features,
)
from botscore.wire.records import FeatureBatch
from figures import keep_figures
from profiling import profiled, service_pids, session_processes, topology_processes

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("BOTSCORE_STATE", ROOT / ".stack"))
LOGS = STATE / "logs"
ASSIGNED = re.compile(r"partition \d+ assigned, reading from")
WARM_UP_USERS = 2000

Offset = tuple[int, int]  # (partition, offset) of a UserFeatures message


@dataclass(frozen=True)
class Options:
    users: int
    rate: int
    seconds: float
    drain_s: float
    start_timeout_s: float
    score_timeout_s: float
    phases: str
    soak_s: float
    soak_rate: int
    profile: Path | None


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200_000, help="pre-loaded users (a, b)")
    parser.add_argument("--rate", type=int, default=20_000, help="offered users/s (c)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to offer (c)")
    parser.add_argument("--drain-s", type=float, default=60.0, help="wait for late scores (c)")
    parser.add_argument("--start-timeout-s", type=float, default=300.0, help="sparse run start")
    parser.add_argument("--score-timeout-s", type=float, default=900.0, help="(a) and (b) each")
    parser.add_argument("--phases", default="abce", help="which of a, b, c, e to run")
    parser.add_argument("--soak-s", type=float, default=600.0, help="how long the soak runs (e)")
    parser.add_argument("--soak-rate", type=int, default=5_000, help="users/s offered (e)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record CPU per process and py-spy/JFR samples of (a) and (b) into DIR",
    )
    return Options(**vars(parser.parse_args()))


# --- topics and input -------------------------------------------------------------------


def fresh_topics(kafka: KafkaSettings, name: str) -> KafkaSettings:
    """Settings naming a new features, scores and dead-letter topic of this run's own."""
    run = uuid.uuid4().hex[:8]
    settings = replace(
        kafka,
        features_topic=f"bench-{name}-features-{run}",
        scores_topic=f"bench-{name}-scores-{run}",
        dead_letter_topic=f"bench-{name}-dead-letters-{run}",
    )
    ensure_topics(settings, topics_of(settings))
    return settings


def topics_of(kafka: KafkaSettings) -> list[str]:
    return [kafka.features_topic, kafka.scores_topic, kafka.dead_letter_topic]


def delete_topics(kafka: KafkaSettings, topics: list[str]) -> None:
    admin = KafkaAdminClient(**connection_config(kafka))
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


def make_payloads(count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` sample users' ``UserFeatures``, keyed by user id."""
    window_end = now_ms()
    return [
        (u.user_id.encode(), encode_user_features(u.user_id, window_end, u.features))
        for u in sample_users(count, seed=12)
    ]


def preload(kafka: KafkaSettings, payloads: list[tuple[bytes, bytes]]) -> dict[int, int]:
    """Write every payload to the features topic; return its end offsets."""
    producer = create_producer(kafka, client_id="bench-preload", linger_ms=50, batch_size=1 << 20)
    for key, value in payloads:
        producer.send(kafka.features_topic, key=key, value=value)
    producer.flush()
    producer.close()
    return end_offsets(kafka, kafka.features_topic)


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**connection_config(kafka), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


# --- (b) the plain loop -----------------------------------------------------------------


def load_scoring_model(settings: Settings) -> LoadedModel:
    model = load_model(resolve_model_dir(settings.scoring.model_dir))
    # As in the classifier bolt: after the load, which is what loads OpenMP.
    threadpool_limits(limits=settings.scoring.model_threads)
    return model


def score_and_send(
    model: LoadedModel,
    polled: Mapping[TopicPartition, list[Any]],
    producer: KafkaProducer,
    out: str,
    max_skew_ms: int,
) -> int:
    """Decode, score and send one poll's records, one model call per partition (as the
    topology's tuples carry them); the count scored."""
    names = model.manifest.feature_names
    scored = 0
    for tp, messages in polled.items():
        now = now_ms()
        rows = [decode_feature_row(m.value, m.key, names, now, max_skew_ms) for m in messages]
        batch = FeatureBatch(
            user_ids=[row.user_id for row in rows],
            window_end_ms=[row.window_end_ms for row in rows],
            rows=[row.values for row in rows],
            schema_versions=[row.schema_version for row in rows],
            topic=tp.topic,
            partition=tp.partition,
            offsets=[m.offset for m in messages],
        )
        for score in score_batch(model, batch, now).records():
            producer.send(out, key=score.user_id.encode(), value=encode_threat_score(score))
            scored += 1
    return scored


def plain_loop(
    settings: Settings, kafka: KafkaSettings, users: int, timeout_s: float, profile: Path | None
) -> float:
    """Users/s of consumer -> batched model -> producer, committing after each batch."""
    model = load_scoring_model(settings)
    consumer = create_consumer(
        kafka,
        client_id="bench-plain",
        group_id=f"{kafka.features_topic}-plain",
        max_poll_records=settings.scoring.batch_size,
    )
    producer = create_producer(kafka, client_id="bench-plain")
    deadline = time.monotonic() + timeout_s
    wait_for_topic(consumer, kafka.features_topic, lambda: time.monotonic() > deadline)
    consumer.subscribe([kafka.features_topic])
    scored, started = 0, 0.0
    processes = {"plain-loop": os.getpid(), **service_pids(STATE)}
    phase = profile / "b-plain-loop" if profile else None
    try:
        with profiled(phase, processes, python=["plain-loop"]) as recorded:
            while scored < users and time.monotonic() < deadline:
                polled = poll_group(consumer, timeout_ms=500)
                if not polled:
                    continue
                started = started or time.perf_counter()
                scored += score_and_send(
                    model,
                    polled,
                    producer,
                    kafka.scores_topic,
                    settings.aggregation.max_event_skew_ms,
                )
                producer.flush()
                consumer.commit(commit_positions(next_positions(polled)))
            elapsed = time.perf_counter() - started
    finally:
        producer.close()
        consumer.close()
    if recorded:
        recorded.save(scored, "user")
    print(f"(b) plain loop: scored {scored:,} of {users:,} in {elapsed:.1f} s")
    return scored / elapsed if scored else 0.0


def next_positions(polled: Mapping[TopicPartition, list[Any]]) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): batch[-1].offset + 1 for tp, batch in polled.items()}


# --- the topology -----------------------------------------------------------------------


def user_env(**settings: str) -> dict[str, str]:
    """A `make up` user's environment, with ``settings`` (``BOTSCORE_*`` variables)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(ROOT / "bin"), str(Path(sys.executable).parent), env["PATH"]]
    )
    env.setdefault("LEIN_ROOT", "1")  # Leiningen refuses root otherwise
    env.update(settings)
    return env


def topology_env(kafka: KafkaSettings) -> dict[str, str]:
    """A `make up` user's environment, with the topology pointed at this run's topics."""
    return user_env(
        BOTSCORE_KAFKA_FEATURES_TOPIC=kafka.features_topic,
        BOTSCORE_KAFKA_SCORES_TOPIC=kafka.scores_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic,
        BOTSCORE_SCORING_CONSUMER_GROUP=scoring_group(kafka),
    )


def scoring_group(kafka: KafkaSettings) -> str:
    return f"{kafka.features_topic}-scoring"


@contextmanager
def sparse_run(kafka: KafkaSettings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`sparse run -n scoring` on this run's topics; stopped (its whole group) on exit."""
    print(f"    sparse run -n scoring (log: {log_path})")
    with running_topology("scoring", topology_env(kafka), log_path) as process:
        yield process


@contextmanager
def running_topology(
    name: str, env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`sparse run -n NAME` in ``env``, logging to ``log_path``; stopped (its whole group)
    on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sparse", "run", "-e", "local", "-n", name, "-t", "3600"],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def wait_assigned(
    process: subprocess.Popen[bytes], log_path: Path, partitions: int, timeout_s: float
) -> bool:
    """True once the spout has been assigned every partition; False on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if len(ASSIGNED.findall(text)) >= partitions:
            return True
        time.sleep(0.5)
    print(f"    topology not reading after {timeout_s:.0f} s or exited; see {log_path}")
    return False


# --- (a) the topology on the pre-loaded topic -------------------------------------------


def committed_all(admin: KafkaAdminClient, group: str, end: Mapping[int, int]) -> bool:
    offsets = admin.list_group_offsets(group).get(group, {})
    committed = {tp.partition: meta.offset for tp, meta in offsets.items()}
    return all(committed.get(p, 0) >= e for p, e in end.items())


def wait_committed(
    kafka: KafkaSettings, end: Mapping[int, int], process: subprocess.Popen[bytes], timeout_s: float
) -> None:
    """Block until the topology committed every pre-loaded offset, exited, or timed out.

    Polling the group's offsets costs the topology nothing; reading its output live would
    take CPU from it on this 2-core machine.
    """
    admin = KafkaAdminClient(**connection_config(kafka))
    deadline = time.monotonic() + timeout_s
    try:
        while not committed_all(admin, scoring_group(kafka), end):
            if process.poll() is not None or time.monotonic() > deadline:
                print("    topology exited or timed out before committing all input")
                return
            time.sleep(1.0)
    finally:
        admin.close()


def scores_by_source(kafka: KafkaSettings) -> dict[Offset, int]:
    """Each scored source offset -> the Kafka timestamp (ms) of its first score."""
    consumer = KafkaConsumer(**connection_config(kafka), enable_auto_commit=False)
    first: dict[Offset, int] = {}
    try:
        for record in read_to_end(consumer, kafka.scores_topic):
            source = decode_threat_score(record.value).source
            first.setdefault((source.partition, source.offset), record.timestamp)
    finally:
        consumer.close()
    return first


def topology_throughput(
    kafka: KafkaSettings, end: Mapping[int, int], users: int, options: Options
) -> float:
    """Users/s of the topology over the pre-loaded topic, from its first score to its last."""
    log_path = LOGS / "bench-scoring-throughput.log"
    phase = options.profile / "a-topology" if options.profile else None
    with sparse_run(kafka, log_path) as process:
        if not wait_assigned(process, log_path, len(end), options.start_timeout_s):
            return 0.0
        processes, python = topology_processes(process.pid, STATE)
        with profiled(phase, processes, python, jvm="jvm") as recorded:
            wait_committed(kafka, end, process, options.score_timeout_s)
    stamps = scores_by_source(kafka)
    if recorded:
        recorded.save(len(stamps), "user")
    if len(stamps) < 2:
        return 0.0
    span_s = (max(stamps.values()) - min(stamps.values())) / 1000
    print(f"(a) topology: scored {len(stamps):,} distinct of {users:,} in {span_s:.1f} s")
    return len(stamps) / span_s


# --- (c) latency at a fixed offered rate ------------------------------------------------


def read_scores(
    kafka: KafkaSettings,
    ready: Event,
    stop: Event,
    seen: Synchronized[int],
    out: Queue[dict[Offset, float]],
) -> None:
    """In a process of its own: the wall time each source offset's first score was read."""
    consumer = KafkaConsumer(**connection_config(kafka), enable_auto_commit=False)
    assign_topic(consumer, kafka.scores_topic, start=StartAt.BEGINNING)
    read_at: dict[Offset, float] = {}
    ready.set()
    while not stop.is_set():
        for batch in consumer.poll(timeout_ms=100).values():
            now = time.time()
            for record in batch:
                source = decode_threat_score(record.value).source
                read_at.setdefault((source.partition, source.offset), now)
        seen.value = len(read_at)
    consumer.close()
    out.put(read_at)


def offer(
    producer: KafkaProducer, topic: str, payloads: list[tuple[bytes, bytes]], rate: int, count: int
) -> tuple[dict[Offset, float], float]:
    """Send ``count`` payloads paced at ``rate``/s; each offset's send time, and the duration."""
    tick = max(1, rate // 200)  # pace in steps of 5 ms
    sends = []
    started = time.time()
    for i in range(count):
        if i % tick == 0:
            time.sleep(max(0.0, started + i / rate - time.time()))
        key, value = payloads[i % len(payloads)]
        sent_at = time.time()
        sends.append((producer.send(topic, key=key, value=value), sent_at))
    producer.flush()
    duration = time.time() - started
    sent = {}
    for future, sent_at in sends:
        metadata = future.get(timeout=0)
        sent[(metadata.partition, metadata.offset)] = sent_at
    return sent, duration


def wait_seen(seen: Synchronized[int], count: int, timeout_s: float, alive: Any) -> bool:
    deadline = time.monotonic() + timeout_s
    while seen.value < count:
        if time.monotonic() > deadline or alive.poll() is not None:
            return False
        time.sleep(0.1)
    return True


@dataclass(frozen=True)
class Latency:
    offered: int
    sent_per_s: float
    scored_per_s: float
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def latency_figures(
    sent: Mapping[Offset, float],
    read_at: Mapping[Offset, float],
    stopped_at: float,
    rate: int,
    send_s: float,
) -> Latency:
    """Percentiles over every sent message; one never scored counts as scored at the stop.

    So when some are missing, the percentiles that fall on them are lower bounds.
    """
    latencies = sorted((read_at.get(o, stopped_at) - t) * 1000 for o, t in sent.items())
    scored = [read_at[o] for o in sent if o in read_at]
    span = (max(scored) - min(sent.values())) if scored else math.inf
    return Latency(
        offered=rate,
        sent_per_s=len(sent) / send_s,
        scored_per_s=len(scored) / span,
        missing=len(sent) - len(scored),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1],
    )


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class ScoreReader:
    """The ``read_scores`` process and what it shares: how many it has read, its answer."""

    seen: Synchronized[int]
    stop: Event
    out: Queue[dict[Offset, float]]

    def finish(self) -> dict[Offset, float]:
        self.stop.set()
        return self.out.get(timeout=120)


@contextmanager
def score_reader(kafka: KafkaSettings) -> Iterator[ScoreReader]:
    """Start reading the scores topic in a process of its own; always stop it."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with client threads
    ready, stop, seen = context.Event(), context.Event(), context.Value("q", 0)
    out: Queue[dict[Offset, float]] = context.Queue()
    process = context.Process(target=read_scores, args=(kafka, ready, stop, seen, out))
    process.start()
    try:
        ready.wait(60)
        yield ScoreReader(seen, stop, out)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.terminate()


def topology_latency(
    kafka: KafkaSettings, payloads: list[tuple[bytes, bytes]], options: Options
) -> Latency | None:
    """Offer ``options.rate`` users/s for ``options.seconds`` to a warmed-up topology."""
    log_path = LOGS / "bench-scoring-latency.log"
    count = int(options.rate * options.seconds)
    with sparse_run(kafka, log_path) as process:
        if not wait_assigned(process, log_path, kafka.topic_partitions, options.start_timeout_s):
            return None
        with score_reader(kafka) as reader:
            producer = create_producer(kafka, client_id="bench-latency")
            offer(producer, kafka.features_topic, payloads, options.rate, WARM_UP_USERS)
            if not wait_seen(reader.seen, WARM_UP_USERS, options.drain_s, process):
                print("    the topology did not score the warm-up users in time")
            sent, send_s = offer(producer, kafka.features_topic, payloads, options.rate, count)
            producer.close()
            wait_seen(reader.seen, WARM_UP_USERS + count, options.drain_s, process)
            stopped_at = time.time()
            read_at = reader.finish()
    return latency_figures(sent, read_at, stopped_at, options.rate, send_s)


def print_latency(result: Latency, options: Options) -> None:
    print(
        f"(c) offered {result.offered:,} users/s for {options.seconds:g} s: "
        f"sent {result.sent_per_s:,.0f}/s, scored {result.scored_per_s:,.0f}/s"
    )
    if result.missing:
        print(
            f"    the topology did not keep up: {result.missing:,} users unscored "
            f"{options.drain_s:g} s after sending ended; counted as scored then, so the "
            f"percentiles that fall on them are lower bounds"
        )
    print(
        f"    feature -> score: p50 {result.p50_ms:,.0f} ms  p99 {result.p99_ms:,.0f} ms  "
        f"max {result.max_ms:,.0f} ms"
    )


# --- (e) the soak: memory over minutes at a steady rate -------------------------------


def process_memory(session: int) -> dict[str, int]:
    """RSS in kB of each process in the topology's session: ``jvm`` and the components."""
    memory: dict[str, int] = {}
    for name, pid in session_processes(session).items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # ended meanwhile
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if rss is not None:
            memory[name] = int(rss.group(1))
    return memory


def paced(
    producer: KafkaProducer,
    topic: str,
    payloads: list[tuple[bytes, bytes]],
    rate: int,
    seconds: float,
    start: int,
) -> int:
    """Send at ``rate``/s for ``seconds``, cycling through ``payloads``; how many were sent."""
    tick = max(1, rate // 200)
    started = time.time()
    count = int(rate * seconds)
    for i in range(count):
        if i % tick == 0:
            time.sleep(max(0.0, started + i / rate - time.time()))
        key, value = payloads[(start + i) % len(payloads)]
        producer.send(topic, key=key, value=value)
    producer.flush()
    return count


def soak(settings: Settings, payloads: list[tuple[bytes, bytes]], options: Options) -> None:
    """(e) ``soak_rate`` users/s for ``soak_s`` seconds; RSS per process every minute."""
    kafka = fresh_topics(settings.kafka, "soak")
    log_path = LOGS / "bench-scoring-soak.log"
    try:
        with sparse_run(kafka, log_path) as process:
            if not wait_assigned(
                process, log_path, kafka.topic_partitions, options.start_timeout_s
            ):
                return
            producer = create_producer(kafka, client_id="bench-soak")
            sent = paced(producer, kafka.features_topic, payloads, options.soak_rate, 30, 0)
            start = process_memory(process.pid)  # after a 30 s warm-up at the soak's rate
            print(
                f"(e) soak at {options.soak_rate:,} users/s; RSS after 30 s of warm-up (MiB): "
                + _memory_line(start)
            )
            minutes = max(1, round(options.soak_s / 60))
            for minute in range(1, minutes + 1):
                sent += paced(
                    producer,
                    kafka.features_topic,
                    payloads,
                    options.soak_rate,
                    options.soak_s / minutes,
                    sent,
                )
                if process.poll() is not None:
                    print(f"    the topology exited after {minute - 1} min; see {log_path}")
                    return
                print(f"    {minute:>3} min: " + _memory_line(process_memory(process.pid)))
            producer.close()
            end_in = end_offsets(kafka, kafka.features_topic)
            wait_committed(kafka, end_in, process, options.drain_s * 5)
            end = process_memory(process.pid)
        scored = sum(end_offsets(kafka, kafka.scores_topic).values())
        print(f"    sent {sent:,}, scores written {scored:,} (replays included)")
        for name in sorted(start):
            if name in end:
                growth = (end[name] - start[name]) / start[name] * 100
                print(
                    f"    {name:<26} {start[name] / 1024:8.1f} -> {end[name] / 1024:8.1f} MiB"
                    f"  ({growth:+.1f}%)"
                )
    finally:
        delete_topics(kafka, topics_of(kafka))


def _memory_line(memory: Mapping[str, int]) -> str:
    return "  ".join(f"{name} {kb / 1024:.0f}" for name, kb in sorted(memory.items()))


# --- the run ----------------------------------------------------------------------------


def describe_client() -> None:
    crc = "installed (C)" if crc32c_c is not None else "not installed: pure-Python CRC"
    print(f"kafka-python crc32c: {crc}")


def throughput(
    settings: Settings, payloads: list[tuple[bytes, bytes]], options: Options
) -> tuple[float, float]:
    """(a) and (b) on one pre-loaded topic, each writing its own scores topic."""
    shared = fresh_topics(settings.kafka, "scoring")
    topology_out = replace(shared, scores_topic=f"{shared.scores_topic}-topology")
    plain_out = replace(shared, scores_topic=f"{shared.scores_topic}-plain")
    ensure_topics(shared, [topology_out.scores_topic, plain_out.scores_topic])
    topology_rate = baseline_rate = math.nan
    try:
        end = preload(shared, payloads[: options.users])
        print(f"pre-loaded {options.users:,} UserFeatures on {shared.features_topic}")
        if "b" in options.phases:
            baseline_rate = plain_loop(
                settings, plain_out, options.users, options.score_timeout_s, options.profile
            )
        if "a" in options.phases:
            topology_rate = topology_throughput(topology_out, end, options.users, options)
    finally:
        outputs = [topology_out.scores_topic, plain_out.scores_topic]
        delete_topics(shared, [*topics_of(shared), *outputs])
    print(f"(a) topology {topology_rate:,.0f} users/s  (b) plain loop {baseline_rate:,.0f} users/s")
    return topology_rate, baseline_rate


def latency(
    settings: Settings, payloads: list[tuple[bytes, bytes]], options: Options
) -> Latency | None:
    """(c) on a topic of its own."""
    fresh = fresh_topics(settings.kafka, "latency")
    try:
        result = topology_latency(fresh, payloads, options)
    finally:
        delete_topics(fresh, topics_of(fresh))
    if result:
        print_latency(result, options)
    return result


def main() -> None:
    options = parse_options()
    settings = load_project_settings()
    describe_client()
    payloads = make_payloads(max(options.users, WARM_UP_USERS))
    topology_rate = baseline_rate = math.nan
    if "a" in options.phases or "b" in options.phases:
        topology_rate, baseline_rate = throughput(settings, payloads, options)
    result = latency(settings, payloads, options) if "c" in options.phases else None
    if "e" in options.phases:
        soak(settings, payloads, options)
    ratio = topology_rate / baseline_rate if baseline_rate else math.nan
    p50, p99 = (result.p50_ms, result.p99_ms) if result else (math.nan, math.nan)
    print(
        f"topology_users_per_s={whole(topology_rate)} baseline_users_per_s={whole(baseline_rate)} "
        f"ratio={ratio:.2f} p50_ms={whole(p50)} p99_ms={whole(p99)}"
    )
    if "a" in options.phases:
        keep_figures(scoring_users_per_s=topology_rate)


def whole(value: float) -> str:
    """An integer figure, or ``nan`` for one not measured."""
    return str(round(value)) if math.isfinite(value) else str(value)


if __name__ == "__main__":
    main()
