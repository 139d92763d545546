"""Least privilege against the real broker and Redis: one principal per role, only its job.

`botscore access`, run as an operator runs it (the admin being the local broker's super
user and Redis's default user), gives each role of this run its SCRAM user, its Kafka ACLs
and its Redis ACL user, passwords only from the environment. Then each role's own clients,
over SASL_SSL, must reach exactly what the table below says (written by hand from what
each stage does, not from the plan), each role's Redis user only its keys; and the whole
loop (both topologies, the enforcer, the simulated edge) runs with every process
authenticating as its own role, from one environment that holds every role's secrets, as
a Storm supervisor's would.

The local broker denies what no ACL grants (``allow.everyone.if.no.acl.found=false``), as
a production broker does: the loop running shows the plan grants every role all it needs,
and a topic and a group no plan names are closed to every role.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from google.protobuf import json_format
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
)
from kafka.errors import (
    AuthorizationError,
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from botscore.access.redis_users import persist_users
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.enforcement.decisions import DecisionWriter
from botscore.enforcement.edge import EdgeDecisions
from botscore.model.releases import ReleaseStore
from botscore.settings import KafkaSettings, Settings, env_var
from botscore.simulator.run import simulate
from botscore.simulator.spec import SimulationSpec
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.transport.redis_client import create_redis
from botscore.transport.redis_generation import GenerationKey
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision, Role
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef

from .aggregation_stream import recorded_logs
from .faults import RedisServer, free_port
from .harness import (
    BOOTSTRAP,
    ROOT,
    delete_topics,
    fresh_topics,
    new_run_id,
    read_topic,
    run_topics,
    scoring_group,
    sparse_run,
    stack_env,
    stack_redis_db,
    stack_script,
    topology_env,
    wait_until_reading,
)
from .stream import produce

pytestmark = [pytest.mark.integration, pytest.mark.access]

REDIS_DB = 14  # the stack's Redis, a database of this module's own
_HOST = BOOTSTRAP.split(",")[0].rsplit(":", 1)[0]
SASL_SSL = f"{_HOST}:{os.environ.get('KAFKA_SASL_SSL_PORT', '9096')}"
MTLS = f"{_HOST}:{os.environ.get('KAFKA_MTLS_PORT', '9097')}"  # a client certificate required
ROLES = [role for role in Role if role is not Role.ADMIN]
# How Kafka's and Redis's refusals read in a component's log.
REFUSED = r".*(?:AuthorizationFailed|NOPERM|NoPermission|no permissions|can't run this command).*"

# What each stage does, by hand: the topics it writes and reads and whose group it uses.
WRITES = {
    Role.EDGE: {"web_logs"},
    Role.AGGREGATION: {"features", "dead_letters"},
    Role.SCORING: {"scores", "shadow_scores", "dead_letters"},
    Role.ENFORCER: {"dead_letters"},
    Role.MODELS: set(),
}
READS = {
    Role.EDGE: set(),
    Role.AGGREGATION: {"web_logs"},
    Role.SCORING: {"features"},
    Role.ENFORCER: {"scores"},
    Role.MODELS: {"scores", "shadow_scores"},
}
GROUPS = {Role.AGGREGATION, Role.SCORING, Role.ENFORCER}  # each uses its own group only


@dataclass
class RolesRun:
    topics: dict[str, str]  # web_logs, features, ..., dead_letters, unplanned -> name
    groups: dict[Role, str]
    unplanned_group: str
    users: dict[Role, str]
    env: dict[str, str]  # what every process of the run gets, every role's secrets included
    kafka: KafkaSettings  # the run's topics over plaintext (the local super user)
    applied: str  # what the first `botscore access` printed

    def role_settings(self, role: Role) -> Settings:
        """Settings as a process of ``role`` reads them from ``env``."""
        return Settings.from_options({}, environ=self.env, role=role)


def _access(env: dict[str, str], *args: str, status: int = 0, stream: str = "stdout") -> str:
    done = subprocess.run(
        ["bin/botscore", "access", *args],
        cwd=ROOT,
        env=stack_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, (
        f"botscore access exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout if stream == "stdout" else done.stderr


@pytest.fixture(scope="module")
def roles_run(kafka_settings: KafkaSettings) -> Iterator[RolesRun]:
    run = new_run_id()
    web_logs, unplanned = f"it-lp-web-logs-{run}", f"it-lp-unplanned-{run}"
    kafka = fresh_topics(kafka_settings, prefix="it-lp", run=run, also=(web_logs, unplanned))
    topics = {
        "web_logs": web_logs,
        "features": kafka.features_topic,
        "scores": kafka.scores_topic,
        "shadow_scores": kafka.shadow_scores_topic,
        "dead_letters": kafka.dead_letter_topic,
        "unplanned": unplanned,  # no stage's: no role may touch it
    }
    groups = {
        Role.AGGREGATION: f"it-lp-agg-{run}",
        Role.SCORING: scoring_group(kafka),
        Role.ENFORCER: f"it-lp-edge-{run}",
    }
    unplanned_group = f"it-lp-unplanned-{run}"  # no stage's: no role may use it
    template = f"it-lp-{run}-{{role}}"
    cafile = stack_script(ROOT / "stack/kafka/kafka.sh", "tls-ca")
    env = {
        "BOTSCORE_KAFKA_BOOTSTRAP_SERVERS": SASL_SSL,
        "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "BOTSCORE_KAFKA_SSL_CAFILE": cafile,
        "BOTSCORE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "BOTSCORE_KAFKA_SASL_USERNAME": template,
        "BOTSCORE_REDIS_USERNAME": template,
        "BOTSCORE_REDIS_DB": str(REDIS_DB),
        # The admin: the local broker's super user on its plaintext listener, Redis's
        # default user. Overrides for one role only, as an operator would give them.
        env_var("kafka", "bootstrap_servers", Role.ADMIN): BOOTSTRAP,
        env_var("kafka", "security_protocol", Role.ADMIN): "PLAINTEXT",
        env_var("redis", "username", Role.ADMIN): "",
        "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": web_logs,
        "BOTSCORE_KAFKA_FEATURES_TOPIC": kafka.features_topic,
        "BOTSCORE_KAFKA_SCORES_TOPIC": kafka.scores_topic,
        "BOTSCORE_KAFKA_SHADOW_SCORES_TOPIC": kafka.shadow_scores_topic,
        "BOTSCORE_KAFKA_DEAD_LETTER_TOPIC": kafka.dead_letter_topic,
        "BOTSCORE_AGGREGATION_CONSUMER_GROUP": groups[Role.AGGREGATION],
        "BOTSCORE_SCORING_CONSUMER_GROUP": groups[Role.SCORING],
        "BOTSCORE_ENFORCEMENT_CONSUMER_GROUP": groups[Role.ENFORCER],
    }
    for role in ROLES:
        env[env_var("kafka", "sasl_password", role)] = secrets.token_hex(16)
        env[env_var("redis", "password", role)] = secrets.token_hex(16)
    users = {role: template.replace("{role}", role) for role in ROLES}
    admin_redis = create_redis(stack_redis_db(REDIS_DB))
    try:
        admin_redis.flushdb()
        applied = _access(env)
        yield RolesRun(topics, groups, unplanned_group, users, env, kafka, applied)
    finally:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP.split(","))
        try:
            admin.delete_acls([_every_acl_of(user) for user in users.values()])
            admin.alter_user_scram_credentials(
                [
                    UserScramCredentialDeletion(u, ScramMechanism.SCRAM_SHA_512)
                    for u in users.values()
                ]
            )
        finally:
            admin.close()
        admin_redis.execute_command("ACL", "DELUSER", *users.values())
        persist_users(admin_redis)  # `botscore access` saved them: gone after a restart too
        admin_redis.flushdb()
        admin_redis.close()
        delete_topics(kafka_settings, [web_logs, unplanned, *run_topics(kafka)])


def _every_acl_of(user: str) -> ACLFilter:
    return ACLFilter(
        f"User:{user}",
        None,
        ACLOperation.ANY,
        ACLPermissionType.ANY,
        ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )


# ------------------------------------------------------------------ the command --


def test_access_applies_the_plan_once_and_takes_back_what_it_did_not_plan(roles_run: RolesRun):
    applied = roles_run.applied
    # 15 grants: edge 1, aggregation 4, scoring 5, enforcer 3, models 2; and for each of the
    # 5 users 5 denials of administering (the cluster; creating, deleting, altering topics).
    assert len(re.findall(r"^added ACL .*(?<!\(denied\))$", applied, re.M)) == 15, applied
    assert len(re.findall(r"^added ACL .*\(denied\)$", applied, re.M)) == 25, applied
    for role, user in roles_run.users.items():
        assert f"created SCRAM user {user}" in applied
        assert f"redis {role} (user {user}): set" in applied
    for secret in (v for k, v in roles_run.env.items() if "PASSWORD" in k):
        assert secret not in applied

    checked = _access(roles_run.env, "--check")
    assert "kafka: as planned" in checked, checked
    assert all(
        f"redis {role} (user {user}): as planned" in checked
        for role, user in roles_run.users.items()
    )
    again = _access(roles_run.env)
    assert "kafka: nothing to change" in again and "added ACL" not in again
    assert all(
        f"redis {role} (user {user}): unchanged" in again for role, user in roles_run.users.items()
    )

    # A role cannot run it in the admin's place, and hears why.
    as_scoring = {
        **roles_run.env,
        env_var("kafka", "bootstrap_servers", Role.ADMIN): SASL_SSL,
        env_var("kafka", "security_protocol", Role.ADMIN): "SASL_SSL",
        env_var("kafka", "sasl_username", Role.ADMIN): roles_run.users[Role.SCORING],
        env_var("kafka", "sasl_password", Role.ADMIN): roles_run.env[
            env_var("kafka", "sasl_password", Role.SCORING)
        ],
    }
    refused = _access(as_scoring, "--only", "kafka", status=1, stream="stderr")
    assert f"does not let User:{roles_run.users[Role.SCORING]} manage ACLs" in refused, refused

    # An operator's hand-made grant to a planned principal is taken back.
    stray = ACL(
        f"User:{roles_run.users[Role.SCORING]}",
        "*",
        ACLOperation.READ,
        ACLPermissionType.ALLOW,
        ResourcePattern(ResourceType.TOPIC, roles_run.topics["web_logs"]),
    )
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP.split(","))
    try:
        assert not admin.create_acls([stray])["failed"]
    finally:
        admin.close()
    # So is a Redis user widened by hand.
    edge = create_redis(stack_redis_db(REDIS_DB))
    edge.execute_command("ACL", "SETUSER", roles_run.users[Role.EDGE], "~*", "+set")
    edge.close()
    scoring, web_logs = roles_run.users[Role.SCORING], roles_run.topics["web_logs"]
    drift = _access(roles_run.env, "--check", status=1)
    assert f"unplanned ACL User:{scoring} READ topic {web_logs}" in drift, drift
    assert re.search(rf"redis edge \(user {roles_run.users[Role.EDGE]}\): keys are .*~\*", drift), (
        drift
    )
    fixed = _access(roles_run.env)
    assert f"removed ACL User:{scoring} READ topic {web_logs}" in fixed, fixed
    assert "added ACL" not in fixed
    assert f"redis edge (user {roles_run.users[Role.EDGE]}): set" in fixed
    _access(roles_run.env, "--check")


# ------------------------------------------------------------------ Kafka --


def _seed(roles_run: RolesRun) -> None:
    """One record on partition 0 of every topic, written by the super user."""
    producer = create_producer(roles_run.kafka, client_id="it-lp-seed")
    try:
        for topic in roles_run.topics.values():
            producer.send(topic, key=b"seed", value=b"seed", partition=0).get(timeout=30)
    finally:
        producer.close()


def _can_write(settings: KafkaSettings, topic: str) -> bool:
    producer = create_producer(settings, client_id="it-lp-writer", max_block_ms=10_000)
    try:
        producer.send(topic, key=b"probe", value=b"probe", partition=0).get(timeout=30)
        return True
    except TopicAuthorizationFailedError:
        return False
    except KafkaError as exc:
        # A user allowed to write no topic gets no producer id: the cluster refuses it.
        if "ClusterAuthorizationFailed" in str(exc):
            return False
        raise
    finally:
        producer.close()


def _can_read(settings: KafkaSettings, topic: str) -> bool:
    consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    try:
        # Without DESCRIBE the fetcher never asks and only logs: ask for the offsets first.
        consumer.end_offsets([partition])
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if consumer.poll(timeout_ms=500):
                return True
        raise AssertionError(f"neither a record nor a refusal from {topic} in 30 s")
    except TopicAuthorizationFailedError:
        return False
    finally:
        consumer.close()


def _can_use_group(settings: KafkaSettings, group: str, topic: str) -> bool:
    consumer = KafkaConsumer(
        **connection_config(settings), group_id=group, enable_auto_commit=False
    )
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)})
        return True
    except GroupAuthorizationFailedError:
        return False
    except TopicAuthorizationFailedError:
        return True  # the broker checks the group first: it let this one in
    finally:
        consumer.close()


def _administered(settings: KafkaSettings, roles_run: RolesRun) -> list[str]:
    """What of an administrator's work the client of ``settings`` managed to do."""
    done = []
    admin = KafkaAdminClient(**connection_config(settings))
    principal = f"User:{settings.sasl_username}"
    web_logs = ResourcePattern(ResourceType.TOPIC, roles_run.topics["web_logs"])
    # Each returns normally only if the broker did it (create_acls reports, the others raise).
    attempts = {
        "created a topic": lambda: admin.create_topics(
            [NewTopic(f"it-lp-made-by-{settings.sasl_username}", 1, 1)]
        ),
        "granted itself READ on web logs": lambda: _created(
            admin.create_acls(
                [ACL(principal, "*", ACLOperation.READ, ACLPermissionType.ALLOW, web_logs)]
            )
        ),
        "deleted the features topic": lambda: admin.delete_topics([roles_run.topics["features"]]),
    }
    try:
        for what, attempt in attempts.items():
            try:
                attempt()
            except AuthorizationError:
                continue
            except KafkaError as exc:  # not refused: it got as far as the request itself
                what += f" (or tried: {type(exc).__name__})"
            done.append(what)
    finally:
        admin.close()
    return done


