import logging
import os
import subprocess
import time
from dataclasses import replace

import pytest
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    TopicAlreadyExistsError,
)

from botscore.errors import ConfigError
from botscore.settings import KafkaSettings, Secret, Settings, env_var
from botscore.transport import kafka_clients
from tests.unit.transport.kafka_fakes import FakeCoordinator, FakeFetcher

SASL_PASSWORD = "sasl-hunter2"
SSL_PASSWORD = "ssl-hunter2"


class _NoBroker(Exception):
    """Raised where the admin client would connect: everything before it has run."""


class _UnreachableNetClient:
    def __init__(self, **configs):
        raise _NoBroker


@pytest.fixture
def secured():
    return KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_username="botscore",
        sasl_password=Secret(SASL_PASSWORD),
        ssl_password=Secret(SSL_PASSWORD),
        ssl_keyfile="/etc/botscore/client.key",
    )


def _logged(caplog):
    return "\n".join(record.getMessage() for record in caplog.records)


def test_the_admin_client_logs_its_configuration_without_passwords(secured, caplog, monkeypatch):
    # The real KafkaAdminClient constructor runs up to the point where it would connect.
    monkeypatch.setitem(KafkaAdminClient.DEFAULT_CONFIG, "kafka_client", _UnreachableNetClient)
    caplog.set_level(logging.DEBUG, logger="kafka")
    with pytest.raises(_NoBroker):
        kafka_clients.ensure_topics(secured, ["t"])
    logged = _logged(caplog)
    assert "Starting KafkaAdminClient with configuration" in logged
    assert "sasl_plain_password" in logged and "ssl_password" in logged
    assert SASL_PASSWORD not in logged
    assert SSL_PASSWORD not in logged
    assert Secret.MASK in logged
    assert "botscore" in logged  # the rest of the configuration is still there


def test_the_filter_masks_passwords_in_a_record_shaped_like_kafka_pythons():
    config = {"bootstrap_servers": ["b:9092"], "sasl_plain_password": SASL_PASSWORD}
    for message, args in (
        ("Starting KafkaAdminClient with configuration: %s", (config,)),  # args becomes the dict
        ("%s configuration: %s", ("admin", config)),
    ):
        record = logging.LogRecord(
            "kafka.admin.client", logging.DEBUG, __file__, 1, message, args, None
        )
        assert kafka_clients.MaskPasswords().filter(record)
        assert SASL_PASSWORD not in record.getMessage()
        assert "b:9092" in record.getMessage()
    assert config["sasl_plain_password"] == SASL_PASSWORD  # the caller's dict is untouched


def test_producer_calls_are_bounded_as_the_readme_says(monkeypatch):
    """README: producer ``max_block_ms`` 5 s, delivery timeout 30 s, retries inside it."""
    built: dict = {}
    monkeypatch.setattr(kafka_clients, "KafkaProducer", lambda **config: built.update(config))
    kafka_clients.create_producer(KafkaSettings(), client_id="bounds")
    assert built["max_block_ms"] == 5000
    assert built["delivery_timeout_ms"] == 30_000
    assert built["request_timeout_ms"] * 2 <= built["delivery_timeout_ms"]
    assert (built["acks"], built["max_in_flight_requests_per_connection"]) == ("all", 1)
    assert built["enable_idempotence"] is True  # a retry is written once


def _client_certificate(tmp_path, key_password):
    """A self-signed certificate and its key, encrypted with ``key_password`` (as kafka.sh)."""
    cert, key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    make = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=botscore-test"
    subprocess.run(
        [*make.split(), "-days", "1", "-passout", "env:KEY_PASS", "-keyout", key, "-out", cert],
        env={**os.environ, "KEY_PASS": key_password},
        check=True,
        capture_output=True,
    )
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    return cert, key


def _with_key(cert, key, password):
    return KafkaSettings(
        security_protocol="SSL",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_password=Secret(password),
    )


