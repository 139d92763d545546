"""The pipeline's Kafka access as code: one principal per role, allowed only its job.

A role writes and reads the topics ``topic_plan`` names it for and reads with its own
consumer group; nothing else (no topic creation, no other group, no configs). Its
principal is ``User:<kafka.sasl_username>`` as that role reads the settings
(``botscore-{role}``), or over SSL ``User:<its client certificate's common name>``. The
admin is the broker's super user (``super.users``) and gets no ACLs: someone must be
allowed to grant them.

Each role's principal is also denied administering (the cluster: ACLs, users, configs;
creating, deleting or altering any topic), so that even on a broker that leaves resources
no ACL names open (``allow.everyone.if.no.acl.found=true``; the local one does not) a role
still cannot grant itself more.
A deny outweighs any allow; super users are not subject to ACLs.

``kafka_access_changes`` says how the broker differs from the plan for these principals
(never looking at other principals), ``apply_kafka_access`` makes their ACLs exactly the
plan's and creates each role's missing SCRAM user from its password.
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

from botscore.access.principals import PLANNED_ROLES, distinct_users, kafka_principal
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
    "kafka_access_changes",
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
    users_missing: dict[Role, str]  # SCRAM users without their credential

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.users_missing)


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
    names = {role: kafka_principal(settings_of[role].kafka) for role in PLANNED_ROLES}
    by_certificate = all(settings_of[role].kafka.security_protocol == "SSL" for role in names)
    return distinct_users(names, "kafka.ssl_certfile" if by_certificate else "kafka.sasl_username")


# What no role may do anywhere: (resource, name, operations); "*" is every topic.
_DENIED = (
    (ResourceType.CLUSTER, "kafka-cluster", (ACLOperation.ALL,)),
    (
        ResourceType.TOPIC,
        "*",
        (ACLOperation.CREATE, ACLOperation.DELETE, ACLOperation.ALTER, ACLOperation.ALTER_CONFIGS),
    ),
)


def grant_acls(grants: list[Grant], users: Mapping[Role, str]) -> set[ACL]:
    """The broker's ACLs for ``grants``, and the denials of administering for each user."""
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    allowed = {
        ACL(
            f"User:{users[g.role]}",
            "*",
            ACLOperation[g.operation],
            ACLPermissionType.ALLOW,
            ResourcePattern(kinds[g.resource], g.name, ACLResourcePatternType.LITERAL),
        )
        for g in grants
    }
    denied = {
        ACL(
            f"User:{user}",
            "*",
            operation,
            ACLPermissionType.DENY,
            ResourcePattern(kind, name, ACLResourcePatternType.LITERAL),
        )
        for user in users.values()
        for kind, name, operations in _DENIED
        for operation in operations
    }
    return allowed | denied


def acl_changes(wanted: set[ACL], existing: set[ACL]) -> tuple[list[ACL], list[ACL]]:
    """The ACLs to add and to remove so that ``existing`` becomes ``wanted``."""
    return sorted(wanted - existing, key=repr), sorted(existing - wanted, key=repr)


def kafka_access_changes(
    admin: KafkaAdminClient, settings_of: Mapping[Role, Settings], timeout_s: float = 30.0
) -> AccessChanges:
    """How the broker differs from the plan for the planned roles' users (nothing written):
    ACLs to add, ACLs of theirs to remove, and SCRAM users without their credential."""
    deadline = time.monotonic() + timeout_s
    users = role_users(settings_of)
    wanted = grant_acls(
        [grant for role in PLANNED_ROLES for grant in kafka_grants(role, settings_of[role])],
        users,
    )
    existing: set[ACL] = set()
    every_resource = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    for user in users.values():
        principal_filter = ACLFilter(
            f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY, every_resource
        )
        found, _ = retry_unreachable(partial(admin.describe_acls, principal_filter), deadline)
        existing.update(found)
    added, removed = acl_changes(wanted, existing)
    scram = {
        role: _scram(kafka.sasl_mechanism)
        for role in PLANNED_ROLES
        if "SASL" in (kafka := settings_of[role].kafka).security_protocol
        and kafka.sasl_mechanism.startswith("SCRAM-")
    }
    missing: dict[Role, str] = {}
    if scram:  # PLAIN users are in the broker's own configuration
        names = [users[role] for role in scram]
        described = retry_unreachable(
            partial(admin.describe_user_scram_credentials, names), deadline
        )
        for role, mechanism in scram.items():
            infos = described.get(users[role], {}).get("credential_infos") or []
            if not any(info["mechanism"] == mechanism for info in infos):
                missing[role] = users[role]
    return AccessChanges(added, removed, missing)


def apply_kafka_access(
    admin: KafkaAdminClient,
    changes: AccessChanges,
    settings_of: Mapping[Role, Settings],
    passwords: Mapping[Role, Secret],
) -> list[str]:
    """Make ``changes``; create the missing users whose role has a password in
    ``passwords`` (a user that exists keeps its own). Returns the users created."""
    if changes.added:
        failed = admin.create_acls(changes.added)["failed"]
        if failed:
            raise ConfigError(f"the broker refused {len(failed)} planned ACL(s): {failed}")
    if changes.removed:
        for _, _, error in admin.delete_acls(list(changes.removed)):
            if error.errno:  # NoError's is 0
                raise ConfigError(f"the broker refused to remove an ACL: {error.__name__}")
    upserts = [
        UserScramCredentialUpsertion(
            user, _scram(settings_of[role].kafka.sasl_mechanism), passwords[role].reveal()
        )
        for role, user in changes.users_missing.items()
        if role in passwords
    ]
    if upserts:
        refused = {u: e for u, e in admin.alter_user_scram_credentials(upserts).items() if e}
        if refused:
            raise ConfigError(f"the broker refused to create SCRAM users: {refused}")
    return sorted(u.user for u in upserts)


def _scram(mechanism: str) -> ScramMechanism:
    return ScramMechanism[mechanism.replace("-", "_")]
