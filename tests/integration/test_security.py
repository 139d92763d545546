"""Kafka over TLS and Redis AUTH, against real services.

TLS: the local broker's SSL listener (`stack/kafka/kafka.sh`, keystores made with keytool on
its first start). The whole topology runs connected to it only, and a consumer of our own
reads every score back over TLS. Redis: a throwaway `redis-server` with a password and an
ACL user, the password reaching `create_redis` only through `BOTSCORE_REDIS_PASSWORD`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import redis
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from botscore.model.sample_users import sample_users
from botscore.settings import KafkaSettings, Settings
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.transport.redis_client import create_redis
from botscore.wire.codec import decode_threat_score, encode_user_features

from .faults import free_port
from .harness import (
    BOOTSTRAP,
    ROOT,
    consume_all,
    delete_topics,
    fresh_topics,
    sparse_run,
    stack_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

USERS = 200
KAFKA_SH = ROOT / "stack/kafka/kafka.sh"
# Same host as the plaintext bootstrap; the port kafka.sh gives its SSL listener.
TLS_HOST = BOOTSTRAP.split(",")[0].rsplit(":", 1)[0]
TLS_BOOTSTRAP = f"{TLS_HOST}:{os.environ.get('KAFKA_TLS_PORT', '9094')}"
RESTART = f"restart the broker with `{KAFKA_SH.relative_to(ROOT)} stop && make up`"


# ------------------------------------------------------------------ Kafka TLS --


@pytest.fixture(scope="module")
def tls_settings(kafka_settings: KafkaSettings) -> KafkaSettings:
    """Own topics (made over plaintext), and a client config that only talks TLS."""
    found = subprocess.run(
        [str(KAFKA_SH), "tls-ca"], env=stack_env(), capture_output=True, text=True, timeout=30
    )
    if found.returncode != 0:
        pytest.fail(f"`kafka.sh tls-ca` failed: {found.stderr.strip()}\n{RESTART}")
    cafile = found.stdout.strip()
    host, port = TLS_BOOTSTRAP.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"no TLS listener at {TLS_BOOTSTRAP} ({exc}): {RESTART}")
    return replace(
        fresh_topics(kafka_settings),
        bootstrap_servers=TLS_BOOTSTRAP,
        security_protocol="SSL",
        ssl_cafile=cafile,
    )


@dataclass
class TlsRun:
    settings: KafkaSettings
    sent: dict[str, int]  # user id -> feature time
    scores: list  # ConsumerRecords read over TLS


@pytest.fixture(scope="module")
def tls_run(tls_settings: KafkaSettings, storm_on_path, tmp_path_factory) -> Iterator[TlsRun]:
    settings = tls_settings
    producer = create_producer(settings, client_id="it-tls-producer")
    sent = {}
    for i, user in enumerate(sample_users(USERS, seed=443)):
        feature_time = 1_790_000_000_000 + i
        payload = encode_user_features(user.user_id, feature_time, user.features)
        producer.send(settings.features_topic, key=user.user_id.encode(), value=payload)
        sent[user.user_id] = feature_time
    producer.flush(timeout=60)
    producer.close()

    # The components read these with Settings.from_options(storm_conf) like any override:
    # they know only the TLS listener, so every byte they move goes over TLS.
    component_env = {
        "BOTSCORE_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "BOTSCORE_KAFKA_SSL_CAFILE": settings.ssl_cafile,
    }
    log_path = tmp_path_factory.mktemp("sparse-tls") / "sparse-run.log"
    with sparse_run(settings, log_path, 300, **component_env) as process:
        assert connection_config(settings)["security_protocol"] == "SSL"
        scores = consume_all(settings, settings.scores_topic, USERS, 240, process, log_path)
    yield TlsRun(settings, sent, scores)
    delete_topics(
        replace(settings, bootstrap_servers=BOOTSTRAP),
        [settings.features_topic, settings.scores_topic, settings.dead_letter_topic],
    )


def test_consumer_over_tls_reads_every_score(tls_run: TlsRun):
    decoded = [decode_threat_score(r.value) for r in tls_run.scores]
    assert len(decoded) == USERS, f"{len(decoded)} of {USERS} scores arrived over TLS"
    assert {s.user_id: s.feature_time_ms for s in decoded} == tls_run.sent
    assert all(s.source.topic == tls_run.settings.features_topic for s in decoded)
    assert all(0.0 <= s.score <= 1.0 for s in decoded)
    assert all(r.key == s.user_id.encode() for r, s in zip(tls_run.scores, decoded, strict=True))


@pytest.mark.parametrize(
    "client",
    [
        pytest.param({"security_protocol": "PLAINTEXT"}, id="plaintext"),
        # TLS, but trusting only the system CAs: our broker's certificate must not verify.
        pytest.param({"security_protocol": "SSL"}, id="tls-without-our-ca"),
    ],
)
def test_tls_listener_gives_nothing_to_other_clients(tls_run: TlsRun, client: dict):
    started = time.monotonic()
    with pytest.raises(KafkaError):
        consumer = KafkaConsumer(
            tls_run.settings.scores_topic,
            bootstrap_servers=[TLS_BOOTSTRAP],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            bootstrap_timeout_ms=3000,
            request_timeout_ms=3000,
            consumer_timeout_ms=3000,
            **client,
        )
        try:
            got = list(consumer)
        finally:
            consumer.close()
        pytest.fail(f"{client} read {len(got)} records from the TLS listener")
    assert time.monotonic() - started < 15


# ----------------------------------------------------------------- Redis AUTH --


@dataclass
class AuthRedis:
    port: int
    password: str
    acl_user: str
    acl_password: str


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory) -> Iterator[AuthRedis]:
    """Debian's redis-server on a free port, default user and an ACL user behind passwords."""
    server = AuthRedis(free_port(), secrets.token_hex(16), "botscore", secrets.token_hex(16))
    workdir = tmp_path_factory.mktemp("redis-auth")
    conf = workdir / "redis.conf"
    # Passwords go in a mode-600 file, not on the command line (visible in `ps`).
    conf.touch(mode=0o600)
    conf.write_text(
        f'bind 127.0.0.1\nport {server.port}\ndir {workdir}\nsave ""\nappendonly no\n'
        f"logfile {workdir / 'redis.log'}\nrequirepass {server.password}\n"
        f"user {server.acl_user} on >{server.acl_password} ~botscore:* +@all\n"
    )
    try:
        process = subprocess.Popen(["redis-server", str(conf)], cwd=workdir)
    except FileNotFoundError:
        pytest.fail("redis-server not found: run `make up` (installs Debian's redis-server)")
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"redis-server did not come up on {server.port}:\n{log}")
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _redis_settings(server: AuthRedis, options: dict, environ: dict):
    options = {"botscore.redis.port": server.port, "botscore.redis.socket_timeout_s": 2, **options}
    return Settings.from_options(options, environ=environ).redis


