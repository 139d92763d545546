"""Where a bench phase's CPU goes: py-spy on Python processes, JFR and thread CPU of a JVM.

The benches' ``--profile DIR`` writes, for each profiled phase, ``DIR/<phase>/``:
``<name>.txt``, py-spy's collapsed stacks of each Python process (``--format raw``;
sleeping threads left out, running ones and those waiting for a core kept); ``jvm.txt``,
the JVM's JFR execution samples in the same format (root first, the thread's name as the
root frame); ``cpu.json``, CPU seconds of every process over the phase and of each of the
sampled processes' threads, the units of work done and the load average.
``bench/profile_summary.py DIR`` prints them. CPU comes from ``/proc``: on a shared machine
it is steadier than wall clock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY_SPY_RATE = 100  # samples/s, py-spy's default
JFR_RECORDING = "botscore-bench"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
NID = re.compile(r'^"(?P<name>[^"]+)".*\bnid=(?P<nid>0x[0-9a-f]+)', re.M)


def find_tool(name: str) -> str | None:
    """``name`` on PATH or beside this Python (a venv's bin/)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


# --- processes --------------------------------------------------------------------------


def session_processes(session: int) -> dict[str, int]:
    """Name -> pid of a ``sparse run``'s processes: ``jvm`` and each component by class.

    A second process of one name (a component with ``par`` > 1) gets ``-2``, ``-3``...
    """
    found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True)
    named: dict[str, int] = {}
    for pid in sorted(int(p) for p in found.stdout.split()):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        name = process_name([a.decode(errors="replace") for a in args if a])
        if name:
            count = sum(1 for n in named if n == name or n.startswith(f"{name}-"))
            named[name if count == 0 else f"{name}-{count + 1}"] = pid
    return named


def process_name(args: list[str]) -> str | None:
    if any(a.endswith("streamparse_run") for a in args):
        return args[-1].rsplit(".", 1)[-1]  # the component's class
    if args and args[0].endswith("java") and "org.apache.storm.LocalCluster" in " ".join(args):
        return "jvm"
    if args and args[0].endswith("java") and "storm.home" in " ".join(args):
        return "jvm"
    return None


