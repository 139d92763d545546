"""The pipeline's Kafka access as code: one principal per role, allowed only its job.

A role writes and reads the topics ``topic_plan`` names it for and reads with its own
consumer group; nothing else (no topic creation, no other group, no configs). Its
principal is ``User:<kafka.sasl_username>`` as that role reads the settings
(``botscore-{role}``). The admin is the broker's super user (``super.users``) and gets no
ACLs: someone must be allowed to grant them.

``apply_kafka_access`` makes the broker's ACLs for these principals exactly the plan's
(adding what is missing, removing what is not planned, never touching other principals),
and creates each role's SCRAM user from its password in the environment.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from botscore.access.principals import PLANNED_ROLES, distinct_users
from botscore.errors import ConfigError
from botscore.settings import Secret, Settings
from botscore.transport.kafka_clients import retry_unreachable
from botscore.transport.topic_plan import topic_plans
from botscore.vocabulary import Role

__all__ = [
    "AccessChanges",
    "Grant",
    "acl_changes",
    "apply_kafka_access",
    "grant_acls",
    "kafka_grants",
    "role_users",
]


@dataclass(frozen=True, order=True)
class Grant:
    """One permission of one role: READ or WRITE (each implies DESCRIBE) on a resource."""

    role: Role
    resource: Literal["topic", "group"]
    name: str
    operation: Literal["READ", "WRITE"]


@dataclass(frozen=True)
class AccessChanges:
    added: list[ACL]
    removed: list[ACL]
    users_created: list[str]


def kafka_grants(role: Role, settings: Settings) -> list[Grant]:
    """What ``role`` may do, from the settings its processes read."""
    plans = topic_plans(settings)
    grants = [Grant(role, "topic", p.name, "WRITE") for p in plans if role in p.writers]
    grants += [Grant(role, "topic", p.name, "READ") for p in plans if role in p.readers]
    groups = {
        Role.AGGREGATION: settings.aggregation.consumer_group,
        Role.SCORING: settings.scoring.consumer_group,
        Role.ENFORCER: settings.enforcement.consumer_group,
    }
    if role in groups:
        grants.append(Grant(role, "group", groups[role], "READ"))
    return sorted(grants)


def role_users(settings_of: Mapping[Role, Settings]) -> dict[Role, str]:
    """Each planned role's Kafka user name; refused unless every role has its own."""
    names = {role: settings_of[role].kafka.sasl_username for role in PLANNED_ROLES}
    return distinct_users(names, "kafka.sasl_username")


def grant_acls(grants: list[Grant], users: Mapping[Role, str]) -> set[ACL]:
    """The broker's ACLs for ``grants``."""
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    return {
        ACL(
            f"User:{users[g.role]}",
            "*",
            ACLOperation[g.operation],
            ACLPermissionType.ALLOW,
            ResourcePattern(kinds[g.resource], g.name, ACLResourcePatternType.LITERAL),
        )
        for g in grants
    }


def acl_changes(wanted: set[ACL], existing: set[ACL]) -> tuple[list[ACL], list[ACL]]:
    """The ACLs to add and to remove so that ``existing`` becomes ``wanted``."""
    return sorted(wanted - existing, key=repr), sorted(existing - wanted, key=repr)


def apply_kafka_access(
    admin: KafkaAdminClient,
    settings_of: Mapping[Role, Settings],
    passwords: Mapping[Role, Secret],
    timeout_s: float = 30.0,
) -> AccessChanges:
    """Make the planned roles' ACLs the plan's and create their missing SCRAM users.

    ``passwords``: the roles whose users may be created (a user that exists keeps its
    password). ACLs of other principals are left alone.
    """
    deadline = time.monotonic() + timeout_s
    users = role_users(settings_of)
    wanted = grant_acls(
        [grant for role in PLANNED_ROLES for grant in kafka_grants(role, settings_of[role])],
        users,
    )
    existing: set[ACL] = set()
    for user in users.values():
        every_resource = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
        principal_filter = ACLFilter(
            f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY, every_resource
        )
        found, _ = retry_unreachable(partial(admin.describe_acls, principal_filter), deadline)
        existing.update(found)
    added, removed = acl_changes(wanted, existing)
    if added:
        failed = admin.create_acls(added)["failed"]
        if failed:
            raise ConfigError(f"the broker refused {len(failed)} planned ACL(s): {failed}")
    if removed:
        for _, _, error in admin.delete_acls(list(removed)):
            if error.errno:  # NoError's is 0
                raise ConfigError(f"the broker refused to remove an ACL: {error.__name__}")
    mechanism = settings_of[Role.ADMIN].kafka.sasl_mechanism
    created = _create_scram_users(admin, users, passwords, mechanism, deadline)
    return AccessChanges(added, removed, created)


def _create_scram_users(
    admin: KafkaAdminClient,
    users: Mapping[Role, str],
    passwords: Mapping[Role, Secret],
    mechanism: str,
    deadline: float,
) -> list[str]:
    if not mechanism.startswith("SCRAM-"):
        return []  # PLAIN users are in the broker's own configuration
    scram = ScramMechanism[mechanism.replace("-", "_")]
    names = [users[role] for role in passwords if role in users]
    if not names:
        return []
    described = retry_unreachable(partial(admin.describe_user_scram_credentials, names), deadline)
    have = {
        name
        for name, answer in described.items()
        if any(info["mechanism"] == scram for info in answer.get("credential_infos") or [])
    }
    upserts = [
        UserScramCredentialUpsertion(users[role], scram, password.reveal())
        for role, password in passwords.items()
        if role in users and users[role] not in have
    ]
    if not upserts:
        return []
    refused = {u: e for u, e in admin.alter_user_scram_credentials(upserts).items() if e}
    if refused:
        raise ConfigError(f"the broker refused to create SCRAM users: {refused}")
    return sorted(u.user for u in upserts)
