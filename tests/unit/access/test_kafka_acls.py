"""The Kafka access plan: each role's grants from the settings, its principal, the diff."""

from __future__ import annotations

import pytest
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

from botscore.access.kafka_acls import Grant, acl_changes, grant_acls, kafka_grants, role_users
from botscore.errors import ConfigError
from botscore.settings import Settings
from botscore.vocabulary import Role

ALL_ROLES = {"BOTSCORE_KAFKA_SASL_USERNAME": "botscore-{role}"}


def _settings_of(environ: dict[str, str]) -> dict[Role, Settings]:
    return {role: Settings.from_options({}, environ=environ, role=role) for role in Role}


def _grants(role: Role) -> set[tuple[str, str, str]]:
    return {(g.operation, g.resource, g.name) for g in kafka_grants(role, Settings())}


# Written from what each stage does (README "Least privilege"), with the default names.
def test_each_role_gets_only_its_job_on_the_default_topics_and_groups():
    assert _grants(Role.EDGE) == {("WRITE", "topic", "web-logs")}
    assert _grants(Role.AGGREGATION) == {
        ("READ", "topic", "web-logs"),
        ("READ", "group", "botscore-aggregation"),
        ("WRITE", "topic", "user-features"),
        ("WRITE", "topic", "dead-letters"),
    }
    assert _grants(Role.SCORING) == {
        ("READ", "topic", "user-features"),
        ("READ", "group", "botscore-scoring"),
        ("WRITE", "topic", "threat-scores"),
        ("WRITE", "topic", "threat-scores-shadow"),
        ("WRITE", "topic", "dead-letters"),
    }
    assert _grants(Role.ENFORCER) == {
        ("READ", "topic", "threat-scores"),
        ("READ", "group", "botscore-edge"),
        ("WRITE", "topic", "dead-letters"),
    }
    assert _grants(Role.MODELS) == {
        ("READ", "topic", "threat-scores"),
        ("READ", "topic", "threat-scores-shadow"),
    }
    assert _grants(Role.ADMIN) == set()  # the broker's super user


def test_grants_follow_the_names_each_role_reads():
    environ = {"BOTSCORE_SCORING_CONSUMER_GROUP__SCORING": "scoring-blue"}
    scoring = Settings.from_options({}, environ=environ, role=Role.SCORING)
    assert Grant(Role.SCORING, "group", "scoring-blue", "READ") in kafka_grants(
        Role.SCORING, scoring
    )


def test_each_role_is_its_own_principal():
    users = role_users(_settings_of(ALL_ROLES))
    assert users == {role: f"botscore-{role}" for role in Role if role is not Role.ADMIN}
    acls = grant_acls(kafka_grants(Role.EDGE, Settings()), {Role.EDGE: users[Role.EDGE]})
    allowed = {a for a in acls if a.permission_type == ACLPermissionType.ALLOW}
    assert allowed == {
        ACL(
            "User:botscore-edge",
            "*",
            ACLOperation.WRITE,
            ACLPermissionType.ALLOW,
            ResourcePattern(ResourceType.TOPIC, "web-logs"),
        )
    }
    # Administering is denied outright, whatever a broker leaves open.
    denied = {
        (a.resource_pattern.resource_type, a.resource_pattern.resource_name, a.operation)
        for a in acls - allowed
    }
    assert denied == {
        (ResourceType.CLUSTER, "kafka-cluster", ACLOperation.ALL),
        (ResourceType.TOPIC, "*", ACLOperation.CREATE),
        (ResourceType.TOPIC, "*", ACLOperation.DELETE),
        (ResourceType.TOPIC, "*", ACLOperation.ALTER),
        (ResourceType.TOPIC, "*", ACLOperation.ALTER_CONFIGS),
    }


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "kafka.sasl_username is empty for edge, aggregation, scoring, enforcer, models"),
        ({"BOTSCORE_KAFKA_SASL_USERNAME": "botscore"}, "roles share a user \\(botscore: edge, "),
        (
            {**ALL_ROLES, "BOTSCORE_KAFKA_SASL_USERNAME__MODELS": "botscore-scoring"},
            "botscore-scoring: scoring, models",
        ),
    ],
)
def test_roles_without_a_user_of_their_own_are_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        role_users(_settings_of(environ))


def test_changes_add_the_missing_and_remove_the_unplanned():
    def acl(topic: str) -> ACL:
        pattern = ResourcePattern(ResourceType.TOPIC, topic)
        return ACL("User:u", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)

    added, removed = acl_changes({acl("a"), acl("b")}, {acl("b"), acl("c")})
    assert (added, removed) == ([acl("a")], [acl("c")])
    assert acl_changes({acl("a")}, {acl("a")}) == ([], [])
