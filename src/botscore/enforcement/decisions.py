"""Scores merged into the edge's decisions in Redis, idempotently and atomically.

Decisions live in Redis as ``bs:edge:decision:{user_id}`` = ``block`` | ``challenge`` with
an expiry; no key means allow. A Lua script applies each score atomically. It is a merge,
so replayed or reordered scores leave the same decisions: a decision expires at its
score's ``scored_time`` plus the TTL, expiries only grow, a challenge never replaces a
block, an allow only lets decisions run out, and a score whose decision would already have
expired changes nothing. ``bs:edge:stats`` counts transitions (a user newly blocked or
challenged) and distinct users scored, so it is idempotent too.
"""

from __future__ import annotations

import redis

from botscore.errors import InvalidMessage
from botscore.settings import EnforcementSettings
from botscore.vocabulary import DeadLetterReason, Decision
from botscore.wire.codec import UNSPECIFIED_DECISION, decode_threat_score
from botscore.wire.records import ScoreRecord

__all__ = [
    "DECISION_PREFIX",
    "SCORED_USERS_KEY",
    "STATS_KEY",
    "STORED_DECISIONS",
    "DecisionWriter",
    "decision_key",
    "parse_score",
    "read_stats",
    "ttl_ms",
]

DECISION_PREFIX = "bs:edge:decision:"
STATS_KEY = "bs:edge:stats"
# A HyperLogLog of the users ever scored: ``users_scored`` is replay-safe and the key stays
# at 12 KB however many users pass (the count is within about 1%).
SCORED_USERS_KEY = "bs:edge:scored_users"
# What a decision key can hold; no key means allow.
STORED_DECISIONS = frozenset({Decision.BLOCK, Decision.CHALLENGE})
# KEYS: decision, stats hash, scored-users HyperLogLog. ARGV: user id, decision, scored ms, TTL ms.
# Returns what happened: allow, stale, kept, block or challenge (newly set or extended).
_APPLY_SCORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('PFADD', KEYS[3], ARGV[1])
local decision = ARGV[2]
if decision == 'allow' then
  return 'allow'
end
local ttl = tonumber(ARGV[4])
-- A scorer clock running ahead must not stretch a decision past one TTL from now.
local expire_at = math.min(tonumber(ARGV[3]) + ttl, now + ttl)
if expire_at <= now then
  return 'stale'
end
local current = redis.call('GET', KEYS[1])
if current == 'block' and decision == 'challenge' then
  return 'kept'
end
if current == decision and now + redis.call('PTTL', KEYS[1]) >= expire_at then
  return 'kept'
end
redis.call('SET', KEYS[1], decision, 'PXAT', expire_at)
if current ~= decision then
  redis.call('HINCRBY', KEYS[2], decision == 'block' and 'blocks' or 'challenges', 1)
end
return decision
"""


def decision_key(user_id: str) -> str:
    return DECISION_PREFIX + user_id


def parse_score(payload: bytes | None) -> ScoreRecord:
    """Decode a ``ThreatScore`` the edge can act on, or raise ``InvalidMessage``."""
    if not payload:
        raise InvalidMessage(DeadLetterReason.EMPTY_PAYLOAD)
    score = decode_threat_score(payload)
    if not score.user_id:
        raise InvalidMessage(DeadLetterReason.MISSING_USER_ID)
    if score.decision == UNSPECIFIED_DECISION:
        raise InvalidMessage(DeadLetterReason.UNKNOWN_DECISION)
    if score.scored_time_ms <= 0:
        # The decision's expiry counts from it; without it a replay could not be undone.
        raise InvalidMessage(DeadLetterReason.MISSING_SCORED_TIME)
    return score


def ttl_ms(decision: str, settings: EnforcementSettings) -> int:
    """How long the edge keeps ``decision`` after its score (0: nothing to keep)."""
    if decision == Decision.BLOCK:
        return settings.block_ttl_s * 1000
    if decision == Decision.CHALLENGE:
        return settings.challenge_ttl_s * 1000
    return 0


class DecisionWriter:
    """Applies scores to Redis: one MULTI pipeline per batch, one script call per score."""

    def __init__(self, client: redis.Redis, settings: EnforcementSettings) -> None:
        self.client = client
        self.settings = settings
        self._apply = client.register_script(_APPLY_SCORE)

    def write(self, scores: list[ScoreRecord]) -> list[str]:
        """Apply ``scores`` all or none; return the script's outcome for each."""
        if not scores:
            return []
        pipe = self.client.pipeline(transaction=True)
        for score in scores:
            self._apply(
                keys=[decision_key(score.user_id), STATS_KEY, SCORED_USERS_KEY],
                args=[
                    score.user_id,
                    score.decision,
                    score.scored_time_ms,
                    ttl_ms(score.decision, self.settings),
                ],
                client=pipe,
            )
        return [r.decode() for r in pipe.execute()]


def read_stats(client: redis.Redis) -> dict[str, int] | None:
    """``bs:edge:stats`` plus ``users_scored`` (approximate); None if Redis is unreachable."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(STATS_KEY)
        pipe.pfcount(SCORED_USERS_KEY)
        raw, scored = pipe.execute()
    except redis.RedisError:
        return None
    return {**{k.decode(): int(v) for k, v in raw.items()}, "users_scored": scored}
