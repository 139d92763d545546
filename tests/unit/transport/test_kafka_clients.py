import logging

import pytest
from kafka.admin import KafkaAdminClient

from botscore.settings import KafkaSettings, Secret
from botscore.transport import kafka_clients

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