def test_redis_password_from_environment(auth_redis: AuthRedis):
    settings = _redis_settings(auth_redis, {}, {"BOTSCORE_REDIS_PASSWORD": auth_redis.password})
    assert auth_redis.password not in repr(settings)
    client = create_redis(settings)
    try:
        assert client.set("botscore:it:security", "ok")
        assert client.get("botscore:it:security") == b"ok"
    finally:
        client.close()


def test_redis_acl_user_from_config_password_from_environment(auth_redis: AuthRedis):
    settings = _redis_settings(
        auth_redis,
        {"botscore.redis.username": auth_redis.acl_user},
        {"BOTSCORE_REDIS_PASSWORD": auth_redis.acl_password},
    )
    client = create_redis(settings)
    try:
        assert client.acl_whoami() == auth_redis.acl_user
        assert client.set("botscore:it:acl", "ok")
        assert client.get("botscore:it:acl") == b"ok"
        # The ACL limits this user to botscore:* keys: proof the user, not default, is in.
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("other:key")
    finally:
        client.close()


@pytest.mark.parametrize(
    ("options", "environ"),
    [
        pytest.param({}, {}, id="no-password"),
        pytest.param({}, {"BOTSCORE_REDIS_PASSWORD": "wrong"}, id="wrong-password"),
        pytest.param({"botscore.redis.username": "botscore"}, {}, id="acl-user-no-password"),
    ],
)
def test_redis_refuses_without_the_password(auth_redis: AuthRedis, options, environ):
    client = create_redis(_redis_settings(auth_redis, options, environ))
    started = time.monotonic()
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.set("botscore:it:security", "should not be written")
    finally:
        client.close()
    # At once: redis-py's default retries would hide a missing password for 5-12 s.
    assert time.monotonic() - started < 2
