"""The pipeline's Redis access as code: one ACL user per role, on its own keys only.

Each role's keys are a prefix its modules own: the feature state (``bs:agg:``), the
edge's decisions (``bs:edge:``), the published models (``botscore:models``). Roles that
only read them get read-only key permissions (``%R~``); only the roles that run Lua
scripts may run them, and scripts run with the caller's key permissions. No role gets
dangerous commands (FLUSHDB, KEYS, CONFIG, ...), channels or other keys. The admin is
whoever runs ``botscore access`` (it needs ``ACL SETUSER``): no user is made for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from botscore.aggregation.redis_state import STATE_PREFIX
from botscore.enforcement.decisions import EDGE_PREFIX
from botscore.model.releases import KEY_PREFIX as MODELS_PREFIX
from botscore.settings import Secret
from botscore.vocabulary import Role

__all__ = ["RedisUserChange", "apply_redis_users", "redis_rules"]

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
    # INFO (memory) for the feature state's size gauge: dangerous only as a disclosure.
    Role.AGGREGATION: _Access(f"~{STATE_PREFIX}:*", (*_WRITE, *_SCRIPTS), ("+info",)),
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


def _described(client: redis.Redis, user: str) -> Any:
    return client.execute_command("ACL", "GETUSER", user)  # type: ignore[no-untyped-call]
