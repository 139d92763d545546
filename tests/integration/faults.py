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
  ``stack/redis/cluster.sh``): each node is a ``RedisServer`` to kill, empty and start again,
  or, with replicas, to freeze (SIGSTOP) so that its primary's writes wait on it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from botscore.settings import RedisSettings
from botscore.transport.redis_client import create_redis, create_redis_cluster

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

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Stopped (SIGSTOP) for the length of the block, as a server that hangs: its port
        takes connections and nothing answers. Resumed on exit, unless it was killed."""
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

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
        # Past redis.sh's own bounds: 5 s to listen, 60 more to load a large append-only file.
        [str(script), command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"{script.name} {command} failed for {what}:\n{done.stdout}{done.stderr}")


@dataclass(frozen=True)
class RedisClusterNode(RedisServer):
    """One node of the cluster ``LocalRedisCluster`` runs: killed and emptied alone;
    ``start`` starts it again through ``cluster.sh``, which waits for the cluster to be ok."""

    first_port: int = 0
    replicas: int = 0

    @property
    def directory(self) -> Path:
        return self.state / "redis-cluster" / str(self.port)

    def role(self) -> tuple[str, int | None]:
        """("master", None), or ("slave", its primary's port), as the node says now."""
        plain = self.client()
        try:
            reply = plain.execute_command("ROLE")
        finally:
            plain.close()
        role = reply[0].decode()
        return (role, int(reply[2])) if role == "slave" else (role, None)

    def _script(self, command: str) -> None:
        LocalRedisCluster(self.state, self.first_port, self.replicas).script(command)


@dataclass(frozen=True)
class LocalRedisCluster:
    """Three primaries, each with ``replicas`` replicas, on ``first_port`` and the ports
    after it, run by ``cluster.sh`` with their data under ``state/redis-cluster``."""

    state: Path
    first_port: int
    replicas: int = 0

    @property
    def nodes(self) -> list[RedisClusterNode]:
        """Every node, primaries first as the cluster was created (a failover swaps roles)."""
        ports = range(self.first_port, self.first_port + 3 * (1 + self.replicas))
        return [
            RedisClusterNode(self.state, port, self.first_port, self.replicas) for port in ports
        ]

    @property
    def addresses(self) -> str:
        """``aggregation.state_cluster_nodes`` for it."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @contextmanager
    def running(self) -> Iterator[LocalRedisCluster]:
        """Started for the block (created when new), stopped after it."""
        self.script("start")
        try:
            yield self
        finally:
            self.script("stop")

    @contextmanager
    def empty_client(self) -> Iterator[redis.RedisCluster]:
        """A client of the cluster, every primary emptied and every replica caught up."""
        client = create_redis_cluster(RedisSettings(socket_timeout_s=2.0), self.addresses)
        try:
            client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
            self.wait_replicated()
            yield client
        finally:
            client.close()

    def replica_of(self, primary: RedisClusterNode) -> RedisClusterNode:
        """A node that replicates ``primary`` now."""
        for node in self.nodes:
            if node.role() == ("slave", primary.port):
                return node
        pytest.fail(f"no node replicates 127.0.0.1:{primary.port}")

    def wait_replicated(self, timeout_s: float = 60) -> None:
        """Return once every primary has its ``replicas`` replicas online and caught up (a
        node that rejoined as a replica first copies its primary's data)."""
        deadline = time.monotonic() + timeout_s
        while True:
            behind = [node.port for node in self.nodes if not self._caught_up(node)]
            if not behind:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"nodes {behind} not caught up with their replicas in {timeout_s} s")
            time.sleep(0.2)

    def _caught_up(self, node: RedisClusterNode) -> bool:
        """A primary with its replicas online at its own offset; True for a replica."""
        plain = node.client()
        try:
            info = plain.info("replication")
        except redis.RedisError:
            return False
        finally:
            plain.close()
        if info["role"] != "master":
            return True
        offset = info["master_repl_offset"]
        online = [
            info[f"slave{i}"]
            for i in range(info["connected_slaves"])
            if info[f"slave{i}"]["state"] == "online"
        ]
        return len(online) == self.replicas and all(r["offset"] == offset for r in online)

    def script(self, command: str) -> None:
        env = stack_env(
            BOTSCORE_STATE=str(self.state),
            REDIS_CLUSTER_PORT=str(self.first_port),
            REDIS_CLUSTER_REPLICAS=str(self.replicas),
        )
        last = self.nodes[-1].port
        _run_script(CLUSTER_SH, command, env, f"ports {self.first_port}-{last}")


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
