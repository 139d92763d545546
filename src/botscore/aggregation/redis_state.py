"""Per-user feature state in Redis, updated by one script per request.

Keys per user (the ``{user}`` hash tag keeps them in one cluster slot): counters in time
buckets, one sorted set per distinct-value set (member -> latest time), the most recent
request times, dedup marks per partition, and meta (latest time, version, last
publication). Every key expires ``ttl`` after the user's last request, so memory follows
active users, and every structure is capped, so it is bounded per user.

Exactly once on top of at-least-once delivery: a request carries its Kafka partition and
offset, and the script ignores a request whose mark is already in its partition's set.
Marks below that partition's replay floor can never be delivered again, so they are
dropped; beyond ``DEDUP_MARKS`` per partition the lowest go too, so a replay of a request
that old (the user sent that many more on the partition before it was committed) would
count it again.

Publishing: a user with new requests enters the ``pending`` sorted set (user -> due
time). The publisher takes due users, and on Kafka's confirmation removes them unless a
request arrived meanwhile, in which case they are due again one interval later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis

from botscore.aggregation.definitions import (
    DISTINCT_SETS,
    RECENT_REQUESTS,
    UserState,
    update_for,
)
from botscore.wire.codec import MAX_EXACT_INT
from botscore.wire.records import RequestRecord

__all__ = ["DEDUP_MARKS", "PublishCandidate", "RedisFeatureStore"]

# Dedup marks kept per user and partition, twice the default ``kafka.max_in_flight``: a
# replay recounts a request only if the user sent this many more on its partition before
# its offset was committed.
DEDUP_MARKS = 10_000

# KEYS: counters, meta, recent, the request's partition's marks, then one key per
# DISTINCT_SETS entry. ARGV: update (JSON), offset, replay floor, ttl in ms, marks cap.
_APPLY = """
if redis.call('ZSCORE', KEYS[4], ARGV[2]) then return 0 end
local function int(n) return string.format('%d', n) end
local u = cjson.decode(ARGV[1])
local t = u.t
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
if last == nil or t > last then
  last = t
  redis.call('HSET', KEYS[2], 'last', int(t))
end
for _, g in ipairs(u.g) do
  local lo_field = 'lo:' .. g.n
  local lo = tonumber(redis.call('HGET', KEYS[2], lo_field))
  local new_lo = math.floor(last / g.s) - g.k + 1
  if lo == nil or new_lo > lo then
    if lo ~= nil then
      for b = lo, math.min(new_lo - 1, lo + g.k - 1) do
        for _, c in ipairs(g.all) do
          redis.call('HDEL', KEYS[1], g.n .. ':' .. int(b) .. ':' .. c)
        end
      end
    end
    lo = new_lo
    redis.call('HSET', KEYS[2], lo_field, int(lo))
  end
  if g.b >= lo then
    for _, c in ipairs(g.inc) do
      redis.call('HINCRBY', KEYS[1], g.n .. ':' .. int(g.b) .. ':' .. c, 1)
    end
  end
end
local function add_capped(key, score, member, floor, cap)
  redis.call('ZADD', key, 'GT', score, member)
  if floor then redis.call('ZREMRANGEBYSCORE', key, '-inf', floor) end
  local extra = redis.call('ZCARD', key) - cap
  if extra > 0 then redis.call('ZREMRANGEBYRANK', key, 0, extra - 1) end
end
for i, s in ipairs(u.s) do add_capped(KEYS[4 + i], int(t), s.m, int(last - s.w), s.c) end
add_capped(KEYS[3], int(t), u.r, nil, u.rc)
add_capped(KEYS[4], ARGV[2], ARGV[2], '(' .. ARGV[3], tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[2], 'version', 1)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[4]) end
return 1
"""

# KEYS: meta, pending. ARGV: user, version published, now ms, interval ms.
_PUBLISHED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'published', ARGV[3])
if redis.call('HGET', KEYS[1], 'version') == ARGV[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
return 2
"""


@dataclass(frozen=True)
class PublishCandidate:
    user_id: str
    state: UserState
    version: int
    # Wall-clock ms of the last confirmed publication, 0 if never.
    published_ms: int