def _created(answer: dict) -> None:
    """``create_acls``' answer as the other calls give theirs: raise what it refused."""
    if answer["failed"]:
        raise answer["failed"][0]()


def _wrong_access(roles_run: RolesRun) -> list[str]:
    """Each role's Kafka access against the table: what it could do but should not, or
    should but could not."""
    _seed(roles_run)
    wrong = []
    for role in ROLES:
        settings = roles_run.role_settings(role).kafka
        for key, topic in roles_run.topics.items():
            for action, check, expected in (
                ("write", _can_write, key in WRITES[role]),
                ("read", _can_read, key in READS[role]),
            ):
                if check(settings, topic) != expected:
                    wrong.append(f"{role} {'could not' if expected else 'could'} {action} {key}")
        # Committing needs the topic too: one the role reads, else one it cannot read anyway.
        topic = roles_run.topics[min(READS[role], default="web_logs")]
        for owner, group in roles_run.groups.items():
            if _can_use_group(settings, group, topic) != (owner == role):
                wrong.append(
                    f"{role} {'could not' if owner == role else 'could'} use {owner}'s group"
                )
        if _can_use_group(settings, roles_run.unplanned_group, topic):
            wrong.append(f"{role} could use a group no plan names")
    # Last: a role allowed to delete a topic would spoil the checks above.
    for role in ROLES:
        settings = roles_run.role_settings(role).kafka
        wrong += [f"{role} {what}" for what in _administered(settings, roles_run)]
    return wrong


