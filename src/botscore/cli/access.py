"""``botscore access``: each role's Kafka ACLs, SCRAM users and Redis ACL users, as planned.

Run as the admin (the broker's super user, a Redis user allowed ``ACL SETUSER``). Each
role's user name is ``kafka.sasl_username`` / ``redis.username`` as that role reads the
settings (``botscore-{role}``), on Kafka over SSL its client certificate's common name; a
role's user is created only from its own password,
``BOTSCORE_KAFKA_SASL_PASSWORD__<ROLE>`` / ``BOTSCORE_REDIS_PASSWORD__<ROLE>``, never from
the admin's. A Redis Cluster holding the feature state (``aggregation.state_cluster_nodes``)
keeps its users per node: the aggregation's user is set on each of its nodes too. A
second run changes nothing. ``--check`` changes nothing and exits 1 when
something differs from the plan (for a cron job or a deployment's pipeline).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import replace

import redis
from kafka.errors import ClusterAuthorizationFailedError, SecurityDisabledError

from botscore.access.kafka_acls import (
    apply_kafka_access,
    kafka_access_changes,
    kafka_grants,
    role_users,
)
from botscore.access.principals import PLANNED_ROLES, distinct_users, kafka_principal
from botscore.access.redis_users import apply_redis_users, persist_users, user_drift
from botscore.cli.command import Subparsers
from botscore.errors import ConfigError
from botscore.settings import RedisSettings, Secret, Settings, env_var, load_project_settings
from botscore.transport.kafka_clients import admin_client
from botscore.transport.redis_client import create_redis, create_redis_cluster
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "access", help="give each role its Kafka ACLs and users and its Redis user, as planned"
    )
    parser.add_argument("--only", choices=("kafka", "redis"), help="one side only (default: both)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing: say how the broker and Redis differ from the plan, exit 1 if so",
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings_of = {
        role: settings
        if role is Role.ADMIN
        else load_project_settings(args.config, args.environment, role=role)
        for role in Role
    }
    drift = False
    if args.only != "redis":
        drift |= _kafka(settings_of, args.check)
    if args.only != "kafka":
        drift |= _redis(settings_of, args.check)
    return 1 if args.check and drift else 0


def _passwords(section: str, name: str) -> dict[Role, Secret]:
    """The roles whose own password is in the environment (the admin's is not theirs)."""
    return {
        role: Secret(os.environ[env_var(section, name, role)])
        for role in PLANNED_ROLES
        if os.environ.get(env_var(section, name, role))
    }


def _kafka(settings_of: Mapping[Role, Settings], check: bool) -> bool:
    """Print the plan and what differs (``check``) or what was changed; True if any."""
    passwords = _passwords("kafka", "sasl_password")
    kafka = settings_of[Role.ADMIN].kafka
    admin = admin_client(kafka)
    try:
        changes = kafka_access_changes(admin, settings_of)
        created = [] if check else apply_kafka_access(admin, changes, settings_of, passwords)
    except ClusterAuthorizationFailedError:
        authenticated = "SASL" in kafka.security_protocol or bool(kafka.ssl_certfile)
        who = f"User:{kafka_principal(kafka)}" if authenticated else "this client"
        raise ConfigError(
            f"the broker does not let {who} manage ACLs and users: run botscore access as its "
            "super user (super.users), e.g. with BOTSCORE_KAFKA_SASL_USERNAME__ADMIN and "
            "BOTSCORE_KAFKA_SASL_PASSWORD__ADMIN"
        ) from None
    except SecurityDisabledError:
        raise ConfigError(
            "the broker has no authorizer (authorizer.class.name): it keeps no ACLs to apply"
        ) from None
    finally:
        admin.close()
    users = role_users(settings_of)
    for role in PLANNED_ROLES:
        grants = kafka_grants(role, settings_of[role])
        allowed = ", ".join(f"{g.operation} {g.resource} {g.name}" for g in grants)
        print(f"kafka {role} (User:{users[role]}): {allowed}")
    add, remove = ("missing", "unplanned") if check else ("added", "removed")
    for acl in changes.added:
        print(f"{add} ACL {_acl(acl)}")
    for acl in changes.removed:
        print(f"{remove} ACL {_acl(acl)}" + ("" if check else " (not planned)"))
    for role, user in changes.users_missing.items():
        if check:
            print(f"missing SCRAM user {user}")
        elif user in created:
            print(f"created SCRAM user {user}")
        else:
            print(f"botscore: no SCRAM user {user}, and no {_env(role)} here", file=sys.stderr)
    if not changes:
        print("kafka: as planned" if check else "kafka: nothing to change")
    return bool(changes)


def _env(role: Role) -> str:
    return env_var("kafka", "sasl_password", role)


def _redis(settings_of: Mapping[Role, Settings], check: bool) -> bool:
    """Print each role's user as it is (``check``) or as it was set; True if any differed.

    On ``redis``, every role's user; on each node of the feature state's Redis Cluster
    (``aggregation.state_cluster_nodes``), which keeps its users per node (replicas too: one
    may become a primary), the aggregation's.
    """
    passwords = _passwords("redis", "password")
    if check and not passwords:
        # Nothing to compare: exiting 0 would read as "as planned" to a cron job or pipeline.
        print(
            "botscore: redis: no role's password here "
            f"({env_var('redis', 'password')}__<ROLE>): nothing checked",
            file=sys.stderr,
        )
        return True
    names = {role: settings_of[role].redis.username for role in passwords}
    users = distinct_users(names, "redis.username")
    admin = settings_of[Role.ADMIN].redis
    differed = _redis_users("redis", create_redis(admin), users, passwords, check, admin)
    nodes = settings_of[Role.AGGREGATION].aggregation.state_cluster_nodes
    if nodes and Role.AGGREGATION in passwords:
        only = {Role.AGGREGATION: passwords[Role.AGGREGATION]}
        cluster = create_redis_cluster(admin, nodes)
        nodes_found = [(n.host, n.port) for n in cluster.get_nodes()]  # type: ignore[no-untyped-call]
        cluster.close()
        for host, port in sorted(nodes_found):
            node = replace(admin, host=host, port=port, db=0)
            client = create_redis(node)
            differed |= _redis_users(f"redis {host}:{port}", client, users, only, check, node)
    _no_password("redis", "password", passwords, "its Redis user is left out")
    return differed


def _redis_users(
    where: str,
    client: redis.Redis,
    users: Mapping[Role, str],
    passwords: Mapping[Role, Secret],
    check: bool,
    admin: RedisSettings,
) -> bool:
    """``_redis`` on one server: ``where`` starts each line it prints."""
    try:
        if check:
            drift = user_drift(client, users, passwords)
            for role, found in drift.items():
                state = "; ".join(found) if found else "as planned"
                print(f"{where} {role} (user {users[role]}): {state}")
            return any(drift.values())
        changes = apply_redis_users(client, users, passwords)
        for change in changes:
            state = "set" if change.changed else "unchanged"
            print(f"{where} {change.role} (user {change.user}): {state}")
        if changes:
            print(f"{where} users saved to {persist_users(client)}")
        return any(change.changed for change in changes)
    except redis.exceptions.NoPermissionError:
        raise ConfigError(
            f"Redis user {admin.username or 'default'!r} may not manage ACL users on "
            f"{admin.host}:{admin.port}: run botscore access as Redis's admin, e.g. with "
            "BOTSCORE_REDIS_USERNAME__ADMIN and BOTSCORE_REDIS_PASSWORD__ADMIN"
        ) from None
    finally:
        client.close()


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
    denied = getattr(getattr(acl, "permission_type", None), "name", "") == "DENY"
    return f"{principal} {getattr(operation, 'name', '?')} {kind} {name}" + (
        " (denied)" if denied else ""
    )
