"""The two ways integration tests make Redis fail, one helper each.

- An unreachable Redis (``unreachable_redis_settings``): nothing listens on the port, so
  every command fails. For code that must ride out, or report, a Redis it cannot reach.
- A Redis that crashes and comes back with its data (``RedisServer.kill`` / ``start``, and
  ``redis_down`` around a block): a redis-server run by ``stack/redis/redis.sh`` is killed
  with SIGKILL and started again by the same script. Its append-only file is synced on
  every write, so whatever it acknowledged before the kill is there after the restart.
  ``stack_redis()`` is the stack's own server; a test that must not disturb other suites
  runs one of its own with ``RedisServer(tmp_path / ..., free_port())``.
- A Redis Cluster one of whose primaries crashes (``LocalRedisCluster``, run by
  ``stack/redis/cluster.sh``): each node is a ``RedisServer`` to kill, empty and start again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from botscore.settings import RedisSettings
from botscore.transport.redis_client import create_redis

from .harness import ROOT, stack_env, stack_redis_db

__all__ = [
    "LocalRedisCluster",
    "RedisClusterNode",
    "RedisServer",
    "free_port",
    "redis_down",
    "stack_redis",
    "unreachable_redis_settings",
]

REDIS_SH = ROOT / "stack" / "redis" / "redis.sh"
CLUSTER_SH = ROOT / "stack" / "redis" / "cluster.sh"
# Short, so that a command to a Redis that is down fails within a test's patience.
SOCKET_TIMEOUT_S = 1.0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unreachable_redis_settings() -> RedisSettings:
    """Settings for a Redis that never answers: nothing listens on their port."""
    return RedisSettings(port=free_port(), socket_timeout_s=SOCKET_TIMEOUT_S)


@dataclass(frozen=True)
class RedisServer:
    """A redis-server as ``stack/redis/redis.sh`` runs it for ``BOTSCORE_STATE=state``
    and ``REDIS_PORT=port``: data, pid file and log under ``state/redis``."""

    state: Path
    port: int

    @property
    def directory(self) -> Path:
        return self.state / "redis"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def settings(self, db: int = 0) -> RedisSettings:
        return RedisSettings(port=self.port, db=db, socket_timeout_s=SOCKET_TIMEOUT_S)

    def client(self, db: int = 0) -> redis.Redis:
        return create_redis(self.settings(db))

    def start(self, timeout_s: float = 10) -> None:
        """Start it through the script; return once it answers a PING."""
        self._script("start")
        client = self.client()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        pytest.fail(
                            f"redis-server on {self.port} did not answer within "
                            f"{timeout_s:.0f} s:\n{self._log_tail()}"
                        )
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Shut it down through the script (nothing to do when it is not running)."""
        self._script("stop")

    def kill(self) -> None:
        """kill -9, as a crash: only what the append-only file holds survives.

        Returns once the process is gone. The pid file goes too, so that a later kill
        or stop can never hit another process that got the same pid.
        """
        try:
            pid = int(self.pidfile.read_text())
        except FileNotFoundError:
            pytest.fail(f"no redis-server to kill: {self.pidfile} does not exist")
        # Debian's redis-server is a link to redis-check-rdb: either name is Redis.
        comm = Path(f"/proc/{pid}/comm")
        if comm.exists() and not comm.read_text().startswith("redis-"):
            pytest.fail(f"{self.pidfile} names pid {pid}, which is not a redis-server")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pytest.fail(f"no redis-server to kill: pid {pid} from {self.pidfile} is gone")
        self.pidfile.unlink()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def lose_data(self) -> None:
        """Delete what a stopped server would load (append-only files, snapshots), so that
        it starts empty, as on a new disk."""
        for path in self.directory.glob("appendonly*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path in self.directory.glob("*.rdb"):
            path.unlink()

    def _script(self, command: str) -> None:
        env = stack_env(BOTSCORE_STATE=str(self.state), REDIS_PORT=str(self.port))
        _run_script(REDIS_SH, command, env, f"port {self.port}")

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _run_script(script: Path, command: str, env: dict[str, str], what: str) -> None:
    done = subprocess.run(
        [str(script), command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        pytest.fail(f"{script.name} {command} failed for {what}:\n{done.stdout}{done.stderr}")


@dataclass(frozen=True)
class RedisClusterNode(RedisServer):
    """One primary of the cluster ``LocalRedisCluster`` runs: killed and emptied alone;
    ``start`` starts it again through ``cluster.sh``, which waits for the cluster to be ok."""

    first_port: int = 0

    @property
    def directory(self) -> Path:
        return self.state / "redis-cluster" / str(self.port)

    def _script(self, command: str) -> None:
        LocalRedisCluster(self.state, self.first_port).script(command)


@dataclass(frozen=True)
class LocalRedisCluster:
    """Three primaries on ``first_port`` and the two ports after it, run by ``cluster.sh``
    with their data under ``state/redis-cluster``."""

    state: Path
    first_port: int

    @property
    def nodes(self) -> list[RedisClusterNode]:
        ports = range(self.first_port, self.first_port + 3)
        return [RedisClusterNode(self.state, port, self.first_port) for port in ports]

    @property
    def addresses(self) -> str:
        """``aggregation.state_cluster_nodes`` for it."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def script(self, command: str) -> None:
        env = stack_env(BOTSCORE_STATE=str(self.state), REDIS_CLUSTER_PORT=str(self.first_port))
        _run_script(CLUSTER_SH, command, env, f"ports {self.first_port}-{self.first_port + 2}")


def stack_redis() -> RedisServer:
    """The stack's redis-server, the one `make up` started through ``redis.sh``: on the port
    the components use (``BOTSCORE_REDIS_PORT``, which the Makefile sets from REDIS_PORT)."""
    state = Path(os.environ.get("BOTSCORE_STATE", ROOT / ".stack"))
    return RedisServer(state, stack_redis_db(0).port)


@contextmanager
def redis_down(server: RedisServer) -> Iterator[None]:
    """Redis crashed for the length of the block: killed with SIGKILL on entry, started
    again through ``redis.sh`` on exit (also when the block fails), answering once it ends."""
    server.kill()
    try:
        yield
    finally:
        server.start()
