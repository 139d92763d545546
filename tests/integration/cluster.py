"""Helpers for tests against the local Storm cluster (``stack/storm/cluster.sh``).

A test submits a topology exactly as a user types it (``sparse submit -e cluster``), pointed
at its own topics and consumer group by ``-o`` options (workers inherit the supervisor's
environment, not the caller's, so ``BOTSCORE_*`` variables cannot reach them).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from botscore.settings import KafkaSettings

from .harness import ROOT, scoring_group, stack_env

STATE = Path(os.environ.get("BOTSCORE_STATE", ROOT / ".stack")) / "cluster"
WORKER_LOGS = STATE / "logs" / "workers-artifacts"


def cluster_script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "stack" / "storm" / "cluster.sh"), command],
        env=stack_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def submit_options(settings: KafkaSettings, **options: str | int) -> list[str]:
    """``-o`` options pointing a topology at a test's topics and scoring group, plus
    ``options`` (``section__key=value`` for ``botscore.section.key``).

    Workers inherit the supervisor's environment, not the test's: on a cluster, settings
    travel in the topology's configuration.
    """
    values: dict[str, str | int] = {
        "botscore.kafka.features_topic": settings.features_topic,
        "botscore.kafka.scores_topic": settings.scores_topic,
        "botscore.kafka.shadow_scores_topic": settings.shadow_scores_topic,
        "botscore.kafka.dead_letter_topic": settings.dead_letter_topic,
        "botscore.scoring.consumer_group": scoring_group(settings),
    }
    values.update({f"botscore.{key.replace('__', '.')}": value for key, value in options.items()})
    return [arg for key, value in values.items() for arg in ("-o", f"{key}={value}")]


def sparse(*args: str, timeout_s: float = 300) -> str:
    """``sparse ARGS -e cluster`` from the project root; its output, or AssertionError."""
    done = subprocess.run(
        ["sparse", *args, "-e", "cluster"],
        cwd=ROOT,
        env=stack_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise AssertionError(f"sparse {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def worker_logs(name: str) -> list[Path]:
    """The worker logs of topology ``name`` (its ids are ``NAME-N-TIMESTAMP``)."""
    return sorted(WORKER_LOGS.glob(f"{name}-[0-9]*-[0-9]*/*/worker.log"))


def wait_reading(name: str, timeout_s: float) -> None:
    """Block until a worker of ``name`` logs that its Kafka spout joined its group."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for log in worker_logs(name):
            if re.search(r"reading \S+ as group", log.read_text(errors="replace")):
                return
        time.sleep(0.5)
    raise AssertionError(f"topology {name} not reading after {timeout_s:.0f} s")


def spout_worker_pid(name: str, spout: str = "features") -> int:
    """The pid of the live worker JVM that runs ``spout`` of topology ``name``."""
    for log in worker_logs(name):
        pid_file = log.parent / "worker.pid"
        if not pid_file.exists() or f"name:{spout} " not in log.read_text(errors="replace"):
            continue
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return pid
    raise AssertionError(f"no live worker of {name} runs {spout}")


def kill_hard(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def daemon_pid(daemon: str) -> int:
    """The pid ``cluster.sh`` recorded for ``daemon`` (``nimbus``, ``supervisor-1``, ...)."""
    return int((STATE / daemon / "pid").read_text().split()[0])


def supervisor_of(worker_pid: int) -> str:
    """Which supervisor launched the worker JVM ``worker_pid`` (from its command line)."""
    args = Path(f"/proc/{worker_pid}/cmdline").read_bytes().decode().split("\0")
    for arg in args:
        found = re.fullmatch(rf"-Dstorm\.home={re.escape(str(STATE))}/(supervisor-\d+)/home", arg)
        if found:
            return found.group(1)
    raise AssertionError(f"worker {worker_pid} was not launched by one of our supervisors")


def daemon_log(daemon: str) -> Path:
    """The log ``cluster.sh`` gives ``daemon``."""
    return STATE / "logs" / f"{daemon}.log"


def kill_supervisor_and_workers(supervisor: str) -> int:
    """``kill -9`` a supervisor and every worker it launched; how many processes died."""
    home = f"-Dstorm.home={STATE}/{supervisor}/home"
    found = subprocess.run(["pgrep", "-f", "--", home], capture_output=True, text=True)
    pids = {int(pid) for pid in found.stdout.split()} | {daemon_pid(supervisor)}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            kill_hard(pid)
    return len(pids)