def test_the_key_password_that_opens_the_key_is_passed_to_the_clients(tmp_path):
    cert, key = _client_certificate(tmp_path, SSL_PASSWORD)
    config = kafka_clients.connection_config(_with_key(cert, key, SSL_PASSWORD))
    assert (config["ssl_certfile"], config["ssl_keyfile"]) == (str(cert), str(key))
    assert config["ssl_password"] == SSL_PASSWORD


@pytest.mark.parametrize("password", ["wrong-hunter2", ""], ids=["wrong", "unset"])
def test_a_key_password_that_cannot_open_the_key_is_a_config_error(tmp_path, capfd, password):
    cert, key = _client_certificate(tmp_path, SSL_PASSWORD)
    with pytest.raises(ConfigError, match=env_var("kafka", "ssl_password")) as raised:
        kafka_clients.connection_config(_with_key(cert, key, password))
    assert SSL_PASSWORD not in str(raised.value)
    assert not password or password not in str(raised.value)
    # OpenSSL asks a terminal for a missing key password: on one, a client would hang.
    out, err = capfd.readouterr()
    assert "pass phrase" not in out + err


def test_a_certificate_path_still_naming_a_role_is_a_config_error(tmp_path):
    cert, key = _client_certificate(tmp_path, SSL_PASSWORD)
    unresolved = replace(_with_key(cert, key, SSL_PASSWORD), ssl_certfile="/etc/{role}.pem")
    with pytest.raises(ConfigError, match=r"kafka\.ssl_certfile '/etc/\{role\}\.pem' names a role"):
        kafka_clients.connection_config(unresolved)


class _Polled:
    """A consumer whose poll returns one record, with ``coordinator`` as its group's."""

    def __init__(self, coordinator, fetcher=None):
        self._coordinator = coordinator
        self._fetcher = fetcher if fetcher is not None else FakeFetcher()
        self.polls = []

    def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        return {"tp": ["record"]}


@pytest.mark.parametrize(
    ("rejoining", "need_rejoin", "requested"),
    [(True, False, 1), (True, True, 0), (False, False, 0)],
    ids=["abandoned", "under-way", "stable"],
)
def test_poll_group_rejoins_only_when_the_client_abandoned_a_rejoin(
    caplog, rejoining, need_rejoin, requested
):
    coordinator = FakeCoordinator(rejoining, need_rejoin)
    consumer = _Polled(coordinator)
    caplog.set_level(logging.WARNING, logger=kafka_clients.__name__)
    assert kafka_clients.poll_group(consumer, timeout_ms=100) == {"tp": ["record"]}
    assert consumer.polls == [100]
    assert coordinator.rejoins_requested == requested
    abandoned = "group rejoin was abandoned by the client; rejoining again"
    assert (abandoned in caplog.text) == bool(requested)


class _Refused(_Polled):
    """A consumer whose poll raises what kafka-python 3.0 raised once mid-outage."""

    def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        raise KafkaConnectionError("111 ECONNREFUSED")


def test_a_poll_that_raises_a_kafka_error_returns_nothing_after_its_time(caplog):
    """The broker going away must not end the enforcer or a spout: the next poll retries."""
    coordinator = FakeCoordinator(rejoining=True, need_rejoin=False)
    consumer = _Refused(coordinator)
    caplog.set_level(logging.WARNING, logger=kafka_clients.__name__)
    started = time.monotonic()
    assert kafka_clients.poll_group(consumer, timeout_ms=200) == {}
    assert time.monotonic() - started >= 0.2
    assert consumer.polls == [200]
    assert "poll failed, polling again in 200 ms: " in caplog.text
    assert "ECONNREFUSED" in caplog.text
    # nothing else is asked of the group after a failed poll
    assert coordinator.rejoins_requested == 0


class _Records:
    """A fetcher's parsed records for one partition: true while records are left."""

    def __init__(self, left: int) -> None:
        self.left = left

    def __bool__(self) -> bool:
        return self.left > 0


