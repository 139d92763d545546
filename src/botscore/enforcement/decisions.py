"""Scores merged into the edge's decisions in Redis: the newest score per user wins.

Decisions live in Redis as ``bs:edge:decision:<user id>`` = ``block`` | ``challenge`` with
an expiry; no key means allow. At a given enforcer clock the merge is a function of the
set of scores seen, so replayed, reordered or late scores leave the same decisions:

- A score's time is its feature time (the scored window's end), never when it was scored
  or arrived, so a backlog of old features does not become fresh decisions. A score whose
  features are older than ``max_score_age_ms``, or more than ``max_clock_skew_ms`` ahead
  of the enforcer's clock, is ignored (outcome ``stale`` or ``future``, counted in the
  enforcer's ``scores`` metric).
- Per user the score with the greatest ``(feature time, source partition, source offset,
  severity)`` decides, whatever its decision: a newer allow lifts a block, a newer
  challenge replaces a block. Its decision expires at its feature time plus its TTL.
  ``bs:edge:latest:<user id>`` remembers that greatest key for as long as an older score
  could still be fresh.

The counters are HyperLogLogs of users (about 1% off, 12 KB each): users with a timely
score, and users a timely score asked to block or to challenge, superseded or not. Unions
do not depend on arrival order; counting transitions would.

A latest-score key or a counter of another type than the script writes (another program's
value) is replaced, and named in ``Written.replaced``: refusing it would refuse that
batch, and the enforcer retries a batch until Redis takes it.

``bs:edge:generation`` names the decisions' generation, set by the first batch that finds
none. Each batch reads it in the same transaction: another than the writer saw before
means Redis lost the decisions (restarted without its data, flushed), whichever enforcer
of the group set the new one, and ``Written.lost`` says so, for the enforcer to apply again
the scores that may still decide (``botscore.enforcement.consumer``), which also commits
under it, to notice a loss while no enforcer ran.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import redis

from botscore.errors import ConfigError, InvalidMessage
from botscore.settings import EnforcementSettings
from botscore.transport.redis_generation import GenerationKey
from botscore.vocabulary import DeadLetterReason, Decision
from botscore.wire.codec import UNSPECIFIED_DECISION, decode_threat_score, reject_empty
from botscore.wire.records import ScoreRecord

__all__ = [
    "BLOCKED_USERS_KEY",
    "CHALLENGED_USERS_KEY",
    "DECISION_PREFIX",
    "EDGE_PREFIX",
    "FUTURE",
    "GENERATION_KEY",
    "LATEST_PREFIX",
    "MAX_LIFE_MS",
    "MAX_SCRIPT_INT",
    "SCORED_USERS_KEY",
    "STALE",
    "STORED_DECISIONS",
    "DecisionWriter",
    "ScoreEffect",
    "Written",
    "decision_key",
    "latest_key",
    "parse_score",
    "read_stats",
    "score_effect",
    "ttl_ms",
    "untimely",
]

# Every key of the edge's decisions starts so (its Redis ACL users' key pattern).
EDGE_PREFIX = "bs:edge:"
DECISION_PREFIX = f"{EDGE_PREFIX}decision:"
LATEST_PREFIX = f"{EDGE_PREFIX}latest:"
SCORED_USERS_KEY = f"{EDGE_PREFIX}scored_users"
BLOCKED_USERS_KEY = f"{EDGE_PREFIX}blocked_users"
CHALLENGED_USERS_KEY = f"{EDGE_PREFIX}challenged_users"
GENERATION_KEY = f"{EDGE_PREFIX}generation"
# What a decision key can hold; no key means allow.
STORED_DECISIONS = frozenset({Decision.BLOCK, Decision.CHALLENGE})
# Outcomes of scores the merge ignores; the script returns the others.
STALE = "stale"
FUTURE = "future"
# Lua numbers are doubles, exact for integers up to this; the script refuses larger ones.
MAX_SCRIPT_INT = 2**53 - 1
# The longest TTL or score age accepted, so that no sum of them leaves that range.
MAX_LIFE_MS = 365 * 24 * 3600 * 1000

# KEYS: decision, latest score, scored users, blocked users, challenged users.
# ARGV: user id, decision, feature time, partition, offset, expiry, latest-key expiry, now
# (integers in ms, each at most MAX_SCRIPT_INT). Returns kept (an equal or newer score is
# there), allow, expired (newest, but its decision is already over), challenge or block;
# or, when it replaced keys of another type, an array of that outcome and those keys.
_APPLY_SCORE = """
local function int(i)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) or v < 0 or v > 9007199254740991 then
    error('argument ' .. i .. ' is not an integer in [0, 2^53): ' .. tostring(ARGV[i]))
  end
  return v