def test_each_role_reaches_only_its_own_topics_and_group(roles_run: RolesRun):
    for role in ROLES:
        assert roles_run.role_settings(role).kafka.sasl_username == roles_run.users[role]
    wrong = _wrong_access(roles_run)
    assert not wrong, wrong


@pytest.fixture(scope="module")
def cert_run(roles_run: RolesRun) -> Iterator[RolesRun]:
    """The same run with each role known by a client certificate of its own instead of
    SCRAM: ``kafka.sh client-cert`` signs one per role (CN it-lpc-<run>-<role>, so the
    broker's principal is User:<that>), every process gets one environment naming them
    with ``{role}``, and `botscore access` grants those principals the same plan."""
    run = new_run_id()
    users = {role: f"it-lpc-{run}-{role}" for role in ROLES}
    kafka_sh = ROOT / "stack/kafka/kafka.sh"
    folders = {
        role: Path(stack_script(kafka_sh, "client-cert", args=(user,)))
        for role, user in users.items()
    }
    template = str(folders[Role.EDGE]).replace(users[Role.EDGE], f"it-lpc-{run}-{{role}}")
    sasl = ("sasl_username", "sasl_mechanism", "sasl_password")
    env = {
        k: v
        for k, v in roles_run.env.items()
        if not any(k.startswith(env_var("kafka", name)) for name in sasl)
    }
    env.update(
        {
            "BOTSCORE_KAFKA_BOOTSTRAP_SERVERS": MTLS,
            "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
            "BOTSCORE_KAFKA_SSL_CERTFILE": f"{template}/client.pem",
            "BOTSCORE_KAFKA_SSL_KEYFILE": f"{template}/client-key.pem",
        }
    )
    for role, folder in folders.items():
        password = (folder / "client-key.password").read_text().strip()
        env[env_var("kafka", "ssl_password", role)] = password
    cert = replace(roles_run, users=users, env=env)
    try:
        cert.applied = _access(env, "--only", "kafka")
        yield cert
    finally:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP.split(","))
        try:
            admin.delete_acls([_every_acl_of(user) for user in users.values()])
        finally:
            admin.close()
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def test_roles_known_by_their_certificates_reach_only_their_own(cert_run: RolesRun):
    for role in ROLES:
        assert f"kafka {role} (User:{cert_run.users[role]}): " in cert_run.applied
    assert "SCRAM" not in cert_run.applied  # a certificate needs no user on the broker
    assert "kafka: as planned" in _access(cert_run.env, "--only", "kafka", "--check")
    wrong = _wrong_access(cert_run)
    assert not wrong, wrong