@pytest.mark.parametrize(
    ("inline_left", "parked", "emptied"),
    [(0, True, True), (3, True, False), (0, False, False)],
    ids=["drained-slot-with-parked", "busy-slot", "nothing-parked"],
)
def test_poll_group_empties_a_drained_slot_so_parked_records_come_back(
    inline_left, parked, emptied
):
    inline = _Records(inline_left)
    fetcher = FakeFetcher(inline, {"tp": _Records(5)} if parked else {})
    consumer = _Polled(FakeCoordinator(), fetcher)
    kafka_clients.poll_group(consumer, timeout_ms=100)
    assert (fetcher._next_partition_records is None) == emptied
    if not emptied:
        assert fetcher._next_partition_records is inline


@pytest.mark.parametrize(
    ("username", "password", "said"),
    [
        ("botscore", "", "its role's BOTSCORE_KAFKA_SASL_PASSWORD__<ROLE> (it is not set)"),
        ("", SASL_PASSWORD, "kafka.sasl_username (it is 'not set')"),
    ],
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_a_user_or_password_is_a_config_error_at_once(
    protocol, username, password, said
):
    """The broker would only drop the connection, and the client retry until it gave up."""
    settings = KafkaSettings(
        security_protocol=protocol, sasl_username=username, sasl_password=Secret(password)
    )
    with pytest.raises(ConfigError, match=r"needs kafka\.sasl_username") as refused:
        kafka_clients.connection_config(settings)
    assert said in str(refused.value)
    assert SASL_PASSWORD not in str(refused.value)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_pass_through_to_every_client(monkeypatch, mechanism):
    """README: the SASL settings "pass through to every client", the mechanism included
    (a client left on PLAIN is refused by a SCRAM-only listener)."""
    built: dict[str, dict] = {}
    monkeypatch.setattr(kafka_clients, "KafkaProducer", lambda **c: built.update(producer=c))
    monkeypatch.setattr(kafka_clients, "KafkaConsumer", lambda **c: built.update(consumer=c))
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="scoring",
        sasl_password=Secret(SASL_PASSWORD),
    )
    kafka_clients.create_producer(settings, client_id="p")
    kafka_clients.create_consumer(settings, client_id="c", group_id="g")
    sasl = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    passed = {client: tuple(config[key] for key in sasl) for client, config in built.items()}
    expected = ("SASL_SSL", mechanism, "scoring", SASL_PASSWORD)
    assert passed == {"producer": expected, "consumer": expected}


class _Admin:
    """The part of ``KafkaAdminClient`` that ``ensure_topics`` uses, over a dict of topics
    (name -> replicas of each partition); a created topic has its leaders at once."""

    def __init__(self, topics: dict[str, list[int]]) -> None:
        self.topics = topics
        self.created: list = []

    def list_topics(self):
        return list(self.topics)

    def create_topics(self, new_topics):
        for topic in new_topics:
            self.created.append(topic)
            replicas = topic.replication_factor
            self.topics[topic.name] = [replicas] * topic.num_partitions

    def describe_topics(self, names):
        return [
            {
                "name": name,
                "error_code": 0,
                "partitions": [
                    {"partition_index": i, "leader_id": 1, "replica_nodes": list(range(n))}
                    for i, n in enumerate(self.topics[name])
                ],
            }
            for name in names
        ]

    def close(self):
        pass


def _ensure(monkeypatch, admin: _Admin, settings: KafkaSettings, names: list[str]) -> list[str]:
    monkeypatch.setattr(kafka_clients, "KafkaAdminClient", lambda **config: admin)
    return kafka_clients.ensure_topics(settings, names)


def test_new_topics_get_the_configured_replicas_and_min_insync(monkeypatch):
    admin = _Admin({})
    settings = KafkaSettings(topic_partitions=6, replication_factor=3, min_insync_replicas=2)
    assert _ensure(monkeypatch, admin, settings, ["a", "b"]) == ["a", "b"]
    assert [(t.name, t.num_partitions, t.replication_factor) for t in admin.created] == [
        ("a", 6, 3),
        ("b", 6, 3),
    ]
    assert all(t.topic_configs == {"min.insync.replicas": "2"} for t in admin.created)


