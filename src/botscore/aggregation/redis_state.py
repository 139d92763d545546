"""Per-user feature state in Redis, updated by one script call per user per batch.

Keys per user, under its shard's hash tag and the state's epoch (``state_shards``: a user's
keys, its shard's pending set and generation share one cluster slot; a loss of any shard
starts a new epoch): counters in time buckets, one sorted set per distinct-value set
(member -> latest time), the most recent request times, dedup marks per partition, and
meta (latest time, version, when the state began, last publication). Every key expires
``ttl`` after the user's last request, so memory follows active users, and every structure
is capped, so it is bounded per user.

Exactly once on top of at-least-once delivery: a request carries its Kafka partition and
offset, and the script ignores a request whose mark is already in its partition's set. A
mark is the offset and a digest of the request id (32 bits of its SHA-1), so that after
a topic is recreated, a new request at an offset an old one had is not taken for it.
Marks below that partition's replay floor can never be delivered again, so they are
dropped; beyond ``DEDUP_MARKS`` per partition the lowest go too, so a replay of a request
that old (the user sent that many more on the partition before it was committed) would
count it again. A request written twice, at two offsets (an edge producer's retry), is
recognised by its request id while that id is among the user's ``RECENT_REQUESTS`` latest.

A batch is one round trip: per user, one script call gets all of the user's requests,
checks and marks them one by one in order, then folds the new ones into the state at once
(summed counters, each member's latest time, one trim per structure), which leaves the
state a request-by-request update would.

Replicas: Redis replicates asynchronously, so a batch acked as soon as its primary took it
can be missing on the replica that takes over when that primary dies, its Kafka offsets
committed: lost for good. With ``replicas``, a batch's pipeline ends with a ``WAIT`` on each
primary it wrote to, and one that too few replicas confirmed in time raises
``StateNotReplicated``, to be replayed like a batch Redis did not take. The publisher's
writes are not waited for: a publication mark lost in a failover publishes a user once more.

Publishing: a user with new requests enters its shard's ``pending`` sorted set (user -> due
time; the set expires as the state does). The publisher takes due users, and on Kafka's
confirmation removes them unless a request arrived meanwhile, in which case they are due
again one interval later. A publication names its state by when it began and how many
requests it had taken: the confirmation of a state that expired or was reset since leaves
the new one due.

Each shard's ``generation`` key names its generation (``redis_generation``), and the
state's generation is the digest of them all: the aggregation's spouts read it, and a
change means Redis lost some of the state (restarted without its data, flushed, a cluster
node replaced), which they rebuild by reading the web logs again (``spouts.kafka_source``).
A batch carries the generation it was read under, and each user's script call refuses it
(``StateLost``) unless the user's shard still holds the generation it had then, and writes
into the keys of that generation's epoch: a batch read before a loss never writes into the
state that replaced it, where its marks could be dropped before the batch is read again.

A user's keys holding something this module never writes (a key of another type, a meta
field that is not a number: another program writing into ``prefix``) make the state
unusable. Rather than fail the batch, or the publication, of every user beside it for
good, the store deletes that user's state and says so (``Applied.reset``,
``UnusableState``): the user's later requests start it again.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from botscore.aggregation.definitions import (
    DISTINCT_SETS,
    GRANULARITIES,
    RECENT_REQUESTS,
    DistinctSet,
    UserState,
    distinct_values,
)
from botscore.aggregation.state_shards import ShardLayout, combined_generation, epoch_of
from botscore.errors import StateLost, StateNotReplicated
from botscore.settings import Settings
from botscore.transport.redis_client import (
    RedisClient,
    create_redis,
    create_redis_cluster,
    primaries_of,
    script_route,
)
from botscore.transport.redis_generation import read_generations
from botscore.wire.codec import MAX_EXACT_INT
from botscore.wire.records import RequestRecord

__all__ = [
    "DEDUP_MARKS",
    "DEFAULT_SHARDS",
    "STATE_PREFIX",
    "Applied",
    "DueUsers",
    "Publication",
    "PublishCandidate",
    "RedisFeatureStore",
    "StateSize",
    "Swept",
    "UnusableState",
    "feature_store",
]

# Dedup marks kept per user and partition, twice the default ``kafka.max_in_flight``: a
# replay recounts a request only if the user sent this many more on its partition before
# its offset was committed.
DEDUP_MARKS = 10_000

# Every key of the feature state starts so (its Redis ACL user's key pattern).
STATE_PREFIX = "bs:agg"

# ``aggregation.state_shards``'s default.
DEFAULT_SHARDS = 16
# How old the epoch a batch that names no generation is written in may be.
_UNCHECKED_EPOCH_S = 1.0

# One bit per counter name: a request's flags travel as one integer.
_COUNTER_BITS = {
    name: 1 << i
    for i, name in enumerate(dict.fromkeys(c for g in GRANULARITIES for c in g.counters))
}

# KEYS: counters, meta, recent, one key per distinct set, the marks of each partition the
# user's requests came from, then its shard's generation. ARGV: ttl in ms, then per request:
# its marks key (1 for the first), offset, replay floor, time, flags (``_COUNTER_BITS``),
# request id, one member per distinct set; then the shard's generation when the requests
# were read ('' to check none). Returns one character per request, '1' where it was new. Preceded by
# ``_config_lua``: GRANS, SETS, RECENT, MARKS.
_APPLY = """
local GENERATION, GENERATION_KEY = table.remove(ARGV), table.remove(KEYS)
if GENERATION ~= '' and redis.pcall('GET', GENERATION_KEY) ~= GENERATION then
  return redis.error_reply(STALE_STATE)
