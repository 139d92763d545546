"""The stack scripts' handling of their daemons' pids: stack/lib.sh's helpers, redis.sh's
stop and status, and cluster.sh's start when it fails. No service is started: the daemons
are stand-ins (sleep, a listening socket), on free ports and in a temporary state folder."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIB = ROOT / "stack" / "lib.sh"
REDIS_SH = ROOT / "stack" / "redis" / "redis.sh"
CLUSTER_SH = ROOT / "stack" / "storm" / "cluster.sh"


def _environ(**overrides: str) -> dict[str, str]:
    """This environment without the scripts' port settings, plus ``overrides``."""
    prefixes = ("STORM_", "REDIS_", "KAFKA_", "BOTSCORE_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**environ, **overrides}


def _lib(
    script: str, *, path: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash after sourcing stack/lib.sh (with PATH set to ``path`` then)."""
    set_path = f"PATH={shlex.quote(path)}\n" if path is not None else ""
    return subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(LIB))}\nlog_name=test\n{set_path}{script}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _listen(port: int) -> socket.socket:
    """Something that accepts connections on ``port`` and never answers."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    return s


def _exited(pid: int, within_s: float = 5) -> bool:
    """Whether ``pid`` is gone or a zombie (its parent may be slow to reap it)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


Titled = Callable[[str], int]


@pytest.fixture
def titled() -> Iterator[Titled]:
    """Starts stand-in daemons: ``titled(title)`` runs a sleep whose command line is
    ``title`` and returns its pid; all are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(title: str) -> int:
        process = subprocess.Popen(["bash", "-c", 'exec -a "$1" sleep 300', "_", title])
        started.append(process)
        deadline = time.monotonic() + 5
        while title not in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode():
            assert time.monotonic() < deadline, f"{title!r} did not start"
            time.sleep(0.01)
        return process.pid

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def zombie() -> Iterator[int]:
    """The pid of a zombie: a child whose parent never reaps it, as an orphaned daemon's
    when PID 1 is not an init (many CI containers)."""
    parent = subprocess.Popen(
        ["bash", "-c", "sleep 0.1 & echo $!; exec sleep 300"], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "no zombie"
        time.sleep(0.05)
    yield pid
    parent.kill()
    parent.wait()


# ---------------------------------------------------------------- lib.sh --


def test_a_zombie_is_gone_and_stop_pid_returns_at_once(zombie: int, tmp_path: Path) -> None:
    (tmp_path / "pid").write_text(f"{zombie}\n")
    started = time.monotonic()
    done = _lib(
        f"pid_gone {zombie} || exit 3\n"
        f"pid_from_file {tmp_path / 'pid'} && exit 4\n"
        f"stop_pid {zombie} 5 thing"
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 3
    assert "SIGKILL" not in done.stderr


def test_stop_pid_gives_up_10_s_after_sigkill_naming_the_pid(titled: Titled) -> None:
    """A process that outlives SIGKILL (stuck in the kernel; here pid_gone never says gone)
    fails the stop: it never loops forever."""
    pid = titled("stuck")
    started = time.monotonic()
    done = _lib(f"pid_gone() {{ return 1; }}\nstop_pid {pid} 0 thing\necho returned", timeout=30)
    assert done.returncode == 1
    assert "returned" not in done.stdout
    assert f"thing (pid {pid}) still alive 10s after SIGKILL" in done.stderr
    assert 10 <= time.monotonic() - started < 20


@pytest.mark.parametrize("with_ps", [True, False], ids=["ps", "no-ps"])
def test_pid_from_file_knows_our_daemon_by_its_command_line(
    titled: Titled, tmp_path: Path, with_ps: bool
) -> None:
    """Without procps the command line comes from /proc: "cannot ask" is not "not ours"."""
    pid = titled(f"java -cp x kafka.Kafka {tmp_path}/server.properties")
    (tmp_path / "pid").write_text(f"{pid}\n")
    path = None
    if not with_ps:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "tr").symlink_to(shutil.which("tr") or "/usr/bin/tr")
        path = str(bin_dir)
    ours = _lib(
        f"pid_from_file {tmp_path}/pid 'kafka.Kafka {tmp_path}/server.properties'", path=path
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == f"{pid}\n"
    recycled = _lib(f"pid_from_file {tmp_path}/pid 'kafka.Kafka /elsewhere'", path=path)
    assert recycled.returncode == 1
    assert recycled.stdout == ""


# --------------------------------------------------------------- redis.sh --


def _redis_sh(command: str, state: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REDIS_SH), command],
        env=_environ(BOTSCORE_STATE=str(state), REDIS_PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_redis_stop_leaves_a_recycled_pid_alone_and_drops_the_pid_file(
    titled: Titled, tmp_path: Path
) -> None:
    """A pid file left by a crash names, later, a process that is not our redis-server."""
    (port,) = _free_ports(1)
    other = titled("sleep 300")
    pid_file = tmp_path / "redis" / "redis.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(f"{other}\n")
    done = _redis_sh("stop", tmp_path, port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "redis: not running\n"
    assert not _exited(other, within_s=0.5)
    assert not pid_file.exists()


def test_redis_status_calls_a_foreign_listener_down(tmp_path: Path) -> None:
    (port,) = _free_ports(1)
    with _listen(port):
        done = _redis_sh("status", tmp_path, port)
    assert done.returncode == 1
    assert done.stdout.startswith(f"redis: down; 127.0.0.1:{port} is in use by another process")


def test_redis_status_gives_up_on_our_redis_when_it_never_answers(
    titled: Titled, tmp_path: Path
) -> None:
    """A stopped or frozen redis-server accepts connections and never answers a PING."""
    (port,) = _free_ports(1)
    pid = titled(f"redis-server 127.0.0.1:{port}")
    pid_file = tmp_path / "redis" / "redis.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(f"{pid}\n")
    started = time.monotonic()
    with _listen(port):
        done = _redis_sh("status", tmp_path, port)
    assert done.returncode == 1
    assert done.stdout == f"redis: redis-server (pid {pid}) does not answer on 127.0.0.1:{port}\n"
    assert time.monotonic() - started < 10


class _LoadingRedis:
    """A stand-in Redis on ``port`` that answers every PING with LOADING for ``loading_s``
    (``None``: for ever), as Redis does while it replays its append-only file, then PONG."""

    def __init__(self, port: int, loading_s: float | None) -> None:
        self.until = None if loading_s is None else time.monotonic() + loading_s
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> _LoadingRedis:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join()
        self.server.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)  # one PING: redis-cli sends nothing else
                loading = self.until is None or time.monotonic() < self.until
                reply = (
                    b"-LOADING Redis is loading the dataset in memory\r\n"
                    if loading
                    else b"+PONG\r\n"
                )
                conn.sendall(reply)


def test_a_start_waits_while_redis_replays_its_append_only_file() -> None:
    """Past the 5 s a start gives Redis to listen: run 95 gave up on one loading for 8 s."""
    (port,) = _free_ports(1)
    started = time.monotonic()
    with _LoadingRedis(port, loading_s=7):
        done = _lib(f"await_redis {port}")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 7


def test_a_load_past_redis_load_timeout_s_fails_the_start() -> None:
    (port,) = _free_ports(1)
    started = time.monotonic()
    with _LoadingRedis(port, loading_s=None):
        done = _lib(f"REDIS_LOAD_TIMEOUT_S=2 await_redis {port}")
    assert done.returncode == 1
    assert 2 <= time.monotonic() - started < 10


def test_a_listener_that_never_answers_fails_the_start_in_5_s() -> None:
    (port,) = _free_ports(1)
    started = time.monotonic()
    with _listen(port):
        done = _lib(f"await_redis {port}")
    assert done.returncode == 1
    assert 5 <= time.monotonic() - started < 15


# ------------------------------------------------------------- cluster.sh --

FAKE_JAVA = """#!/usr/bin/env bash
# Stands for java: a daemon that starts and never listens.
if [[ $1 == -version ]]; then echo 'openjdk version "17.0.9" 2023-10-17' >&2; exit 0; fi
echo "$$ $*" >>"$LAUNCHES"
exec sleep 300
"""


@pytest.fixture
def cluster_env(tmp_path: Path) -> dict[str, str]:
    """cluster.sh's environment: its own free ports, a state folder, an empty Storm
    installation and a java that launches stand-ins (their pids and arguments go to
    $LAUNCHES)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").write_text(FAKE_JAVA)
    (bin_dir / "javac").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "streamparse_run").write_text("#!/bin/sh\nexit 0\n")
    for name in ("java", "javac", "streamparse_run"):
        (bin_dir / name).chmod(0o755)
    storm_home = tmp_path / "storm"
    for name in ("lib", "lib-worker", "log4j2"):
        (storm_home / name).mkdir(parents=True)
    zk, nimbus, thrift_1, thrift_2, *slots = _free_ports(8)
    return _environ(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        LAUNCHES=str(tmp_path / "launches"),
        BOTSCORE_STATE=str(tmp_path / "state"),
        STORM_HOME=str(storm_home),
        STORM_ZK_PORT=str(zk),
        STORM_NIMBUS_PORT=str(nimbus),
        STORM_SUPERVISOR_PORTS=f"{thrift_1},{thrift_2}",
        STORM_SLOTS_1=f"{slots[0]},{slots[1]}",
        STORM_SLOTS_2=f"{slots[2]},{slots[3]}",
        STORM_START_TIMEOUT="1",
    )


def _cluster_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SH), "start"], env=env, capture_output=True, text=True, timeout=60
    )


def _launches(env: dict[str, str]) -> dict[int, str]:
    """The stand-in daemons cluster.sh launched: pid -> arguments."""
    path = Path(env["LAUNCHES"])
    if not path.exists():
        return {}
    return {
        int(pid): args
        for pid, _, args in (ln.partition(" ") for ln in path.read_text().splitlines())
    }


def test_a_taken_slot_port_fails_the_start_before_anything_starts(
    cluster_env: dict[str, str],
) -> None:
    slot = int(cluster_env["STORM_SLOTS_2"].split(",")[1])
    with _listen(slot):
        done = _cluster_start(cluster_env)
    assert done.returncode == 1
    assert f"127.0.0.1:{slot} is already in use" in done.stderr
    assert "set STORM_SLOTS_2" in done.stderr
    assert _launches(cluster_env) == {}
    assert not list(Path(cluster_env["BOTSCORE_STATE"]).glob("cluster/*/pid"))


def test_a_failed_start_stops_the_daemons_it_started(cluster_env: dict[str, str]) -> None:
    done = _cluster_start(cluster_env)
    assert done.returncode == 1
    assert "ZooKeeper not up after 1s" in done.stderr
    assert "zookeeper stopped: this start failed" in done.stderr
    (launched,) = _launches(cluster_env)
    assert _exited(launched)
    assert not list(Path(cluster_env["BOTSCORE_STATE"]).glob("cluster/*/pid"))


def test_a_failed_start_leaves_the_daemons_that_ran_before_it(
    cluster_env: dict[str, str], titled: Titled
) -> None:
    """ZooKeeper runs (its port taken by itself): the start launches Nimbus, which never
    leads, and stops Nimbus only."""
    cluster = Path(cluster_env["BOTSCORE_STATE"]) / "cluster"
    zookeeper = titled(f"java -Dstorm.home={cluster}/zookeeper/home zookeeper")
    (cluster / "zookeeper").mkdir(parents=True)
    (cluster / "zookeeper" / "pid").write_text(f"{zookeeper}\n")
    with _listen(int(cluster_env["STORM_ZK_PORT"])):
        done = _cluster_start(cluster_env)
    assert done.returncode == 1
    assert f"zookeeper already running (pid {zookeeper})" in done.stdout
    assert "Nimbus does not lead after 1s" in done.stderr
    assert "nimbus stopped: this start failed" in done.stderr
    ((launched, args),) = _launches(cluster_env).items()
    assert f"-Dstorm.home={cluster}/nimbus/home" in args
    assert _exited(launched)
    assert not (cluster / "nimbus" / "pid").exists()
    assert not _exited(zookeeper, within_s=0.5)
    assert (cluster / "zookeeper" / "pid").read_text() == f"{zookeeper}\n"
