"""Each role's user name, as that role reads the settings: one per role, never shared."""

from __future__ import annotations

from collections.abc import Mapping

from botscore.errors import ConfigError
from botscore.vocabulary import Role

__all__ = ["PLANNED_ROLES", "distinct_users"]

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