def service_pids(state: Path) -> dict[str, int]:
    """The local stack's Kafka broker and Redis server, from their pid files under ``state``."""
    pids = {}
    for name, pid_file in (("kafka", "kafka/kafka.pid"), ("redis", "redis/redis.pid")):
        try:
            pids[name] = int((state / pid_file).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            print(f"    profile: no {name} pid in {state / pid_file}; its CPU is left out")
    return pids


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU of a process (or one of its threads) so far; 0 if it is gone."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


def threads_cpu(pid: int) -> dict[int, float]:
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    return {tid: cpu_seconds(pid, tid) for tid in tids}


def thread_names(pid: int, java: bool) -> dict[int, str]:
    """Thread id -> name: ``main``, Java's names from ``jcmd Thread.print``, else the kernel's.

    Python names no native thread, so its threads read as the process's name and their id.
    """
    names = {pid: "main"}
    for tid in threads_cpu(pid):
        try:
            names.setdefault(tid, Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip())
        except OSError:
            continue
    tool = find_tool("jcmd") if java else None
    if tool:
        dump = subprocess.run([tool, str(pid), "Thread.print"], capture_output=True, text=True)
        names.update({int(m["nid"], 16): m["name"] for m in NID.finditer(dump.stdout)})
    return names


# --- samplers ---------------------------------------------------------------------------


def start_py_spy(py_spy: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` on ``pid`` until interrupted; it writes ``out`` when it stops."""
    log = out.with_suffix(".py-spy.log").open("wb")
    command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"]
    command += ["--rate", str(PY_SPY_RATE), "--output", str(out)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def jcmd(pid: int, *command: str) -> bool:
    tool = find_tool("jcmd")
    if tool is None:
        return False
    done = subprocess.run([tool, str(pid), *command], capture_output=True, text=True)
    if done.returncode != 0 or "error" in done.stdout.lower():
        print(f"    profile: jcmd {' '.join(command)} failed: {done.stdout.strip()[-200:]}")
        return False
    return True


def jfr_collapsed(recording: Path, out: Path) -> None:
    """JFR's ``jdk.ExecutionSample`` events as collapsed stacks, root (thread name) first."""
    tool = find_tool("jfr")
    if tool is None:
        return
    printed = subprocess.run(
        [tool, "print", "--json", "--events", "jdk.ExecutionSample", str(recording)],
        capture_output=True,
        text=True,
    )
    if printed.returncode != 0:
        print(f"    profile: jfr print failed: {printed.stderr.strip()[-200:]}")
        return
    stacks: dict[str, int] = {}
    for event in json.loads(printed.stdout)["recording"]["events"]:
        values = event["values"]
        thread = values["sampledThread"]
        frames = [
            f"{f['method']['type']['name']}.{f['method']['name']}"
            for f in reversed(values["stackTrace"]["frames"])
        ]
        frames = [frame.replace("/", ".") for frame in frames]  # JFR: "java/lang/Thread"
        stack = ";".join([f"thread {thread.get('javaName') or thread.get('osName')}", *frames])
        stacks[stack] = stacks.get(stack, 0) + 1
    out.write_text("".join(f"{stack} {count}\n" for stack, count in stacks.items()))


# --- a phase ----------------------------------------------------------------------------


@dataclass
class PhaseProfile:
    """CPU of ``processes`` from ``start`` to ``stop``, with the Python ones and the JVM
    sampled; ``save`` writes it down once the units of work are known."""

    directory: Path
    processes: Mapping[str, int]
    python: list[str]
    jvm: str | None
    started: float = 0.0
    stopped: float = 0.0
    load: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    threads: dict[str, dict[int, float]] = field(default_factory=dict)
    thread_names: dict[str, dict[int, str]] = field(default_factory=dict)
    samplers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    py_spy_cpu: float = 0.0  # the samplers' own, for what the profiling cost the phase

    @property
    def sampled(self) -> list[str]:
        return [*self.python, *([self.jvm] if self.jvm else [])]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        py_spy = find_tool("py-spy")
        if py_spy is None:
            print("    profile: py-spy not found (requirements-dev.txt): CPU only, no stacks")
        else:
            for name in self.python:
                path = self.directory / f"{name}.txt"
                self.samplers.append(start_py_spy(py_spy, self.processes[name], path))
        if self.jvm:
            jvm_pid = self.processes[self.jvm]
            recording = f"filename={self.directory / 'jvm.jfr'}"
            if not jcmd(
                jvm_pid, "JFR.start", f"name={JFR_RECORDING}", "settings=profile", recording
            ):
                print("    profile: no JFR recording (jcmd missing or refused): JVM CPU only")
        self.threads = {name: threads_cpu(self.processes[name]) for name in self.sampled}
        self.load = list(os.getloadavg())
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.processes.items()}
        self.started = time.monotonic()

    def stop(self) -> None:
        """Take the CPU figures and stop the samplers; the processes must still be alive."""
        if self.stopped:
            return
        self.stopped = time.monotonic()
        for name, pid in self.processes.items():
            if Path(f"/proc/{pid}").exists():
                self.cpu[name] = cpu_seconds(pid) - self.cpu[name]
            else:
                print(f"    profile: {name} (pid {pid}) ended during the phase: CPU left out")
                del self.cpu[name]
        self.load += os.getloadavg()
        for name in self.sampled:
            pid, before = self.processes[name], self.threads[name]
            self.threads[name] = {t: s - before.get(t, 0.0) for t, s in threads_cpu(pid).items()}
        self.py_spy_cpu = sum(cpu_seconds(sampler.pid) for sampler in self.samplers)
        for sampler in self.samplers:
            stop_py_spy(sampler)
        for name in self.sampled:
            self.thread_names[name] = thread_names(self.processes[name], java=name == self.jvm)
        if self.jvm:
            jvm_pid = self.processes[self.jvm]
            if jcmd(jvm_pid, "JFR.stop", f"name={JFR_RECORDING}"):
                jfr_collapsed(self.directory / "jvm.jfr", self.directory / "jvm.txt")

    def save(self, units: int, unit: str) -> None:
        threads: dict[str, dict[str, float]] = {}
        for process, by_id in self.threads.items():
            names = self.thread_names[process]
            threads[process] = {f"{names.get(t, 'thread')} ({t})": s for t, s in by_id.items()}
        summary: dict[str, Any] = {
            "seconds": self.stopped - self.started,
            "units": units,
            "unit": unit,
            "load_average_1_5_15_start_end": self.load,
            "cpu_seconds": self.cpu,
            "threads_cpu_seconds": threads,
            "py_spy_cpu_seconds": self.py_spy_cpu,
            "sampled": self.sampled,
        }
        (self.directory / "cpu.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"    profile written to {self.directory} (bench/profile_summary.py to read it)")


def topology_processes(session: int, state: Path) -> tuple[dict[str, int], list[str]]:
    """A ``sparse run``'s processes and the stack's services; the names of the Python ones."""
    components = session_processes(session)
    python = [name for name in components if not name.startswith("jvm")]
    return {**components, **service_pids(state)}, python


@contextmanager
def profiled(
    directory: Path | None,
    processes: Mapping[str, int],
    python: list[str],
    jvm: str | None = None,
) -> Iterator[PhaseProfile | None]:
    """Profile the block when ``directory`` is given (``--profile``); nothing otherwise."""
    if directory is None:
        yield None
        return
    phase = PhaseProfile(directory, processes, python, jvm)
    phase.start()
    try:
        yield phase
    finally:
        phase.stop()