class RedisFeatureStore:
    def __init__(self, client: redis.Redis, ttl_s: int, prefix: str = "bs:agg") -> None:
        self.client = client
        self.ttl_ms = _exact("ttl", ttl_s * 1000)
        self.prefix = prefix
        self.pending_key = f"{prefix}:pending"
        self._apply = client.register_script(_APPLY)
        self._published = client.register_script(_PUBLISHED)

    def _keys(self, user_id: str, partition: int | None = None) -> list[str]:
        """Counters, meta, recent, [the marks of ``partition``,] one key per distinct set."""
        base = f"{self.prefix}:{{{user_id}}}"
        marks = [] if partition is None else [f"{base}:seen:{partition}"]
        return [f"{base}:c", f"{base}:m", f"{base}:t", *marks] + [
            f"{base}:{s.name}" for s in DISTINCT_SETS
        ]

    def apply(self, records: Sequence[RequestRecord], now_ms: int) -> list[bool]:
        """Store each request's update and mark its user pending; True where it was new.

        One round trip. Raises ``redis.RedisError`` if Redis did not take all of them; the
        caller replays the lot, which the dedup marks make harmless. Raises ``ValueError``,
        before sending anything, for an integer the script could not hold exactly (decoding
        dead-letters such requests, so none should get here).
        """
        for record in records:
            for name, value in (
                ("time", record.time_ms),
                ("partition", record.source.partition),
                ("offset", record.source.offset),
                ("replay floor", record.replay_floor),
            ):
                _exact(name, value)
        pipe = self.client.pipeline(transaction=False)
        for record in records:
            update = update_for(record)
            spec = {
                "t": update.time_ms,
                "g": [
                    {
                        "n": g.name,
                        "s": g.size_ms,
                        "k": g.keep,
                        "b": bucket,
                        "all": list(g.counters),
                        "inc": list(counters),
                    }
                    for g, bucket, counters in update.counters
                ],
                "s": [{"m": m, "w": s.window_ms, "c": s.cap} for s, m in update.members],
                "r": update.request_id,
                "rc": RECENT_REQUESTS,
            }
            source = record.source
            self._apply(
                keys=self._keys(record.user_id, source.partition),
                args=[
                    json.dumps(spec, separators=(",", ":"), ensure_ascii=False),
                    source.offset,
                    record.replay_floor,
                    self.ttl_ms,
                    DEDUP_MARKS,
                ],
                client=pipe,
            )
        for user_id in {r.user_id for r in records}:
            pipe.zadd(self.pending_key, {user_id: now_ms}, nx=True)
        results = pipe.execute()
        return [bool(r) for r in results[: len(records)]]

    def due(self, now_ms: int, limit: int) -> list[str]:
        # redis-py types every command's reply as ``Awaitable | Any``; the sync client's is bytes.
        users = cast(
            "list[bytes]",
            self.client.zrangebyscore(self.pending_key, "-inf", now_ms, start=0, num=limit),
        )
        return [u.decode() for u in users]

    def read(self, user_ids: Sequence[str]) -> list[PublishCandidate | None]:
        """Each user's state, or None when it expired (nothing left to publish)."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            counters, meta, recent, *sets = self._keys(user_id)
            pipe.hgetall(counters)
            pipe.hgetall(meta)
            pipe.zrange(recent, 0, -1, withscores=True)
            for key in sets:
                pipe.zcard(key)
        results = pipe.execute()
        width = 3 + len(DISTINCT_SETS)
        candidates: list[PublishCandidate | None] = []
        for i, user_id in enumerate(user_ids):
            counters, meta, recent, *cards = results[i * width : (i + 1) * width]
            if b"last" not in meta:
                candidates.append(None)
                continue
            state = UserState(
                last_ms=int(meta[b"last"]),
                counters={k.decode(): int(v) for k, v in counters.items()},
                distinct={s.name: int(n) for s, n in zip(DISTINCT_SETS, cards, strict=True)},
                recent_ms=tuple(sorted(int(score) for _, score in recent)),
            )
            candidates.append(
                PublishCandidate(
                    user_id, state, int(meta[b"version"]), int(meta.get(b"published", 0))
                )
            )
        return candidates

    def published(self, user_id: str, version: int, now_ms: int, interval_ms: int) -> None:
        """Kafka confirmed ``version``: done with the user unless newer requests came in."""
        self._published(
            keys=[self._keys(user_id)[1], self.pending_key],
            args=[user_id, version, now_ms, interval_ms],
        )

    def postpone(self, user_id: str, due_ms: int) -> None:
        self.client.zadd(self.pending_key, {user_id: due_ms}, xx=True)

    def drop_pending(self, user_id: str) -> None:
        self.client.zrem(self.pending_key, user_id)


def _exact(name: str, value: int) -> int:
    """``value`` if Lua's doubles hold it exactly (and it is not negative), else ValueError."""
    if not 0 <= value <= MAX_EXACT_INT:
        raise ValueError(f"{name} {value} is outside 0..{MAX_EXACT_INT}")
    return value
