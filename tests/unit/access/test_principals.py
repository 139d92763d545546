"""A role's Kafka principal: its SASL user, or the common name of its client certificate."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from botscore.access.kafka_acls import role_users
from botscore.access.principals import kafka_principal
from botscore.errors import ConfigError
from botscore.settings import KafkaSettings, Settings
from botscore.vocabulary import Role


def _certificate(path: Path, *common_names: str) -> Path:
    """A self-signed certificate whose subject holds ``common_names`` (and an O)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "botscore")]
        + [x509.NameAttribute(NameOID.COMMON_NAME, name) for name in common_names]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_over_sasl_the_principal_is_the_sasl_user(tmp_path: Path):
    certificate = _certificate(tmp_path / "c.pem", "not-this-one")
    kafka = KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="botscore-edge", ssl_certfile=str(certificate)
    )
    assert kafka_principal(kafka) == "botscore-edge"


def test_over_ssl_the_principal_is_the_certificates_common_name(tmp_path: Path):
    certificate = _certificate(tmp_path / "c.pem", "botscore-scoring")
    kafka = KafkaSettings(security_protocol="SSL", ssl_certfile=str(certificate))
    assert kafka_principal(kafka) == "botscore-scoring"


@pytest.mark.parametrize(
    "kafka",
    [
        KafkaSettings(sasl_username="botscore-edge"),
        KafkaSettings(security_protocol="SSL", sasl_username="botscore-edge"),
    ],
    ids=["protocol-not-set", "ssl-without-certificate"],
)
def test_without_a_certificate_the_principal_is_the_sasl_user(kafka: KafkaSettings):
    assert kafka_principal(kafka) == "botscore-edge"


def test_a_certificate_that_cannot_name_one_principal_is_refused(tmp_path: Path):
    missing = KafkaSettings(security_protocol="SSL", ssl_certfile=str(tmp_path / "none.pem"))
    with pytest.raises(ConfigError, match=r"cannot read the client certificate .*none\.pem"):
        kafka_principal(missing)
    (tmp_path / "junk.pem").write_text("not a certificate")
    junk = KafkaSettings(security_protocol="SSL", ssl_certfile=str(tmp_path / "junk.pem"))
    with pytest.raises(ConfigError, match=r"cannot read the client certificate .*junk\.pem"):
        kafka_principal(junk)
    two = _certificate(tmp_path / "two.pem", "a", "b")
    with pytest.raises(ConfigError, match="has 2 common names"):
        kafka_principal(KafkaSettings(security_protocol="SSL", ssl_certfile=str(two)))


def test_each_role_reads_its_own_certificate_through_role_in_the_path(tmp_path: Path):
    roles = [role for role in Role if role is not Role.ADMIN]
    for role in roles:
        _certificate(tmp_path / role / "client.pem", f"cn-{role}")
    environ = {
        "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "BOTSCORE_KAFKA_SSL_CERTFILE": f"{tmp_path}/{{role}}/client.pem",
        "BOTSCORE_KAFKA_SSL_KEYFILE": f"{tmp_path}/{{role}}/client-key.pem",
    }
    settings_of = {role: Settings.from_options({}, environ=environ, role=role) for role in Role}
    assert settings_of[Role.EDGE].kafka.ssl_keyfile == f"{tmp_path}/edge/client-key.pem"
    assert role_users(settings_of) == {role: f"cn-{role}" for role in roles}


def test_roles_sharing_a_certificate_are_refused(tmp_path: Path):
    shared = _certificate(tmp_path / "client.pem", "botscore-client")
    environ = {
        "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "BOTSCORE_KAFKA_SSL_CERTFILE": str(shared),
    }
    settings_of = {role: Settings.from_options({}, environ=environ, role=role) for role in Role}
    with pytest.raises(
        ConfigError, match=r"roles share a user \(botscore-client: edge, .*ssl_certfile"
    ):
        role_users(settings_of)
