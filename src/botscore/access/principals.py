"""Each role's user name, as that role reads the settings: one per role, never shared."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from botscore.errors import ConfigError
from botscore.settings import KafkaSettings
from botscore.vocabulary import Role

__all__ = ["PLANNED_ROLES", "distinct_users", "kafka_principal"]

# The roles that get their own users and grants; the admin is the one who grants them.
PLANNED_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.ADMIN)


def distinct_users(names: Mapping[Role, str], setting: str) -> dict[Role, str]:
    """``names`` (role -> user), refused unless each role has a user of its own."""
    missing = [role.value for role, user in names.items() if not user]
    if missing:
        raise ConfigError(
            f"{setting} is empty for {', '.join(missing)}: set it to a name with {{role}} "
            f"(botscore-{{role}}) or per role in its variable's __<ROLE> form"
        )
    by_user: dict[str, list[str]] = {}
    for role, user in names.items():
        by_user.setdefault(user, []).append(role.value)
    shared = {user: roles for user, roles in by_user.items() if len(roles) > 1}
    if shared:
        named = "; ".join(f"{user}: {', '.join(roles)}" for user, roles in shared.items())
        raise ConfigError(
            f"roles share a user ({named}): each role needs its own, so that it gets only "
            f"its own access; put {{role}} in {setting}"
        )
    return dict(names)


def kafka_principal(kafka: KafkaSettings) -> str:
    """The user name the broker knows a client of ``kafka`` by.

    Over SSL with a client certificate, the certificate's common name, which the broker
    takes as the user name when it maps certificates so
    (``ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT``, as the local one
    does); otherwise the ``sasl_username`` it authenticates with.
    """
    if kafka.security_protocol != "SSL" or not kafka.ssl_certfile:
        return kafka.sasl_username
    try:
        with open(kafka.ssl_certfile, "rb") as pem:
            certificate = x509.load_pem_x509_certificate(pem.read())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the client certificate kafka.ssl_certfile {kafka.ssl_certfile!r} "
            f"for its principal: {exc}"
        ) from None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise ConfigError(
            f"the client certificate kafka.ssl_certfile {kafka.ssl_certfile!r} has "
            f"{len(names)} common names ({certificate.subject.rfc4514_string()!r}): its "
            "principal is its one common name"
        )
    return str(names[0].value)
