"""Helpers for fault tests: feed a stream, collect scores in the background, and play
Storm's supervisor for `sparse run` (local mode has none, so a dead worker stays dead)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from botscore.model.sample_users import sample_users
from botscore.settings import KafkaSettings
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.transport.topic_reader import StartAt, assign_topic
from botscore.wire.codec import decode_threat_score, encode_user_features

from .harness import (
    ROOT,
    committed_offsets,
    end_offsets,
    scoring_group,
    stack_env,
    topology_env,
)

Source = tuple[int, int]  # (partition, offset) in the features topic


def produce(
    settings: KafkaSettings,
    payloads: Iterable[tuple[bytes, bytes]],
    topic: str | None = None,
    partition: int | None = None,
) -> list[Source]:
    """Send (key, value) pairs in order (to the features topic by default, partitioned by
    key unless ``partition`` is given); return where each one landed."""
    producer = create_producer(settings, client_id="it-feed")
    topic = topic or settings.features_topic
    futures = [producer.send(topic, key=k, value=v, partition=partition) for k, v in payloads]
    producer.flush()
    placed = [(f.get().partition, f.get().offset) for f in futures]
    producer.close()
    return placed


class PacedFeed:
    """Sends a stream at a steady rate from a thread, so a fault lands mid-stream however
    fast the topology is: a stream sent all at once may be scored and committed before
    the test gets to its fault.

    ``send_now`` sends a first part at once (to see the topology scoring before pacing
    starts); ``start`` sends the rest, ``chunk`` messages at a time. ``hold`` stops it
    between chunks (before a broker outage) and ``release`` resumes it; ``join`` waits for
    the end and raises what went wrong on the thread, ``finish`` ends it early (a stream
    long enough for a slow machine, cut once the fault is over). ``sent`` is where each
    message landed.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        payloads: list[tuple[bytes, bytes]],
        per_second: int,
        chunk: int = 250,
    ) -> None:
        self.settings = settings
        self.per_second = per_second
        self.sent: list[Source] = []
        self._pending = list(payloads)
        self._chunk = chunk
        self._errors: list[BaseException] = []
        self._producer = create_producer(settings, client_id="it-paced-feed")
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._go.set()
        if self._thread.is_alive():
            self._thread.join(60)
        self._producer.close()

    def send_now(self, count: int) -> None:
        self._send(self._pending[:count])
        del self._pending[:count]

    def start(self) -> None:
        self._thread.start()

    def hold(self) -> int:
        """Stop after the chunk being sent; return how many messages are on Kafka."""
        self._go.clear()
        self._idle.wait(60)
        if self._thread.is_alive() and not self._idle.is_set():
            raise AssertionError("the paced feed did not stop within 60 s")
        return len(self.sent)

    def release(self) -> None:
        self._go.set()

    def wait_sent(self, count: int, timeout_s: float = 60) -> None:
        """Block until ``count`` messages are on Kafka (or the feed ended or failed)."""
        deadline = time.monotonic() + timeout_s
        while len(self.sent) < count and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the paced feed sent {len(self.sent)} of {count}")
            time.sleep(0.05)

    def finish(self) -> list[Source]:
        """End the stream after the chunk being sent, however much is left; what was sent."""
        self._stop.set()
        self._go.set()
        return self.join()

    def join(self, timeout_s: float = 300) -> list[Source]:
        self._thread.join(timeout_s)
        if self._errors:
            raise AssertionError(f"feeding the stream failed: {self._errors[0]!r}")
        if self._thread.is_alive():
            raise AssertionError(f"the paced feed was not done after {timeout_s:.0f} s")
        return self.sent

    def _send(self, payloads: list[tuple[bytes, bytes]]) -> None:
        topic = self.settings.features_topic
        futures = [self._producer.send(topic, key=k, value=v) for k, v in payloads]
        self._producer.flush()
        self.sent.extend((f.get().partition, f.get().offset) for f in futures)

    def _run(self) -> None:
        pause = self._chunk / self.per_second
        try:
            for i in range(0, len(self._pending), self._chunk):
                while not self._go.is_set():
                    self._idle.set()
                    self._go.wait(0.1)
                self._idle.clear()
                if self._stop.is_set():
                    return
                self._send(self._pending[i : i + self._chunk])
                time.sleep(pause)  # the arrival rate, not a synchronisation
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            self._idle.set()