end
local function text(v) return string.format('%d', v) end
local severity = ({allow = 0, challenge = 1, block = 2})[ARGV[2]]
if severity == nil then
  error('unknown decision: ' .. tostring(ARGV[2]))
end
local order = {int(3), int(4), int(5), severity}
local expire_at, remember_until, now = int(6), int(7), int(8)
local replaced = {}
-- A command on a key this script owns; a key of another type is deleted and the command
-- run again. Any other error is raised as it came.
local function owned(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if string.sub(reply.err, 1, 9) ~= 'WRONGTYPE' then error(reply) end
    redis.call('DEL', key)
    replaced[#replaced + 1] = key
    return redis.call(command, key, ...)
  end
  return reply
end
local function done(outcome)
  if #replaced == 0 then return outcome end
  return {outcome, unpack(replaced)}
end
owned('PFADD', KEYS[3], ARGV[1])
if severity == 2 then owned('PFADD', KEYS[4], ARGV[1]) end
if severity == 1 then owned('PFADD', KEYS[5], ARGV[1]) end
local latest = owned('GET', KEYS[2])
if latest then
  local i = 0
  for part in string.gmatch(latest, '%d+') do
    i = i + 1
    local stored = tonumber(part)
    if order[i] < stored then return done('kept') end
    if order[i] > stored then break end
    if i == #order then return done('kept') end
  end
end
local newest = {}
for i, v in ipairs(order) do newest[i] = text(v) end
redis.call('SET', KEYS[2], table.concat(newest, ' '), 'PXAT', text(remember_until))
if severity > 0 and expire_at > now then
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', text(expire_at))
  return done(ARGV[2])
end
redis.call('DEL', KEYS[1])
if severity == 0 then return done('allow') end
return done('expired')
"""


def decision_key(user_id: str) -> str:
    return DECISION_PREFIX + user_id


def latest_key(user_id: str) -> str:
    return LATEST_PREFIX + user_id


def parse_score(payload: bytes | None) -> ScoreRecord:
    """Decode a ``ThreatScore`` the edge can act on, or raise ``InvalidMessage``."""
    score = decode_threat_score(reject_empty(payload))
    if not score.user_id:
        raise InvalidMessage(DeadLetterReason.MISSING_USER_ID)
    if score.decision == UNSPECIFIED_DECISION:
        raise InvalidMessage(DeadLetterReason.UNKNOWN_DECISION)
    if score.scored_time_ms <= 0:
        # The merge does not use it, but a producer that leaves it out breaks the contract.
        raise InvalidMessage(DeadLetterReason.MISSING_SCORED_TIME)
    return score


def ttl_ms(decision: str, settings: EnforcementSettings) -> int:
    """How long the edge keeps ``decision`` after its feature time (0: nothing to keep)."""
    if decision == Decision.BLOCK:
        return settings.block_ttl_s * 1000
    if decision == Decision.CHALLENGE:
        return settings.challenge_ttl_s * 1000
    return 0


def untimely(feature_time_ms: int, now_ms: int, settings: EnforcementSettings) -> str | None:
    """``stale`` or ``future`` for a feature time the merge must ignore at ``now_ms``."""
    if feature_time_ms < now_ms - settings.max_score_age_ms:
        return STALE
    if feature_time_ms > now_ms + settings.max_clock_skew_ms:
        return FUTURE
    return None


@dataclass(frozen=True)
class ScoreEffect:
    """One timely score as the script takes it: its place among the user's scores and lives."""

    decision: Decision
    # The order of a user's scores; the source only breaks ties.
    feature_time_ms: int
    partition: int
    offset: int
    expires_at_ms: int
    # How long the user's latest-score key must outlive this score.
    remembered_until_ms: int
    now_ms: int

    def script_args(self, user_id: str) -> list[str | int]:
        """The script's ARGV; raises ``ValueError`` for an integer it would refuse."""
        _, *numbers = astuple(self)
        if not all(0 <= n <= MAX_SCRIPT_INT for n in numbers):
            raise ValueError(f"merge arguments out of range: {self}")
        return [user_id, self.decision, *numbers]


def score_effect(score: ScoreRecord, now_ms: int, settings: EnforcementSettings) -> ScoreEffect:
    """What a timely ``score`` asks of the merge at ``now_ms``."""
    feature_time = score.feature_time_ms
    return ScoreEffect(
        decision=Decision(score.decision),
        feature_time_ms=feature_time,
        # No Kafka source is negative or near 2**53; a forged one must not break the script.
        partition=_clamp(score.source.partition),
        offset=_clamp(score.source.offset),
        expires_at_ms=feature_time + ttl_ms(score.decision, settings),
        # Redis expires the latest-score key by its own clock, which may be this far apart.
        remembered_until_ms=feature_time + settings.max_score_age_ms + settings.max_clock_skew_ms,
        now_ms=now_ms,
    )


def _clamp(value: int) -> int:
    return min(max(value, 0), MAX_SCRIPT_INT)


@dataclass(frozen=True)
class Written:
    """Each score's outcome, and the keys of another type the merge replaced on the way."""

    outcomes: list[str]
    replaced: list[str]
    # The decisions' generation changed since this writer saw it: Redis lost them.
    lost: bool = False


class DecisionWriter:
    """Applies scores to Redis: one MULTI pipeline per batch, one script call per timely score."""

    def __init__(self, client: redis.Redis, settings: EnforcementSettings) -> None:
        lives = {
            "block_ttl_s": settings.block_ttl_s * 1000,
            "challenge_ttl_s": settings.challenge_ttl_s * 1000,
            "max_score_age_ms": settings.max_score_age_ms,
            "max_clock_skew_ms": settings.max_clock_skew_ms,
        }
        for name, life_ms in lives.items():
            if not 0 <= life_ms <= MAX_LIFE_MS:
                raise ConfigError(f"enforcement.{name} must be between 0 and a year")
        self.client = client
        self.settings = settings
        self._apply = client.register_script(_APPLY_SCORE)
        self._generation = GenerationKey(client, GENERATION_KEY)
        self._seen_generation: bytes | None = None
        self._loss_unreported = False  # found by read_generation, for the next batch to say

    @property
    def generation(self) -> str:
        """The decisions' generation as last read ("" before the first read)."""
        return (self._seen_generation or b"").decode()

    def read_generation(self) -> str:
        """Read the decisions' generation now (set if Redis has none); raises
        ``redis.RedisError``. The next batch tells a loss from this one."""
        held = bytes(self._generation.read())
        if self._seen_generation not in (None, held):
            self._loss_unreported = True
        self._seen_generation = held
        return self.generation

    def write(self, scores: list[ScoreRecord], now_ms: int) -> Written:
        """Apply ``scores`` at ``now_ms`` all or none; return each one's outcome."""
        pipe = self.client.pipeline(transaction=True)
        self._generation.read(pipe)
        outcomes: list[str | None] = []
        for score in scores:
            ignored = untimely(score.feature_time_ms, now_ms, self.settings)
            outcomes.append(ignored)
            if ignored:
                continue
            user = score.user_id
            self._apply(
                keys=[
                    decision_key(user),
                    latest_key(user),
                    SCORED_USERS_KEY,
                    BLOCKED_USERS_KEY,
                    CHALLENGED_USERS_KEY,
                ],
                args=score_effect(score, now_ms, self.settings).script_args(user),
                client=pipe,
            )
        held, *replies = pipe.execute() if None in outcomes else [self._seen_generation]
        applied = iter(replies)
        seen, self._seen_generation = self._seen_generation, held
        lost = (seen is not None and held != seen) or self._loss_unreported
        self._loss_unreported = False
        written = Written([], [], lost=lost)
        for outcome in outcomes:
            if outcome is None:
                reply = next(applied)
                if isinstance(reply, list):
                    reply, *keys = reply
                    written.replaced.extend(k.decode(errors="replace") for k in keys)
                outcome = reply.decode()
            written.outcomes.append(outcome)
        return written


def read_stats(client: redis.Redis) -> dict[str, int] | None:
    """Users scored, asked to block and to challenge (approximate); None if unreachable."""
    try:
        pipe = client.pipeline(transaction=False)
        for key in (SCORED_USERS_KEY, BLOCKED_USERS_KEY, CHALLENGED_USERS_KEY):
            pipe.pfcount(key)
        scored, blocked, challenged = pipe.execute()
    except redis.RedisError:
        return None
    return {"users_scored": scored, "users_blocked": blocked, "users_challenged": challenged}