def test_without_min_insync_the_brokers_default_stays_in_force(monkeypatch):
    admin = _Admin({})
    _ensure(monkeypatch, admin, KafkaSettings(), ["a"])
    [topic] = admin.created
    assert (topic.replication_factor, topic.topic_configs) == (1, {})


def test_an_existing_topic_with_fewer_replicas_is_logged_not_changed(monkeypatch, caplog):
    admin = _Admin({"old": [3, 1, 3], "full": [3, 3]})
    settings = KafkaSettings(replication_factor=3)
    with caplog.at_level(logging.WARNING, logger=kafka_clients.__name__):
        assert _ensure(monkeypatch, admin, settings, ["old", "full"]) == []
    assert admin.created == []
    assert [r.getMessage() for r in caplog.records] == [
        "topic old has 1 replica(s) where kafka.replication_factor asks for 3: it can lose "
        "data with one broker; add replicas with a partition reassignment"
    ]


def test_more_in_sync_replicas_than_replicas_is_a_config_error():
    with pytest.raises(ConfigError, match=r"min_insync_replicas \(3\) is more than .*\(2\)"):
        KafkaSettings(replication_factor=2, min_insync_replicas=3)
    with pytest.raises(ConfigError, match="min_insync_replicas"):
        Settings.from_options({"botscore.kafka.min_insync_replicas": 2})


def test_an_admin_request_that_reached_a_dead_broker_is_made_again(monkeypatch):
    monkeypatch.setattr(kafka_clients.time, "sleep", lambda s: None)
    answers = [KafkaConnectionError("111 ECONNREFUSED")] * 2 + ["described"]

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert kafka_clients.retry_unreachable(call, deadline=time.monotonic() + 60) == "described"
    assert answers == []


def test_past_its_deadline_the_connection_error_is_raised():
    def call():
        raise KafkaConnectionError("111 ECONNREFUSED")

    with pytest.raises(KafkaConnectionError):
        kafka_clients.retry_unreachable(call, deadline=time.monotonic() - 1)


def test_other_admin_errors_are_not_retried():
    calls = []

    def call():
        calls.append(1)
        raise TopicAlreadyExistsError()

    with pytest.raises(TopicAlreadyExistsError):
        kafka_clients.retry_unreachable(call, deadline=time.monotonic() + 60)
    assert calls == [1]


def test_more_replicas_than_brokers_is_a_config_error_with_the_brokers_reason(monkeypatch):
    class _FewBrokers(_Admin):
        def create_topics(self, new_topics):
            raise InvalidReplicationFactorError(
                "Request 'CreateTopicsRequest(...)' failed with response 'CreateTopicsResponse("
                "topics=[CreatableTopicResult(name='a', error_code=38, error_message='The target "
                "replication factor of 3 cannot be reached because only 1 broker(s) are "
                "registered.', num_partitions=-1)])'."
            )

    settings = KafkaSettings(replication_factor=3)
    with pytest.raises(ConfigError) as refused:
        _ensure(monkeypatch, _FewBrokers({}), settings, ["a"])
    assert str(refused.value) == (
        "topic a cannot be created with kafka.replication_factor 3: The target replication "
        "factor of 3 cannot be reached because only 1 broker(s) are registered."
    )


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_a_ca_file_that_cannot_be_loaded_is_a_config_error_naming_it(tmp_path, content):
    cafile = tmp_path / "ca.pem"
    if content is not None:
        cafile.write_text(content)
    settings = replace(KafkaSettings(), security_protocol="SSL", ssl_cafile=str(cafile))
    with pytest.raises(ConfigError, match=r"cannot load the CA certificates kafka\.ssl_cafile"):
        kafka_clients.connection_config(settings)