def valid_users(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    return [
        (u.user_id.encode(), encode_user_features(u.user_id, 1_790_000_000_000 + i, u.features))
        for i, u in enumerate(sample_users(count, seed))
    ]


class TopicFollower:
    """Reads a topic from the beginning on a thread until closed; ``take`` sees each record.

    ``take`` runs under ``_lock``, which readers of what it collects take too. An error on
    the thread is kept in ``error`` for the test to raise, never lost.
    """

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run_guarded, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def take(self, record: ConsumerRecord, now: float) -> None:
        raise NotImplementedError

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        consumer = KafkaConsumer(**connection_config(self.settings), enable_auto_commit=False)
        assign_topic(consumer, self.topic, start=StartAt.BEGINNING)
        while not self._stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                now = time.monotonic()
                with self._lock:
                    for record in records:
                        self.take(record, now)
        consumer.close()


class ScoreCollector(TopicFollower):
    """Counts the scores on a scores topic per source (features partition, offset)."""

    def __init__(self, settings: KafkaSettings, topic: str | None = None) -> None:
        super().__init__(settings, topic or settings.scores_topic)
        self.counts: Counter[Source] = Counter()
        self.arrivals: list[float] = []

    def take(self, record: ConsumerRecord, now: float) -> None:
        score = decode_threat_score(record.value)
        self.counts[(score.source.partition, score.source.offset)] += 1
        self.arrivals.append(now)

    def distinct(self) -> int:
        with self._lock:
            return len(self.counts)

    def first_arrival_after(self, moment: float) -> float | None:
        with self._lock:
            later = [t for t in self.arrivals if t > moment]
        return min(later) if later else None

    def longest_pause_after(self, moment: float) -> float:
        """The longest time without a new score from ``moment`` to the last score."""
        with self._lock:
            times = [moment, *sorted(t for t in self.arrivals if t > moment)]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.error is not None:
                raise AssertionError(f"score collector died: {self.error!r}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}; {self.status()}"
                )
            time.sleep(0.2)

    def status(self) -> str:
        """Where a stalled stream stopped: in the topology, or in this collector."""
        with self._lock:
            read, distinct = sum(self.counts.values()), len(self.counts)
        group = scoring_group(self.settings)
        try:
            held = sum(end_offsets(self.settings, self.topic).values())
            committed = committed_offsets(self.settings, group, self.settings.features_topic)
        except KafkaError as exc:
            return f"collector read {read} scores ({distinct} distinct); broker unreadable: {exc}"
        return (
            f"collector read {read} scores ({distinct} distinct) of {held} in {self.topic}; "
            f"group {group} committed {committed}"
        )


# How long a member that got partitions polls for its first records.
READ_WAIT_S = 30


class GroupMember:
    """A bare consumer in a topology's group: joining, then leaving, makes the group
    rebalance twice; it reads what it is given and commits nothing, like a consumer that
    crashed before its first commit."""

    def __init__(self, settings: KafkaSettings, group: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            **connection_config(settings),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.topic = topic
        self.read = 0

    def start_joining(self) -> None:
        """Send the JoinGroup that starts the rebalance; the join ends in ``wait_assigned``."""
        self.consumer.subscribe([self.topic])
        self.read += sum(len(r) for r in self.consumer.poll(timeout_ms=200).values())

    def wait_assigned(self, timeout_s: float) -> list[int]:
        """Poll until the group gave this member partitions (and read from them)."""
        deadline = time.monotonic() + timeout_s
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"no partitions after {timeout_s:.0f} s")
            self.read += sum(len(r) for r in self.consumer.poll(timeout_ms=500).values())
        # Take some records it will never commit: at least four polls, and on until one
        # returns records (its first fetch can wait on a broker that just restarted, and
        # the topology may have read its partitions to the end: then it takes what the
        # feed sends next), so the partitions it gives back hold reads nobody committed.
        taken = time.monotonic()
        polls = 0
        while polls < 4 or (self.read == 0 and time.monotonic() < taken + READ_WAIT_S):
            self.read += sum(len(r) for r in self.consumer.poll(timeout_ms=500).values())
            polls += 1
        return sorted(tp.partition for tp in self.consumer.assignment())

    def leave(self) -> None:
        self.consumer.close(autocommit=False)


# Lines of a `sparse run` log that tell why it ended.
_DEATH_WORDS = ("died", "Halting", "timeout", "Traceback", "Error:", "Exception", "exited")


class SupervisedTopology:
    """`sparse run` restarted whenever it exits on its own, as Storm's supervisor would
    restart a dead worker; `restart()` stops it on purpose and starts it again."""

    def __init__(
        self, settings: KafkaSettings, log_dir: Path, topology: str = "scoring", **extra_env: str
    ) -> None:
        self.topology = topology
        self.env = stack_env(
            **topology_env(settings),
            **extra_env,
        )
        self.log_dir = log_dir
        self.starts = 0
        self.unplanned_exits = 0
        # For each unplanned exit: its exit code and the lines of its log that say why.
        self.deaths: list[str] = []
        self._process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> SupervisedTopology:
        self._start()
        self._watcher.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stopping.set()
        self._stop_process()
        if exc_type is not None:  # pytest shows this output with the failure
            for path in sorted(self.log_dir.glob("sparse-run-*.log")):
                with path.open("rb") as log:
                    log.seek(max(0, path.stat().st_size - 20_000))
                    print(f"--- end of {path.name} ({self.topology} topology) ---")
                    print(log.read().decode(errors="replace"))

    def death_report(self) -> str:
        """Why each unplanned exit happened, for an assertion message."""
        return "\n".join(self.deaths) or "no unplanned exit"

    def _why_it_ended(self, returncode: int) -> str:
        log = self.log_dir / f"sparse-run-{self.starts}.log"
        lines = log.read_text(errors="replace").splitlines()
        telling = [
            line
            for line in lines
            if any(word in line for word in _DEATH_WORDS) and "ConnectionResetError" not in line
        ]
        return f"--- run {self.starts} exited with {returncode}:\n" + "\n".join(
            (telling or lines)[-40:]
        )

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob("sparse-run-*.log"))
        )

    def component_pids(self, class_name: str) -> list[int]:
        """PIDs of this topology's Python processes running ``class_name`` (none of others)."""
        process = self._process
        if process is None:
            return []
        found = subprocess.run(
            ["pgrep", "-s", str(process.pid), "-f", f"streamparse_run.* {class_name}"],
            capture_output=True,
            text=True,
        )
        return [int(pid) for pid in found.stdout.split()]

    def restart(self, while_stopped: Callable[[], object] = lambda: None) -> None:
        """Stop the topology, call ``while_stopped``, start it again."""
        with self._lock:
            self._stop_process()
            while_stopped()
            self._start()

    def _start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"sparse-run-{self.starts}.log").open("wb")
        self._process = subprocess.Popen(
            ["sparse", "run", "-e", "local", "-n", self.topology, "-t", "1800"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _stop_process(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(grace)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._process is not None and self._process.poll() is not None:
                    self.unplanned_exits += 1
                    self.deaths.append(self._why_it_ended(self._process.returncode))
                    self._start()
            time.sleep(0.5)
