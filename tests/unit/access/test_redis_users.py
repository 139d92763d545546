"""Each role's Redis key pattern covers the keys its own code writes, and no other role's."""

from __future__ import annotations

from fnmatch import fnmatchcase

import redis

from botscore.access.redis_users import redis_rules
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.enforcement.decisions import GENERATION_KEY, SCORED_USERS_KEY, decision_key
from botscore.model.releases import ReleaseStore, Slot
from botscore.vocabulary import Role

# Clients connect on their first command: these never do.
STATE = RedisFeatureStore(redis.Redis(port=1), 3600)
STATE_KEYS = [
    *STATE._keys("u1", "01234567"),
    *STATE.layout.pending_keys("01234567"),
    *STATE.layout.generation_keys(),
]
EDGE_KEYS = [decision_key("u1"), SCORED_USERS_KEY, GENERATION_KEY]
MODEL_KEYS = [
    ReleaseStore(redis.Redis(port=1))._key(*parts) for parts in (("release", "m/1"), (Slot.LIVE,))
]


def _pattern(role: Role) -> tuple[str, bool]:
    """The role's key pattern and whether it is read-only."""
    (keys,) = [rule for rule in redis_rules(role) if "~" in rule]
    return keys.split("~", 1)[1], keys.startswith("%R~")


def _covers(role: Role, keys: list[str]) -> bool:
    pattern, _ = _pattern(role)
    return all(fnmatchcase(key, pattern) for key in keys)


def test_each_role_owns_its_keys_and_reads_no_other_roles():
    assert _covers(Role.AGGREGATION, STATE_KEYS) and _pattern(Role.AGGREGATION)[1] is False
    assert _covers(Role.ENFORCER, EDGE_KEYS) and _pattern(Role.ENFORCER)[1] is False
    assert _covers(Role.EDGE, EDGE_KEYS) and _pattern(Role.EDGE)[1] is True
    assert _covers(Role.MODELS, MODEL_KEYS) and _pattern(Role.MODELS)[1] is False
    assert _covers(Role.SCORING, MODEL_KEYS) and _pattern(Role.SCORING)[1] is True
    for role, foreign in (
        (Role.AGGREGATION, EDGE_KEYS + MODEL_KEYS),
        (Role.ENFORCER, STATE_KEYS + MODEL_KEYS),
        (Role.MODELS, STATE_KEYS + EDGE_KEYS),
    ):
        pattern, _ = _pattern(role)
        assert not any(fnmatchcase(key, pattern) for key in foreign), role


def test_dangerous_commands_are_taken_away_after_every_category_granted():
    for role in (r for r in Role if r is not Role.ADMIN):
        rules = redis_rules(role)
        assert rules.index("-@dangerous") > max(
            i for i, r in enumerate(rules) if r.startswith("+@")
        )
        assert "resetchannels" in rules and "-@all" in rules
