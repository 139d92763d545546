"""docker-compose.yml is for users with a Docker engine: keep it equal to what `make up` and
`make cluster` run (their scripts, the poms, config.json), and valid for docker-compose."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from botscore.settings import load_project_settings, project_env

# The Storm services of docker-compose.yml and the cluster.sh daemon each one stands for.
STORM_DAEMONS = {"nimbus": "nimbus", "supervisor-1": "supervisor-1", "supervisor-2": "supervisor-2"}
# Where a daemon keeps its files: the state folder for cluster.sh, the image's for compose.
PATH_KEYS = {"storm.local.dir", "storm.log.dir"}
CLUSTER_YAML_MOUNT = "./stack/storm/cluster.yaml:/conf/storm.yaml:ro"


def _yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _compose(root: Path) -> dict[str, Any]:
    return _yaml((root / "docker-compose.yml").read_text())["services"]


def _pom_property(pom: Path, name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom.read_text())
    assert match, f"no <{name}> in {pom}"
    return match[1]


def _script_default(script: Path, variable: str) -> str:
    """The default a script gives an environment variable (``${VARIABLE:-default}``)."""
    match = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", script.read_text())
    assert match, f"no default for {variable} in {script}"
    return match[1]


def _script_conf(root: Path, daemon: str, state: Path) -> dict[str, Any]:
    """The storm.yaml cluster.sh writes for ``daemon`` (STORM_* left at their defaults)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STORM_")}
    out = subprocess.run(
        [str(root / "stack" / "storm" / "cluster.sh"), "conf", daemon],
        env={**environ, "BOTSCORE_STATE": str(state)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(_yaml(out))


def _compose_conf(root: Path, service: dict[str, Any]) -> dict[str, Any]:
    """A Storm service's settings: the mounted storm.yaml, then its ``-c KEY=VALUE`` options,
    whose values Storm reads as JSON when they parse (else as strings)."""
    assert CLUSTER_YAML_MOUNT in service["volumes"]
    conf = dict(_yaml((root / "stack" / "storm" / "cluster.yaml").read_text()))
    command = service["command"]
    for flag, option in zip(command[2::2], command[3::2], strict=True):
        assert flag == "-c", command
        key, value = option.split("=", 1)
        try:
            conf[key] = json.loads(value)
        except json.JSONDecodeError:
            conf[key] = value
    return conf


def test_docker_compose_accepts_the_file(project_root):
    """`docker-compose config` parses and validates the file without a Docker engine, with
    no Datadog key in the environment (the file must not need one to be valid)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose not found on PATH: install Debian's docker-compose package "
            "(stack/system-deps.sh does, as make up and make test run it)"
        )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    result = subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=project_root,
        env=environ,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    resolved = _yaml(result.stdout)["services"]
    assert set(resolved) == set(_compose(project_root))
    assert {"kafka", "redis", "zookeeper", "datadog", *STORM_DAEMONS} <= set(resolved)


def test_compose_services_listen_where_the_project_connects(project_root):
    compose = _compose(project_root)
    settings = load_project_settings(project_root / "config.json", "local", environ={})
    kafka = compose["kafka"]
    host, port = settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert f"{host}:{port}:9092" in kafka["ports"]
    assert kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{host}:{port}"
    assert kafka["environment"]["KAFKA_NUM_PARTITIONS"] == settings.kafka.topic_partitions
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "127.0.0.1:6379:6379" in compose["redis"]["ports"]
    assert all("healthcheck" in service for service in compose.values())


def test_compose_kafka_image_matches_the_local_broker_version(project_root):
    version = _compose(project_root)["kafka"]["image"].split(":")[1]
    assert version == _pom_property(project_root / "stack" / "kafka" / "pom.xml", "kafka.version")


def test_every_image_is_pinned_to_a_version(project_root):
    for name, service in _compose(project_root).items():
        tag = service["image"].rpartition(":")[2]
        assert re.fullmatch(r"\d+(\.\d+)+", tag), f"{name}: {service['image']} is not pinned"


def test_storm_images_are_the_versions_the_scripts_install(project_root):
    """Storm from stack/storm/pom.xml, ZooKeeper the one Storm's lib/ has (install.sh checks),
    and the supervisors' msgpack-core the one lib-worker/ has."""
    pom = project_root / "stack" / "storm" / "pom.xml"
    storm, msgpack = _pom_property(pom, "storm.version"), _pom_property(pom, "msgpack.version")
    compose = _compose(project_root)
    assert compose["zookeeper"]["image"] == f"zookeeper:{_pom_property(pom, 'zookeeper.version')}"
    nimbus = compose["nimbus"]["build"]
    assert nimbus["args"] == {"STORM_VERSION": storm}
    assert compose["nimbus"]["image"].endswith(f":{storm}")
    nimbus_file = (project_root / nimbus["context"] / nimbus["dockerfile"]).read_text()
    assert nimbus_file.count("FROM storm:${STORM_VERSION}") == 2  # its jars, then the image
    dockerfile = project_root / "stack" / "storm" / "supervisor.Dockerfile"
    assert "FROM storm:${STORM_VERSION}" in dockerfile.read_text()
    for name in ("supervisor-1", "supervisor-2"):
        build = compose[name]["build"]
        assert (project_root / build["context"] / build["dockerfile"]) == dockerfile
        assert build["args"] == {"STORM_VERSION": storm, "MSGPACK_VERSION": msgpack}
        assert compose[name]["image"].endswith(f":{storm}")


def test_supervisor_image_gives_workers_the_python_requirements(project_root):
    """Workers run streamparse_run from the supervisor's PATH: the image installs
    requirements.txt into a virtualenv first on PATH, and the build context lets it in."""
    dockerfile = (project_root / "stack" / "storm" / "supervisor.Dockerfile").read_text()
    venv = re.search(r"python3 -m venv (\S+)", dockerfile)
    assert venv, dockerfile
    assert f"{venv[1]}/bin/pip install --no-cache-dir -r " in dockerfile
    assert "COPY requirements.txt " in dockerfile
    assert re.search(rf"^ENV PATH={re.escape(venv[1])}/bin:\$PATH$", dockerfile, re.M)
    ignored = (project_root / ".dockerignore").read_text().split()
    assert ignored[-1] == "!requirements.txt"


@pytest.mark.parametrize("service", sorted(STORM_DAEMONS))
def test_storm_daemons_get_the_settings_cluster_sh_writes(project_root, tmp_path, service):
    """Each Storm service's effective storm.yaml equals cluster.sh's for its daemon (slots,
    Thrift ports, ZooKeeper and Nimbus, worker heap, failover timeouts, blacklist off), but
    for the folders; it runs on the host's network, where 127.0.0.1 means what it says."""
    compose = _compose(project_root)[service]
    script = _script_conf(project_root, STORM_DAEMONS[service], tmp_path)
    assert {k: v for k, v in script.items() if k not in PATH_KEYS} == _compose_conf(
        project_root, compose
    )
    assert compose["command"][:2] == ["storm", service.split("-")[0]]
    assert compose["network_mode"] == "host"
    assert compose["user"] == "storm"
    assert script["blacklist.scheduler.assume.supervisor.bad.based.on.bad.slot"] is False
    # the fast-failover settings are there, shorter than Storm's default (30 s)
    assert script["nimbus.task.timeout.secs"] < 30


def test_supervisors_differ_in_slots_and_thrift_ports(project_root, tmp_path):
    one, two = (_script_conf(project_root, f"supervisor-{n}", tmp_path) for n in (1, 2))
    assert one["supervisor.slots.ports"] == [6700, 6701]
    assert not set(one["supervisor.slots.ports"]) & set(two["supervisor.slots.ports"])
    assert one["supervisor.thrift.port"] != two["supervisor.thrift.port"]
    for n, conf in ((1, one), (2, two)):
        healthcheck = _compose(project_root)[f"supervisor-{n}"]["healthcheck"]["test"]
        assert healthcheck[-1] == f"</dev/tcp/127.0.0.1/{conf['supervisor.thrift.port']}"


def _zoo_cfg(root: Path, state: Path) -> dict[str, str]:
    """The zoo.cfg cluster.sh writes for its ZooKeeper."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STORM_")}
    out = subprocess.run(
        [str(root / "stack" / "storm" / "cluster.sh"), "conf", "zookeeper"],
        env={**environ, "BOTSCORE_STATE": str(state)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_a_lost_supervisor_leaves_zookeeper_before_nimbus_moves_its_workers(project_root, tmp_path):
    """Nimbus's scheduler moves the workers of a supervisor once its ZooKeeper session has
    ended (up to a tick late); that must come before nimbus.task.timeout.secs, or Nimbus
    could put the work back on the dead supervisor's free slot and wait
    nimbus.task.launch.secs there. ZooKeeper must allow the short session and Storm's 20 s."""
    nimbus = _script_conf(project_root, "nimbus", tmp_path)
    assert "storm.zookeeper.session.timeout" not in nimbus  # Storm's 20 s
    zoo = _zoo_cfg(project_root, tmp_path)
    tick_ms = int(zoo["tickTime"])
    assert int(zoo["maxSessionTimeout"]) >= 20_000
    for n in (1, 2):
        session_ms = _script_conf(project_root, f"supervisor-{n}", tmp_path)[
            "storm.zookeeper.session.timeout"
        ]
        assert 2 * tick_ms <= session_ms  # ZooKeeper's shortest session
        assert session_ms + tick_ms < nimbus["nimbus.task.timeout.secs"] * 1000


def test_compose_zookeeper_ticks_as_cluster_sh_s(project_root, tmp_path):
    zoo = _zoo_cfg(project_root, tmp_path)
    environment = _compose(project_root)["zookeeper"]["environment"]
    assert str(environment["ZOO_TICK_TIME"]) == zoo["tickTime"]
    assert str(environment["ZOO_MAX_CLIENT_CNXNS"]) == zoo["maxClientCnxns"]
    assert environment["ZOO_CFG_EXTRA"] == f"maxSessionTimeout={zoo['maxSessionTimeout']}"


def test_nimbus_schedules_with_the_scheduler_both_clusters_build(project_root):
    """cluster.yaml names a class that stack/storm/scheduler/ defines; cluster.sh compiles
    that folder for its Nimbus, nimbus.Dockerfile for the image's, and the build context
    lets it in."""
    shared = _yaml((project_root / "stack" / "storm" / "cluster.yaml").read_text())
    package, _, name = shared["storm.scheduler"].rpartition(".")
    source = project_root / "stack" / "storm" / "scheduler" / package.replace(".", "/")
    assert f"public class {name} implements IScheduler" in (source / f"{name}.java").read_text()
    script = (project_root / "stack" / "storm" / "cluster.sh").read_text()
    assert '"$here"/scheduler/' in script
    dockerfile = (project_root / "stack" / "storm" / "nimbus.Dockerfile").read_text()
    assert "COPY stack/storm/scheduler/ " in dockerfile
    assert "COPY --from=scheduler /botscore-scheduler.jar extlib-daemon/" in dockerfile
    assert "!stack/storm/scheduler/" in (project_root / ".dockerignore").read_text().split()


def test_zookeeper_and_nimbus_are_where_the_cluster_environment_looks(project_root, tmp_path):
    compose = _compose(project_root)
    conf = _script_conf(project_root, "nimbus", tmp_path)
    assert conf["storm.zookeeper.servers"] == ["127.0.0.1"]
    assert f"127.0.0.1:{conf['storm.zookeeper.port']}:2181" in compose["zookeeper"]["ports"]
    nimbus = project_env(project_root / "config.json", "cluster")["nimbus"]
    assert nimbus == f"{conf['nimbus.seeds'][0]}:{conf['nimbus.thrift.port']}"


def test_daemon_heaps_are_cluster_sh_defaults(project_root):
    script = project_root / "stack" / "storm" / "cluster.sh"
    heap_mb = _script_default(script, "STORM_DAEMON_HEAP_MB")
    shared = _yaml((project_root / "stack" / "storm" / "cluster.yaml").read_text())
    assert shared["nimbus.childopts"] == shared["supervisor.childopts"] == f"-Xmx{heap_mb}m"
    zookeeper = _compose(project_root)["zookeeper"]["environment"]
    assert str(zookeeper["ZK_SERVER_HEAP"]) == heap_mb


def test_datadog_agent_takes_dogstatsd_where_components_send(project_root):
    """UDP on the host's loopback at metrics.statsd_host:statsd_port; the API key passed
    through from the environment, never written here."""
    settings = load_project_settings(project_root / "config.json", "cluster", environ={})
    agent = _compose(project_root)["datadog"]
    host, port = settings.metrics.statsd_host, settings.metrics.statsd_port
    assert agent["ports"] == [f"{host}:{port}:8125/udp"]
    assert "DD_API_KEY" in agent["environment"]
    assert agent["environment"]["DD_API_KEY"] is None
    assert agent["environment"]["DD_DOGSTATSD_NON_LOCAL_TRAFFIC"] == "true"