end
local NSETS = #SETS
local MARKS_KEY = 3 + NSETS
local WIDTH = 6 + NSETS
local function int(n) return string.format('%d', n) end
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function later(times, member, t)
  local old = times[member]
  if old == nil or t > old then times[member] = t end
end
-- One command per 1000 items: Lua's unpack has a stack limit.
local function call_in_chunks(head, items)
  for i = 1, #items, 1000 do
    local argv = {unpack(head)}
    for j = i, math.min(i + 999, #items) do argv[#argv + 1] = items[j] end
    redis.call(unpack(argv))
  end
end

-- A request is new unless its mark is on its partition's marks. Marked one by one, as
-- the requests come, a request leaves its mark and drops the marks below its replay floor
-- and those beyond MARKS. Unless MARKS can be reached, the same happens with two writes
-- per partition: a mark left at step s is gone at step k if a new request in s..k had a
-- floor above it, and ``floors`` keeps the steps whose floor no later one reaches.
local fresh, marked = {}, {}
local function mark_of(i)
  return ARGV[3 + i * WIDTH] .. ':' .. string.sub(redis.sha1hex(ARGV[7 + i * WIDTH]), 1, 8)
end
local function mark_one_by_one(marks, requests)
  for _, i in ipairs(requests) do
    local offset, mark = ARGV[3 + i * WIDTH], mark_of(i)
    if redis.call('ZSCORE', marks, mark) then
      fresh[i + 1] = '0'
    else
      fresh[i + 1] = '1'
      redis.call('ZADD', marks, offset, mark)
      redis.call('ZREMRANGEBYSCORE', marks, '-inf', '(' .. ARGV[4 + i * WIDTH])
      local extra = redis.call('ZCARD', marks) - MARKS
      if extra > 0 then redis.call('ZREMRANGEBYRANK', marks, 0, extra - 1) end
      marked[marks] = true
    end
  end
end
local function mark_together(marks, requests)
  local members, offset_of, since = {}, {}, {}
  for k, i in ipairs(requests) do
    members[k] = mark_of(i)
    offset_of[members[k]] = ARGV[3 + i * WIDTH]
  end
  for k = 1, #members, 1000 do
    local scores = redis.call('ZMSCORE', marks, unpack(members, k, math.min(k + 999, #members)))
    for j, score in ipairs(scores) do
      if score then since[members[k + j - 1]] = 0 end
    end
  end
  local steps, floors = {}, {}
  local function dropped(mark, step)
    local lo, hi = 1, #steps + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if steps[mid] >= step then hi = mid else lo = mid + 1 end
    end
    return lo <= #steps and floors[lo] > tonumber(offset_of[mark])
  end
  for k, i in ipairs(requests) do
    local mark, floor = members[k], tonumber(ARGV[4 + i * WIDTH])
    if since[mark] ~= nil and not dropped(mark, since[mark]) then
      fresh[i + 1] = '0'
    else
      fresh[i + 1] = '1'
      since[mark] = k
      while #steps > 0 and floors[#steps] <= floor do
        steps[#steps], floors[#floors] = nil, nil
      end
      steps[#steps + 1], floors[#floors + 1] = k, floor
    end
  end
  if #steps == 0 then return end
  redis.call('ZREMRANGEBYSCORE', marks, '-inf', '(' .. int(floors[1]))
  local kept = {}
  for mark, step in pairs(since) do
    if step > 0 and not dropped(mark, step) then
      kept[#kept + 1] = offset_of[mark]
      kept[#kept + 1] = mark
    end
  end
  call_in_chunks({'ZADD', marks}, kept)
  marked[marks] = true
end
local by_marks = {}
for i = 0, (#ARGV - 1) / WIDTH - 1 do
  local m = tonumber(ARGV[2 + i * WIDTH])
  by_marks[m] = by_marks[m] or {}
  table.insert(by_marks[m], i)
end
for m, requests in pairs(by_marks) do
  local marks = KEYS[MARKS_KEY + m]
  if redis.call('ZCARD', marks) + #requests > MARKS then
    mark_one_by_one(marks, requests)
  else
    mark_together(marks, requests)
  end
end

-- A request whose id is among the user's RECENT latest was written twice (a producer's
-- retry puts it at another offset): a duplicate. ``held`` follows the recent set as one
-- request at a time changes it: a new id enters, and past RECENT the lowest (time, then
-- id bytes, Redis's order) leaves.
local held, nheld = nil, 0
local function zset_before(t1, m1, t2, m2)
  if t1 ~= t2 then return t1 < t2 end
  for k = 1, math.min(#m1, #m2) do
    local b1, b2 = string.byte(m1, k), string.byte(m2, k)
    if b1 ~= b2 then return b1 < b2 end
  end
  return #m1 < #m2
end
local function seen_before(id, t)
  if held == nil then
    held = {}
    local stored = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
    for k = 1, #stored, 2 do held[stored[k]] = tonumber(stored[k + 1]) end
    nheld = #stored / 2
  end
  if held[id] ~= nil then return true end
  held[id], nheld = t, nheld + 1
  if nheld > RECENT then
    local low, low_t = nil, nil
    for m, mt in pairs(held) do
      if low == nil or zset_before(mt, m, low_t, low) then low, low_t = m, mt end
    end
    held[low], nheld = nil, nheld - 1
  end
  return false
end

-- Only an id already stored, or repeated in the batch, can be a duplicate: most batches
-- need one ZMSCORE and no ``held``.
local ids, may_repeat = {}, false
for i = 0, #fresh - 1 do
  if fresh[i + 1] == '1' then
    local id = ARGV[2 + i * WIDTH + 5]
    if ids[id] then may_repeat = true end
    ids[id] = true
  end
end
if not may_repeat then
  local listed = {}
  for id in pairs(ids) do listed[#listed + 1] = id end
  for k = 1, #listed, 1000 do
    local times = redis.call('ZMSCORE', KEYS[3], unpack(listed, k, math.min(k + 999, #listed)))
    for _, t in ipairs(times) do
      if t then may_repeat = true end
    end
  end
end

-- The new requests, folded: summed counters, each member's latest time.
local new, newest = 0, nil
local counts, members, recent = {}, {}, {}
for g = 1, #GRANS do counts[g] = {} end
for s = 1, NSETS do members[s] = {} end
for i = 0, #fresh - 1 do
  local a = 2 + i * WIDTH
  if may_repeat and fresh[i + 1] == '1' and seen_before(ARGV[a + 5], tonumber(ARGV[a + 3])) then
    fresh[i + 1] = '0'
  end
  if fresh[i + 1] == '1' then
    new = new + 1
    local t, flags = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    if newest == nil or t > newest then newest = t end
    for g, gran in ipairs(GRANS) do
      local b = idiv(t, gran[2])
      local c = counts[g][b]
      if c == nil then c = {}; counts[g][b] = c end
      for j, counter in ipairs(gran[4]) do
        if bit.band(flags, counter[2]) ~= 0 then c[j] = (c[j] or 0) + 1 end
      end
    end
    later(recent, ARGV[a + 5], t)
    for s = 1, NSETS do later(members[s], ARGV[a + 5 + s], t) end
  end
end
if new == 0 then
  -- Marks left by duplicates live as long as the state.
  for marks in pairs(marked) do redis.call('PEXPIRE', marks, ARGV[1]) end
  return table.concat(fresh)
end

local meta_fields = {'last', 'version'}
for g, gran in ipairs(GRANS) do meta_fields[g + 2] = 'lo:' .. gran[1] end
local meta = redis.call('HMGET', KEYS[2], unpack(meta_fields))
local last = tonumber(meta[1])
if last == nil or newest > last then last = newest end
local meta_args = {'last', int(last), 'version', int((tonumber(meta[2]) or 0) + new)}
if meta[2] == false then
  -- A new state (first request, or after expiry or a reset): the microsecond it began
  -- tells its publications from those of the state it replaces, whose versions restart.
  local now = redis.call('TIME')
  meta_args[#meta_args + 1] = 'born'
  meta_args[#meta_args + 1] = int(tonumber(now[1]) * 1000000 + tonumber(now[2]))
end
local gone, fields, adds = {}, {}, {}
for g, gran in ipairs(GRANS) do
  local name, keep, counters = gran[1], gran[3], gran[4]
  local lo, new_lo = tonumber(meta[g + 2]), idiv(last, gran[2]) - keep + 1
  if lo == nil or new_lo > lo then
    if lo ~= nil then
      for b = lo, math.min(new_lo - 1, lo + keep - 1) do
        for _, counter in ipairs(counters) do
          gone[#gone + 1] = name .. ':' .. int(b) .. ':' .. counter[1]
        end
      end
    end
    lo = new_lo
  end
  meta_args[#meta_args + 1] = meta_fields[g + 2]
  meta_args[#meta_args + 1] = int(lo)
  for b, c in pairs(counts[g]) do
    if b >= lo then
      for j, n in pairs(c) do
        fields[#fields + 1] = name .. ':' .. int(b) .. ':' .. counters[j][1]
        adds[#adds + 1] = n
      end
    end
  end
end
call_in_chunks({'HDEL', KEYS[1]}, gone)
if #fields > 0 then
  local old, sums = redis.call('HMGET', KEYS[1], unpack(fields)), {}
  for f = 1, #fields do
    sums[#sums + 1] = fields[f]
    sums[#sums + 1] = int((tonumber(old[f]) or 0) + adds[f])
  end
  redis.call('HSET', KEYS[1], unpack(sums))
end
redis.call('HSET', KEYS[2], unpack(meta_args))

local function add_capped(key, times, floor, cap)
  local scored = {}
  for member, t in pairs(times) do
    scored[#scored + 1] = int(t)
    scored[#scored + 1] = member
  end
  call_in_chunks({'ZADD', key, 'GT'}, scored)
  if floor then redis.call('ZREMRANGEBYSCORE', key, '-inf', int(floor)) end
  local extra = redis.call('ZCARD', key) - cap
  if extra > 0 then redis.call('ZREMRANGEBYRANK', key, 0, extra - 1) end
end
for s, set in ipairs(SETS) do add_capped(KEYS[3 + s], members[s], last - set[1], set[2]) end
add_capped(KEYS[3], recent, nil, RECENT)
for k = 1, MARKS_KEY do redis.call('PEXPIRE', KEYS[k], ARGV[1]) end
for marks in pairs(marked) do redis.call('PEXPIRE', marks, ARGV[1]) end
return table.concat(fresh)
"""

# KEYS: meta, pending. ARGV: user. Only while the user has no state: a batch may write it
# between the publisher's read and this call (its pending mark is already there).
_DROP_IF_STATELESS = """
if redis.call('HEXISTS', KEYS[1], 'last') == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: meta, pending. ARGV: user, born, version published, now ms, interval ms. A state
# born since (expiry, reset, a Redis that lost its data) is not the one published: it
# stays due.
_PUBLISHED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local born, version = unpack(redis.call('HMGET', KEYS[1], 'born', 'version'))
if (born or '0') ~= ARGV[2] then return 3 end
redis.call('HSET', KEYS[1], 'published', ARGV[4])
if version == ARGV[3] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[1])
return 2
"""


@dataclass(frozen=True)
class Applied:
    """What a batch did: per request whether it was new, and the users whose state was reset."""

    fresh: list[bool]
    # user -> why the stored state was unusable; it was deleted, then the requests applied
    reset: dict[str, str]


@dataclass(frozen=True)
class UnusableState:
    """A user's stored state that cannot be read back, and why (Redis's error, or the value)."""

    user_id: str
    reason: str


@dataclass(frozen=True)
class Swept:
    """One step of deleting a superseded epoch's keys."""

    deleted: int  # keys deleted in this step
    finished: str = ""  # the epoch whose last keys this step deleted, if any
    total: int = 0  # keys deleted of ``finished``, all steps


@dataclass(frozen=True)
class DueUsers:
    users: list[str]
    # Members of the pending set that are not UTF-8 (no user id is): removed from it.
    foreign: int


# The script's refusal of requests read under another generation than Redis holds.
_STALE_STATE = "STALESTATE read under another generation of the feature state"


def _unusable(reply: object) -> bool:
    """True for the error of a command that met a key of another type than it expects.

    Only that one: any other error (out of memory, read-only, loading) says nothing about
    the user's state, which must then be kept and the batch retried.
    """
    return type(reply) is redis.ResponseError and str(reply).startswith("WRONGTYPE")


# A user's features Kafka confirmed: (user id, the state's ``born``, its ``version``).
Publication = tuple[str, int, int]


@dataclass(frozen=True)
class PublishCandidate:
    user_id: str
    state: UserState
    # Which state (microseconds since the epoch when it began; 0 if stored without it) and
    # how many requests it has taken: together they name what was published.
    born: int
    version: int
    # Wall-clock ms of the last confirmed publication, 0 if never.
    published_ms: int


def _config_lua(sets: Sequence[DistinctSet], recent: int, marks: int) -> str:
    """The constants ``_APPLY`` starts with (the names are identifiers, safe to quote)."""
    grans = ", ".join(
        f"{{'{g.name}', {g.size_ms}, {g.keep}, {{"
        + ", ".join(f"{{'{c}', {_COUNTER_BITS[c]}}}" for c in g.counters)
        + "}}"
        for g in GRANULARITIES
    )
    windows = ", ".join(f"{{{s.window_ms}, {s.cap}}}" for s in sets)
    return (
        f"local GRANS = {{{grans}}}\n"
        f"local SETS = {{{windows}}}\n"
        f"local RECENT, MARKS = {recent}, {marks}\n"
        f"local STALE_STATE = '{_STALE_STATE}'\n"
    )


@dataclass(frozen=True)
class StateSize:
    """How much the feature state holds, for operators: all O(1) for Redis to answer."""

    pending_users: int  # users with requests not yet published
    keys: int  # keys in the state's database (the feature state, and whatever shares it)
    memory_bytes: int  # the Redis servers' memory in use (every database; every primary)


class RedisFeatureStore:
    """The feature state of every user over ``shards`` shards; ``sets``, ``recent`` and
    ``marks`` are its caps. ``client`` is one Redis server or a Redis Cluster; a batch's
    writes count as stored once ``replicas`` replicas of each primary they went to have
    them, waited for up to ``replica_wait_ms``."""

    def __init__(
        self,
        client: RedisClient,
        ttl_s: int,
        prefix: str = STATE_PREFIX,
        *,
        shards: int = DEFAULT_SHARDS,
        sets: Sequence[DistinctSet] = DISTINCT_SETS,
        recent: int = RECENT_REQUESTS,
        marks: int = DEDUP_MARKS,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        self.client = client
        self.replicas = replicas
        self.replica_wait_ms = replica_wait_ms
        self.ttl_ms = _exact("ttl", ttl_s * 1000)
        self.layout = ShardLayout(prefix, shards)
        self.sets = tuple(sets)
        self._apply = _config_lua(self.sets, recent, marks) + _APPLY
        # The name Redis gives the script, not a security measure.
        self._apply_sha = hashlib.sha1(self._apply.encode(), usedforsecurity=False).hexdigest()
        # redis-py types ``register_script`` for its one-server client only; a cluster's
        # scripts run the same way (EVALSHA routed by the keys, loaded on every primary).
        scripts = cast("redis.Redis", client)
        self._published = scripts.register_script(_PUBLISHED)
        self._drop_if_stateless = scripts.register_script(_DROP_IF_STATELESS)
        # The state's generation as last read, each shard's behind it, and when.
        self._generations: tuple[str, list[bytes]] = ("", [])
        self._read_at = -math.inf
        # The superseded epoch being swept: each node's SCAN cursor (a node not in it is
        # done; "" names the one Redis), and the keys deleted so far.
        self._sweep: tuple[str, dict[str, int], int] | None = None

    @property
    def epoch(self) -> str:
        """The epoch of the generation last read (read first if none was): the keys the
        publisher's calls, ``read`` and ``size`` use. ``due`` reads it again."""
        if not self._generations[0]:
            self.read_generation()
        return epoch_of(self._generations[0])

    def user_base(self, user_id: str, epoch: str | None = None) -> str:
        """The start of the user's keys in ``epoch`` (the current one by default)."""
        return self.layout.user_base(user_id, self.epoch if epoch is None else epoch)

    def pending_key(self, user_id: str, epoch: str | None = None) -> str:
        shard = self.layout.shard_of(user_id)
        return self.layout.pending_key(shard, self.epoch if epoch is None else epoch)

    def pending_keys(self, shards: Sequence[int] | None = None) -> list[str]:
        """The current epoch's pending sets of ``shards`` (every shard by default)."""
        return self.layout.pending_keys(self.epoch, shards)

    def _keys(self, user_id: str, epoch: str | None = None) -> list[str]:
        """Counters, meta, recent, one key per distinct set."""
        base = self.user_base(user_id, epoch)
        return [f"{base}:c", f"{base}:m", f"{base}:t"] + [f"{base}:{s.name}" for s in self.sets]

    def read_generation(self) -> str:
        """The state's generation: each shard's is set first where there was none (a Redis
        never written to, or one that lost its data). Raises ``redis.RedisError``."""
        shards = read_generations(self.client, self.layout.generation_keys())
        held, generation = self._generations[0], combined_generation(shards)
        if held and generation != held:  # Redis lost some of the state: its epoch is over
            self.client.sadd(self.layout.superseded_key, epoch_of(held))
            self.client.pexpire(self.layout.superseded_key, self.ttl_ms)  # its keys are gone
        self._generations = (generation, shards)
        self._read_at = time.monotonic()
        return generation

    @property
    def sweeping(self) -> bool:
        """A superseded epoch's keys are being deleted (``sweep`` goes on with them)."""
        return self._sweep is not None

    def sweep(self, count: int) -> Swept:
        """Delete keys of an epoch the state has left, resuming where the last call stopped:
        one SCAN of about ``count`` keys on each node, and its matches deleted. Otherwise
        those keys would hold memory until they expire (``ttl``) beside the rebuilt state's.

        An epoch is only ever swept once a reader of the state saw a newer one replace it
        (``read_generation``), and no later generation names it again, so a key this deletes
        is one no batch or publication will read. Raises ``redis.RedisError`` (the next call
        starts the epoch's scan again).
        """
        if self._sweep is None:
            current = self.epoch
            listed = cast("set[bytes]", self.client.smembers(self.layout.superseded_key))
            old = sorted(e.decode() for e in listed if e.decode() != current)
            if not old:
                return Swept(0)
            self._sweep = (old[0], dict.fromkeys(self._node_names(), 0), 0)
        epoch, cursors, total = self._sweep
        deleted = 0
        try:
            for name, cursor in list(cursors.items()):
                following, keys = self._scan(name, cursor, self.layout.epoch_pattern(epoch), count)
                if keys:
                    deleted += int(cast("int", self.client.unlink(*keys)))
                if following:
                    cursors[name] = following
                else:
                    del cursors[name]
            if cursors:
                self._sweep = (epoch, cursors, total + deleted)
                return Swept(deleted)
            self.client.srem(self.layout.superseded_key, epoch)
        except redis.RedisError:
            self._sweep = None
            raise
        self._sweep = None
        return Swept(deleted, epoch, total + deleted)

    def _node_names(self) -> list[str]:
        """The Redis servers that hold keys: each primary of a cluster, or the one Redis."""
        if isinstance(self.client, RedisCluster):
            return [node.name for node in self.client.get_primaries()]  # type: ignore[no-untyped-call]
        return [""]

    def _scan(self, name: str, cursor: int, pattern: str, count: int) -> tuple[int, list[Any]]:
        """One SCAN step on node ``name``: the next cursor (0: done) and the keys found."""
        if isinstance(self.client, RedisCluster):
            node = self.client.get_node(node_name=name)  # type: ignore[no-untyped-call]
            if node is None:  # gone from the cluster: its keys with it
                return 0, []
            step = self.client.scan(cursor, match=pattern, count=count, target_nodes=node)
            cursors, found = cast("tuple[dict[str, int], list[Any]]", step)
            return int(cursors[name]), found
        following, keys = cast("tuple[int, list[Any]]", self.client.scan(cursor, pattern, count))
        return int(following), keys

    def _shard_generations(self, generation: str) -> list[bytes]:
        """Each shard's generation behind ``generation``; ``StateLost`` if Redis no longer
        holds it (read again unless it is the one last read: the scripts check each shard's)."""
        if generation != self._generations[0]:
            self.read_generation()
        held, shards = self._generations
        if generation != held:
            raise StateLost(
                f"the feature state's generation is {held}, not the requests' {generation}"
            )
        return shards

    def apply(self, records: Sequence[RequestRecord], now_ms: int, generation: str = "") -> Applied:
        """Store each request and mark its user pending; ``fresh`` is True where it was new.

        ``generation`` is the state's as the requests' reader knew it: a user's requests
        are refused unless its shard still holds the generation it had then, and the first
        refusal raises ``StateLost`` (users before it in the batch may have been stored).
        '' checks none: the requests go to the epoch of a generation read within the last
        second.

        One round trip (per cluster node), one script call per user (a second for users
        whose state was unusable, deleted first, or who met a missing script). Raises
        ``redis.RedisError`` if Redis did not take all of them, ``StateNotReplicated`` if
        fewer than ``replicas`` replicas confirmed them; the caller replays the lot, which
        the dedup marks make harmless. Raises ``ValueError``, before sending
        anything, for an integer the script could not hold exactly (decoding dead-letters
        such requests, so none should get here).
        """
        by_user: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            for name, value in (
                ("time", record.time_ms),
                ("partition", record.source.partition),
                ("offset", record.source.offset),
                ("replay floor", record.replay_floor),
            ):
                _exact(name, value)
            by_user.setdefault(record.user_id, []).append(i)
        if not records:
            return Applied([], {})
        shards = self._shard_generations(generation) if generation else None
        if not generation and time.monotonic() - self._read_at > _UNCHECKED_EPOCH_S:
            self.read_generation()  # no reader checks it: follow a loss within a second
        epoch = epoch_of(generation) if generation else self.epoch
        calls = [
            self._call(user_id, [records[i] for i in indices], shards, epoch)
            for user_id, indices in by_user.items()
        ]
        replies, reset = self._run(calls, list(by_user), now_ms, epoch)
        fresh = [False] * len(records)
        for indices, reply in zip(by_user.values(), replies, strict=True):
            for i, flag in zip(indices, reply, strict=True):
                fresh[i] = flag == ord("1")
        return Applied(fresh, reset)

    def _call(
        self,
        user_id: str,
        records: list[RequestRecord],
        generations: list[bytes] | None,
        epoch: str,
    ) -> list[Any]:
        """EVALSHA's arguments for one user's requests, in order."""
        marks: dict[int, int] = {}
        args: list[Any] = [self.ttl_ms]
        for record in records:
            source = record.source
            flags = 0
            for flag in record.flags:
                flags |= _COUNTER_BITS.get(flag, 0)
            values = distinct_values(record)
            args += (
                marks.setdefault(source.partition, len(marks) + 1),
                source.offset,
                record.replay_floor,
                record.time_ms,
                flags,
                record.request_id,
                *(values[s.name] for s in self.sets),
            )
        shard = self.layout.shard_of(user_id)
        base = self.layout.user_base(user_id, epoch)
        keys = [
            *self._keys(user_id, epoch),
            *(f"{base}:seen:{p}" for p in marks),
            self.layout.generation_key(shard),
        ]
        held = b"" if generations is None else generations[shard]
        return [self._apply_sha, len(keys), *keys, *args, held]

    def _run(
        self, calls: list[list[Any]], users: Sequence[str], now_ms: int, epoch: str
    ) -> tuple[list[bytes], dict[str, str]]:
        """The script's reply to each call, with every user marked pending, and the resets.

        One round trip, unless Redis lacked the script (first use, or after a restart), or
        a user's keys were unusable: then the script is loaded, or the user's keys are
        deleted, and the calls refused for that (a script stops at its first error, before
        any write) are sent again, once. Replicas that did not confirm a pipeline are
        reported (``StateNotReplicated``) only after that, the whole batch sent.
        """
        results, unconfirmed = self._send(calls, users, now_ms, epoch)
        refused = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if refused:
            self.client.script_load(self._apply)
        reset = {users[i]: str(r) for i, r in enumerate(results) if _unusable(r)}
        for i, result in enumerate(results):
            if _unusable(result):
                key_count = calls[i][1]
                self.client.delete(*calls[i][2 : 1 + key_count])  # not the generation
                refused.append(i)
        if refused:
            again, unconfirmed_again = self._send([calls[i] for i in refused], users, now_ms, epoch)
            unconfirmed += unconfirmed_again
            for i, result in zip(refused, again, strict=True):
                results[i] = result
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, redis.ResponseError) and _STALE_STATE in str(result):
                key = call[1 + call[1]]
                raise StateLost(f"{key} is no longer the requests' generation")
            if isinstance(result, Exception):
                raise result
        if unconfirmed:
            raise StateNotReplicated("; ".join(unconfirmed))
        return cast("list[bytes]", results), reset

    def _send(
        self, calls: list[list[Any]], users: Sequence[str], now_ms: int, epoch: str
    ) -> tuple[list[Any], list[str]]:
        """One pipeline: the calls, then the pending marks, then the waits for replicas;
        each call's reply or error, and each node whose replicas did not confirm, why."""
        by_shard: dict[str, dict[str, int]] = {}
        for user in users:
            by_shard.setdefault(self.pending_key(user, epoch), {})[user] = now_ms
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", *call, **script_route(self.client, call[2]))
        for key, marks in by_shard.items():
            pipe.zadd(key, marks, nx=True)
            pipe.pexpire(key, self.ttl_ms)  # outlives every state of its shard and epoch
        nodes = self._queue_waits(pipe, [*(call[2] for call in calls), *by_shard])
        replies = pipe.execute(raise_on_error=False)
        written = len(calls) + 2 * len(by_shard)
        for marked in replies[len(calls) :]:
            if isinstance(marked, Exception):
                raise marked
        unconfirmed = []
        for node, confirmed in zip(nodes, replies[written:], strict=True):
            if int(confirmed) < self.replicas:
                if node is not None:
                    where = node.name
                else:
                    server = cast("redis.Redis", self.client).connection_pool.connection_kwargs
                    where = f"{server.get('host')}:{server.get('port')}"
                unconfirmed.append(
                    f"Redis {where} had {int(confirmed)} of {self.replicas} replica(s) confirm "
                    f"the batch's writes within {self.replica_wait_ms} ms"
                )
        return replies[: len(calls)], unconfirmed

    def _queue_waits(self, pipe: Any, keys: list[str]) -> list[Any]:
        """Queue, after the batch's writes, a ``WAIT`` on each primary they went to (on the
        connection that wrote them: ``WAIT`` counts that connection's writes); the nodes,
        in order. None when no replica need confirm."""
        if not self.replicas:
            return []
        nodes = primaries_of(self.client, keys)
        if nodes is None:
            raise StateNotReplicated("the cluster's slots are not known now (a failover?)")
        for node in nodes:
            route = {} if node is None else {"target_nodes": node}
            pipe.execute_command("WAIT", self.replicas, self.replica_wait_ms, **route)
        return nodes

    def due(
        self,
        now_ms: int,
        limit: int,
        shards: Sequence[int] | None = None,
        held: Collection[str] = (),
    ) -> DueUsers:
        """Up to ``limit`` users due by ``now_ms`` and not ``held`` (being published: they
        stay pending until confirmed), oldest first, from ``shards`` (every shard by
        default) of the current epoch (the generation is read first). Each shard is asked
        for ``limit`` more than it holds of ``held``, so no more members are read than
        needed."""
        self.read_generation()
        chosen = range(self.layout.count) if shards is None else shards
        keys = self.pending_keys(chosen)
        held_in = Counter(self.layout.shard_of(user) for user in held)
        pipe = self.client.pipeline(transaction=False)
        for shard, key in zip(chosen, keys, strict=True):
            wanted = limit + held_in[shard]
            pipe.zrangebyscore(key, "-inf", now_ms, start=0, num=wanted, withscores=True)
        # redis-py types every command's reply as ``Awaitable | Any``; the sync client's is
        # a list of (member, score) per shard.
        replies = cast("list[list[tuple[bytes, float]]]", pipe.execute())
        found = sorted(
            (score, member, key)
            for key, reply in zip(keys, replies, strict=True)
            for member, score in reply
        )
        users: list[str] = []
        foreign: dict[str, list[bytes]] = {}
        for _, member, key in found:
            try:
                user = member.decode()
            except UnicodeDecodeError:
                foreign.setdefault(key, []).append(member)
                continue
            if len(users) < limit and user not in held:
                users.append(user)
        for key, members in foreign.items():
            self.client.zrem(key, *members)
        return DueUsers(users, sum(len(m) for m in foreign.values()))

    def size(self) -> StateSize:
        pipe = self.client.pipeline(transaction=False)
        for key in self.pending_keys():
            pipe.zcard(key)
        pending = sum(int(n) for n in pipe.execute())
        if isinstance(self.client, RedisCluster):
            # Every primary's: redis-py asks one node unless told.
            everywhere = RedisCluster.PRIMARIES
            keys = int(cast("int", self.client.dbsize(target_nodes=everywhere)))
            by_node = cast("dict[str, Any]", self.client.info("memory", target_nodes=everywhere))
            used = sum(int(node["used_memory"]) for node in by_node.values())
        else:
            keys = int(cast("int", self.client.dbsize()))
            used = int(cast("dict[str, Any]", self.client.info("memory"))["used_memory"])
        return StateSize(pending, keys, used)

    def read(self, user_ids: Sequence[str]) -> list[PublishCandidate | UnusableState | None]:
        """Each user's state, None when it expired (nothing left to publish), or why not."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            counters, meta, recent, *sets = self._keys(user_id)
            pipe.hgetall(counters)
            pipe.hgetall(meta)
            pipe.zrange(recent, 0, -1, withscores=True)
            for key in sets:
                pipe.zcard(key)
        results = pipe.execute(raise_on_error=False)
        width = 3 + len(self.sets)
        candidates: list[PublishCandidate | UnusableState | None] = []
        for i, user_id in enumerate(user_ids):
            replies = results[i * width : (i + 1) * width]
            for reply in replies:
                if isinstance(reply, Exception) and not _unusable(reply):
                    raise reply
            try:
                candidates.append(self._candidate(user_id, replies))
            except (redis.ResponseError, KeyError, ValueError) as exc:
                candidates.append(UnusableState(user_id, f"{type(exc).__name__}: {exc}"))
        return candidates

    def _candidate(self, user_id: str, replies: list[Any]) -> PublishCandidate | None:
        """One user's stored state; raises the first error among ``replies``, or a parse error."""
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        counters, meta, recent, *cards = replies
        if b"last" not in meta:
            return None
        state = UserState(
            last_ms=int(meta[b"last"]),
            counters={k.decode(): int(v) for k, v in counters.items()},
            distinct={s.name: int(n) for s, n in zip(self.sets, cards, strict=True)},
            recent_ms=tuple(sorted(int(score) for _, score in recent)),
        )
        return PublishCandidate(
            user_id,
            state,
            int(meta.get(b"born", 0)),
            int(meta[b"version"]),
            int(meta.get(b"published", 0)),
        )

    def published(self, publications: Sequence[Publication], now_ms: int, interval_ms: int) -> None:
        """Kafka confirmed each user's ``version`` of the state ``born``: done with the user
        unless newer requests came in, or its state is another one by now.

        One round trip for them all (two when Redis lacked the script): the publisher hears
        of its users' confirmations by the hundred, and one call each capped it at a few
        hundred users a second.
        """
        calls = [
            [
                self._published.sha,
                2,
                self._keys(user_id)[1],
                self.pending_key(user_id),
                user_id,
                born,
                version,
                now_ms,
                interval_ms,
            ]
            for user_id, born, version in publications
        ]
        replies = self._evalsha(calls)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            self.client.script_load(_PUBLISHED)
            replies = self._evalsha(calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    def _evalsha(self, calls: list[list[Any]]) -> list[Any]:
        """Each call's reply or error, in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", *call, **script_route(self.client, call[2]))
        return cast("list[Any]", pipe.execute(raise_on_error=False))

    def postpone(self, user_id: str, due_ms: int) -> None:
        self.client.zadd(self.pending_key(user_id), {user_id: due_ms}, xx=True)

    def drop_pending(self, user_id: str) -> bool:
        """Forget a pending user found without state (expired, or not written yet), unless
        its state appeared since: a batch marks its users pending before a first request's
        state lands when Redis lacked the script, and a dropped mark would never publish
        them. True if it was dropped."""
        dropped = self._drop_if_stateless(
            keys=[self._keys(user_id)[1], self.pending_key(user_id)], args=[user_id]
        )
        return bool(dropped)

    def reset(self, user_id: str) -> None:
        """Delete the user's state and pending mark (its dedup marks expire on their own)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(*self._keys(user_id))
        pipe.zrem(self.pending_key(user_id), user_id)
        pipe.execute()


def feature_store(settings: Settings) -> RedisFeatureStore:
    """The store ``settings`` describe: on the Redis Cluster of
    ``aggregation.state_cluster_nodes`` if set, else on ``redis``."""
    agg = settings.aggregation
    client: RedisClient
    if agg.state_cluster_nodes:
        client = create_redis_cluster(settings.redis, agg.state_cluster_nodes)
    else:
        client = create_redis(settings.redis)
    return RedisFeatureStore(
        client,
        agg.state_ttl_s,
        shards=agg.state_shards,
        replicas=agg.state_replicas,
        replica_wait_ms=agg.state_replica_wait_ms,
    )


def _exact(name: str, value: int) -> int:
    """``value`` if Lua's doubles hold it exactly (and it is not negative), else ValueError."""
    if not 0 <= value <= MAX_EXACT_INT:
        raise ValueError(f"{name} {value} is outside 0..{MAX_EXACT_INT}")
    return value
