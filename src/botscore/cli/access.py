"""``botscore access``: each role's Kafka ACLs, SCRAM users and Redis ACL users, as planned.

Run as the admin (the broker's super user, a Redis user allowed ``ACL SETUSER``). Each
role's user name is ``kafka.sasl_username`` / ``redis.username`` as that role reads the
settings (``botscore-{role}``); a role's user is created only from its own password,
``BOTSCORE_KAFKA_SASL_PASSWORD__<ROLE>`` / ``BOTSCORE_REDIS_PASSWORD__<ROLE>``, never from
the admin's. A second run changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from botscore.access.kafka_acls import apply_kafka_access, kafka_grants
from botscore.access.principals import PLANNED_ROLES, distinct_users
from botscore.access.redis_users import apply_redis_users
from botscore.cli.command import Subparsers
from botscore.settings import Secret, Settings, env_var, load_project_settings
from botscore.transport.kafka_clients import admin_client
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "access", help="give each role its Kafka ACLs and users and its Redis user, as planned"
    )
    parser.add_argument(
        "--only", choices=("kafka", "redis"), help="apply one side only (default: both)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings_of = {
        role: settings
        if role is Role.ADMIN
        else load_project_settings(args.config, args.environment, role=role)
        for role in Role
    }
    if args.only != "redis":
        _kafka(settings_of)
    if args.only != "kafka":
        _redis(settings_of)
    return 0


def _passwords(section: str, name: str) -> dict[Role, Secret]:
    """The roles whose own password is in the environment (the admin's is not theirs)."""
    return {
        role: Secret(os.environ[env_var(section, name, role)])
        for role in PLANNED_ROLES
        if os.environ.get(env_var(section, name, role))
    }


def _kafka(settings_of: Mapping[Role, Settings]) -> None:
    passwords = _passwords("kafka", "sasl_password")
    admin = admin_client(settings_of[Role.ADMIN].kafka)
    try:
        changes = apply_kafka_access(admin, settings_of, passwords)
    finally:
        admin.close()
    for role in PLANNED_ROLES:
        grants = kafka_grants(role, settings_of[role])
        allowed = ", ".join(f"{g.operation} {g.resource} {g.name}" for g in grants)
        print(f"kafka {role} (User:{settings_of[role].kafka.sasl_username}): {allowed}")
    for acl in changes.added:
        print(f"added ACL {_acl(acl)}")
    for acl in changes.removed:
        print(f"removed ACL {_acl(acl)} (not planned)")
    for user in changes.users_created:
        print(f"created SCRAM user {user}")
    if not (changes.added or changes.removed or changes.users_created):
        print("kafka: nothing to change")
    _no_password("kafka", "sasl_password", passwords, "its SCRAM user is not created here")


def _redis(settings_of: Mapping[Role, Settings]) -> None:
    passwords = _passwords("redis", "password")
    names = {role: settings_of[role].redis.username for role in passwords}
    users = distinct_users(names, "redis.username")
    admin = settings_of[Role.ADMIN].redis
    client = create_redis(admin)
    try:
        for change in apply_redis_users(client, users, passwords):
            state = "set" if change.changed else "unchanged"
            print(f"redis {change.role} (user {change.user}): {state}")
    finally:
        client.close()
    _no_password("redis", "password", passwords, "its Redis user is left as it is")


def _no_password(section: str, name: str, passwords: Mapping[Role, Secret], left: str) -> None:
    for role in PLANNED_ROLES:
        if role not in passwords:
            print(
                f"botscore: {role}: no {env_var(section, name, role)} here: {left}",
                file=sys.stderr,
            )


def _acl(acl: object) -> str:
    principal = getattr(acl, "principal", "")
    pattern = getattr(acl, "resource_pattern", None)
    operation = getattr(acl, "operation", None)
    kind = getattr(getattr(pattern, "resource_type", None), "name", "?").lower()
    name = getattr(pattern, "resource_name", "?")
    return f"{principal} {getattr(operation, 'name', '?')} {kind} {name}"
