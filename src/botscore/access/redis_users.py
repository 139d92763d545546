"""The pipeline's Redis access as code: one ACL user per role, on its own keys only.

Each role's keys are a prefix its modules own: the feature state (``bs:agg:``), the
edge's decisions (``bs:edge:``), the published models (``botscore:models``). Roles that
only read them get read-only key permissions (``%R~``); only the roles that run Lua
scripts may run them, and scripts run with the caller's key permissions. No role gets
dangerous commands (FLUSHDB, KEYS, CONFIG, ...), channels or other keys. The admin is
whoever runs ``botscore access`` (it needs ``ACL SETUSER``): no user is made for it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from botscore.aggregation.redis_state import STATE_PREFIX
from botscore.enforcement.decisions import EDGE_PREFIX
from botscore.errors import ConfigError
from botscore.model.releases import KEY_PREFIX as MODELS_PREFIX
from botscore.settings import Secret
from botscore.vocabulary import Role

__all__ = ["RedisUserChange", "apply_redis_users", "persist_users", "redis_rules", "user_drift"]

_READ = ("+@read", "+@connection")
_WRITE = (*_READ, "+@write", "+@transaction")
# redis-py's Script: EVALSHA, then SCRIPT LOAD when Redis does not know the script yet;
# the scripts read Redis's clock (TIME is in no read or write category).
_SCRIPTS = ("+evalsha", "+eval", "+script|load", "+script|exists", "+time")


@dataclass(frozen=True)
class _Access:
    keys: str  # an ACL key pattern
    commands: tuple[str, ...]
    granted: tuple[str, ...] = ()  # after the dangerous ones are taken away


_ACCESS: dict[Role, _Access] = {
    Role.EDGE: _Access(f"%R~{EDGE_PREFIX}*", _READ),
    # INFO (memory) for the feature state's size gauge: dangerous only as a disclosure. On
    # a Redis Cluster, the client learns the slots (CLUSTER SLOTS) and follows a slot being
    # moved (ASKING).
    Role.AGGREGATION: _Access(
        f"~{STATE_PREFIX}:*", (*_WRITE, *_SCRIPTS), ("+info", "+cluster|slots", "+asking")
    ),
    Role.SCORING: _Access(f"%R~{MODELS_PREFIX}:*", _READ),
    Role.ENFORCER: _Access(f"~{EDGE_PREFIX}*", (*_WRITE, *_SCRIPTS)),
    Role.MODELS: _Access(f"~{MODELS_PREFIX}:*", _WRITE),
}


@dataclass(frozen=True)
class RedisUserChange:
    role: Role
    user: str
    changed: bool  # False: it was already exactly so


def redis_rules(role: Role) -> list[str]:
    """``ACL SETUSER`` rules for ``role``, after its password: keys, then commands."""
    access = _ACCESS[role]
    # Last: @connection and @write include dangerous commands (CLIENT KILL, FLUSHDB, ...),
    # and @write FUNCTION LOAD and FLUSH, which change what every client can run.
    taken = ("-@dangerous", "-function")
    return [access.keys, "resetchannels", "-@all", *access.commands, *taken, *access.granted]


def apply_redis_users(
    client: redis.Redis, users: Mapping[Role, str], passwords: Mapping[Role, Secret]
) -> list[RedisUserChange]:
    """Make each role's user (the roles that have a password) exactly as planned.

    ``ACL SETUSER`` with ``reset`` first, so a grant added by hand is gone; the password
    is the one given (its hash is what ``ACL GETUSER`` compares).
    """
    changes = []
    for role, password in passwords.items():
        user = users[role]
        before = _described(client, user)
        rules = ["reset", "on", f">{password.reveal()}", *redis_rules(role)]
        client.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
        changes.append(RedisUserChange(role, user, before != _described(client, user)))
    return changes


def user_drift(
    client: redis.Redis, users: Mapping[Role, str], passwords: Mapping[Role, Secret]
) -> dict[Role, list[str]]:
    """How each role's user differs from the plan (nothing changed); empty lists: none.

    The plan's form is Redis's own: the rules set on a throwaway user, disabled and without
    a password, described by ``ACL GETUSER`` and deleted again.
    """
    drift: dict[Role, list[str]] = {}
    for role, password in passwords.items():
        live = _described(client, users[role])
        if live is None:
            drift[role] = ["missing"]
            continue
        scratch = f"botscore-access-check-{secrets.token_hex(4)}"
        client.execute_command("ACL", "SETUSER", scratch, "reset", *redis_rules(role))  # type: ignore[no-untyped-call]
        try:
            planned = _described(client, scratch)
        finally:
            client.execute_command("ACL", "DELUSER", scratch)  # type: ignore[no-untyped-call]
        found = [
            f"{field} are {live[field]}, planned {planned[field]}"
            for field in ("keys", "channels", "categories", "commands", "selectors")
            if live[field] != planned[field]
        ]
        if not live["enabled"]:
            found.append("disabled")
        digest = hashlib.sha256(password.reveal().encode()).hexdigest()
        if live["passwords"] != [digest]:
            found.append("its password is not (only) the one in the environment")
        drift[role] = found
    return drift


def _described(client: redis.Redis, user: str) -> Any:
    return client.acl_getuser(user)


def persist_users(client: redis.Redis) -> str:
    """Save the users so that they outlive a restart; says where, or raises ``ConfigError``.

    Users set with ``ACL SETUSER`` live in memory only: a Redis restarted without them
    would refuse every role. ``ACL SAVE`` writes Redis's ACL file (``aclfile``); a Redis
    without one gets them in its configuration file (``CONFIG REWRITE``).
    """
    try:
        client.execute_command("ACL", "SAVE")  # type: ignore[no-untyped-call]
        return "its ACL file (ACL SAVE)"
    except redis.ResponseError as exc:
        if "ACL file" not in str(exc):
            raise
    try:
        client.config_rewrite()
        return "its configuration file (CONFIG REWRITE)"
    except redis.ResponseError as exc:
        raise ConfigError(
            f"the users are set but Redis cannot save them ({exc}): it would forget them "
            "when it restarts; give it an aclfile or a configuration file"
        ) from None