def _go_edge(
    edge: Path, env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """botscore-edge with ``env`` (the brokers, TLS and SASL from botscore's variables)."""
    return subprocess.run(
        [str(edge), *args],
        env=stack_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _go_edge_and_logs(seed: int, count: int) -> tuple[Path, list[WebLog], str]:
    """botscore-edge (built for this checkout), ``count`` WebLogs and their JSON lines."""
    edge = Path(stack_script(ROOT / "stack/contract.sh", "edge"))
    logs = recorded_logs(users=30, rate=10, duration_s=30, seed=seed)[:count]
    return edge, logs, "".join(json_format.MessageToJson(log, indent=None) + "\n" for log in logs)


def test_the_go_edge_client_connects_as_its_role_and_reaches_only_its_topics(
    roles_run: RolesRun,
):
    """An edge in Go runs as its own principal from the same environment as the Python
    processes (SASL_SSL, SCRAM-SHA-512, ``{role}`` in the user name, each role's password):
    the edge writes web logs and nothing else, the enforcer reads scores, and a wrong
    password or another role's topic is refused with its cause."""
    edge, logs, lines = _go_edge_and_logs(seed=62, count=40)
    env = roles_run.env
    web_logs, scores = roles_run.topics["web_logs"], roles_run.topics["scores"]

    sent = _go_edge(edge, env, "send", "-topic", web_logs, stdin=lines)
    assert sent.returncode == 0, sent.stderr
    placed = {(p["partition"], p["offset"]) for p in map(json.loads, sent.stdout.splitlines())}
    landed = {(r.partition, r.offset): r.value for r in read_topic(roles_run.kafka, web_logs)}
    assert len(placed) == len(logs)
    assert sorted(landed[place] for place in placed) == sorted(
        log.SerializeToString() for log in logs
    )

    forbidden = _go_edge(edge, env, "send", "-topic", scores, stdin=lines)
    assert forbidden.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in forbidden.stderr

    wrong = {**env, env_var("kafka", "sasl_password", Role.EDGE): "not-the-password"}
    refused = _go_edge(edge, wrong, "send", "-topic", web_logs, stdin=lines)
    assert refused.returncode != 0 and "SASL_AUTHENTICATION_FAILED" in refused.stderr

    at = 1_700_000_000_000
    score = ScoreRecord("u-go", 0.97, Decision.BLOCK, "baseline", "1", at, at, SourceRef("f", 0, 0))
    produce(roles_run.kafka, [(b"u-go", encode_threat_score(score))], scores)
    # Other tests of the module leave records there too (a seed, probes): read them all.
    count = str(len(read_topic(roles_run.kafka, scores)))
    read = _go_edge(edge, env, "scores", "-topic", scores, "-count", count, "-timeout", "60s")
    assert read.returncode == 0, read.stderr
    read_scores = [json.loads(line).get("score", {}) for line in read.stdout.splitlines()]
    assert [s.get("userId") for s in read_scores].count("u-go") == 1
    as_edge = _go_edge(
        edge, env, "scores", "-role", "edge", "-topic", scores, "-count", "1", "-timeout", "10s"
    )
    assert as_edge.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in as_edge.stderr

    # Redis: the enforcer's block, read as the edge's user; a wrong password is refused.
    enforcer = roles_run.role_settings(Role.ENFORCER)
    writer = DecisionWriter(_as(roles_run, Role.ENFORCER), enforcer.enforcement)
    writer.read_generation()
    now = int(time.time() * 1000)
    block = ScoreRecord("u-go", 0.99, "block", "m", "1", now, now, SourceRef("t", 0, 1))
    writer.write([block], now)
    decided = _go_edge(edge, env, "decisions", stdin="u-go\n")
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout)["decision"] == "block"
    wrong = {**env, env_var("redis", "password", Role.EDGE): "not-the-password"}
    refused = _go_edge(edge, wrong, "decisions", stdin="u-go\n")
    assert refused.returncode != 0 and "WRONGPASS" in refused.stderr


def test_the_go_edge_client_connects_by_its_roles_certificate(cert_run: RolesRun):
    """botscore-edge sends the role's client certificate, its key opened with the role's
    password (``{role}`` in the paths): the edge writes web logs and is refused scores, the
    enforcer reads scores, and a key it cannot open is refused naming the variable."""
    edge, logs, lines = _go_edge_and_logs(seed=63, count=10)
    env = cert_run.env
    web_logs, scores = cert_run.topics["web_logs"], cert_run.topics["scores"]

    sent = _go_edge(edge, env, "send", "-topic", web_logs, stdin=lines)
    assert sent.returncode == 0, sent.stderr
    assert len(sent.stdout.splitlines()) == len(logs)
    forbidden = _go_edge(edge, env, "send", "-topic", scores, stdin=lines)
    assert forbidden.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in forbidden.stderr
    count = str(len(read_topic(cert_run.kafka, scores)))
    read = _go_edge(edge, env, "scores", "-topic", scores, "-count", count, "-timeout", "60s")
    assert read.returncode == 0 and len(read.stdout.splitlines()) == int(count), read.stderr

    wrong = {**env, env_var("kafka", "ssl_password", Role.EDGE): "not-the-password"}
    refused = _go_edge(edge, wrong, "send", "-topic", web_logs, stdin=lines)
    assert refused.returncode != 0
    assert "cannot be opened with BOTSCORE_KAFKA_SSL_PASSWORD__EDGE" in refused.stderr


# ------------------------------------------------------------------ Redis --


def _as(roles_run: RolesRun, role: Role) -> redis.Redis:
    return create_redis(roles_run.role_settings(role).redis)


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_each_role_reaches_only_its_own_redis_keys(roles_run: RolesRun):
    edge, aggregation, scoring, enforcer, models = (_as(roles_run, r) for r in ROLES)
    settings = roles_run.role_settings(Role.ENFORCER)
    # The enforcer applies a score as it always does: a block for u1.
    writer = DecisionWriter(enforcer, settings.enforcement)
    writer.read_generation()
    now = int(time.time() * 1000)
    score = ScoreRecord("u1", 0.99, "block", "m", "1", now, now, SourceRef("t", 0, 0))
    writer.write([score], now)
    # The edge reads it (it would read "allow" had it been refused); it can change nothing.
    assert EdgeDecisions(edge, 0).decision_for("u1") == Decision.BLOCK
    assert _refused(lambda: edge.set("bs:edge:decision:u1", "allow"))
    assert _refused(lambda: edge.get("bs:agg:u1"))
    # The feature stage runs its scripts on its own keys only.
    assert RedisFeatureStore(aggregation, ttl_s=600).read_generation()
    assert _refused(lambda: GenerationKey(aggregation, "bs:edge:generation").read())
    assert _refused(lambda: RedisFeatureStore(enforcer, ttl_s=600).read_generation())
    # Models: the data scientists' user publishes; classifiers only read.
    assert ReleaseStore(models).stop_shadow() is None
    assert ReleaseStore(scoring).slots()
    assert _refused(lambda: ReleaseStore(scoring).stop_shadow())
    assert _refused(lambda: models.get("bs:edge:decision:u1"))
    # No role empties Redis, lists its keys or changes its scripts.
    for client in (edge, aggregation, scoring, enforcer, models):
        assert _refused(client.flushdb)
        assert _refused(lambda c=client: c.keys("*"))
        assert _refused(lambda c=client: c.execute_command("FUNCTION", "FLUSH"))


def test_redis_users_outlive_a_crash_of_redis(roles_run: RolesRun, tmp_path: Path):
    """Users set by ACL SETUSER live in memory: `botscore access` saves them."""
    server = RedisServer(tmp_path / "own-redis", free_port())
    server.start()
    try:
        env = {**roles_run.env, "BOTSCORE_REDIS_PORT": str(server.port), "BOTSCORE_REDIS_DB": "0"}
        applied = _access(env, "--only", "redis")
        assert "redis users saved to its ACL file (ACL SAVE)" in applied, applied
        server.kill()
        server.start()
        scoring = create_redis(Settings.from_options({}, environ=env, role=Role.SCORING).redis)
        assert scoring.ping()
        assert _refused(lambda: scoring.set("botscore:models:live", "m/1"))
        scoring.close()
    finally:
        server.stop()


# ------------------------------------------------------------------ the loop --


def test_the_loop_runs_with_every_process_as_its_own_role(
    roles_run: RolesRun, storm_on_path, tmp_path: Path, report_figure
):
    spec = SimulationSpec(users=400, bot_share=0.3, rate=40, duration_s=900, seed=61, speedup=20)
    skew_ms = str(spec.clock_lead_ms + 60_000)
    env = {
        **roles_run.env,
        "BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": skew_ms,
        "BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS": skew_ms,
    }
    kafka = roles_run.role_settings(Role.SCORING).kafka
    given = topology_env(kafka)  # sparse_run points the topologies at these itself
    assert all(env[key] == value for key, value in given.items())
    topology = {key: value for key, value in env.items() if key not in given}
    logs = {name: tmp_path / f"{name}.log" for name in ("aggregation", "scoring", "enforce")}
    with sparse_run(kafka, logs["aggregation"], topology="aggregation", **topology) as aggregation:
        wait_until_reading(aggregation, logs["aggregation"])
        with sparse_run(kafka, logs["scoring"], topology="scoring", **topology) as scoring:
            wait_until_reading(scoring, logs["scoring"])
            with logs["enforce"].open("wb") as out:
                enforcer = subprocess.Popen(
                    ["botscore", "enforce"],
                    cwd=ROOT,
                    env=stack_env(**env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                edge = Settings.from_options({}, environ=env, role=Role.EDGE)
                assert edge.kafka.sasl_username == roles_run.users[Role.EDGE]
                stats = simulate(
                    edge,
                    spec,
                    tmp_path / "labels.csv",
                    edge=EdgeDecisions(create_redis(edge.redis), 1000),
                )
                assert aggregation.poll() is None and scoring.poll() is None
                assert enforcer.poll() is None, logs["enforce"].read_text()
            finally:
                enforcer.terminate()
                enforcer.wait(30)
    text = {name: path.read_text(errors="replace") for name, path in logs.items()}
    for name, log in text.items():
        refusals = re.findall(REFUSED, log)
        assert not refusals, f"{name} was refused: {refusals[:3]}"
    assert stats.first_scores_s is not None, "no scores reached the edge"
    assert stats.first_enforced_s is not None, "the edge never blocked or challenged anyone"
    report_figure(
        f"loop with one principal per role ({spec.duration_s / 60:.0f} simulated minutes): "
        f"first scores at {stats.first_scores_s:.0f} s, first decision at "
        f"{stats.first_enforced_s:.0f} s, bots blocked {len(stats.bots_blocked)}"
    )
