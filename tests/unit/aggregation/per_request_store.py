"""The Redis feature store as it was before batches: one script call per request.

The reference for ``RedisFeatureStore.apply``, which folds a batch's requests per user:
both must leave the same state and call the same requests new. This is the per-request
script the store shipped with until then (issue 12), kept here unchanged apart from its
caps, which are parameters, so that the two can be compared past small caps, and the
check by request id and the marks' request digest added since. It writes the store's key layout, so
``RedisFeatureStore(client, ttl_s, prefix).read`` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from botscore.aggregation.definitions import DistinctSet, update_for
from botscore.aggregation.redis_state import RedisFeatureStore
from botscore.wire.records import RequestRecord

__all__ = ["PerRequestStore"]

# KEYS: counters, meta, recent, the request's partition's marks, then one key per
# distinct set. ARGV: update (JSON), offset, replay floor, ttl in ms, marks cap.
_APPLY = """
local u = cjson.decode(ARGV[1])
local mark = ARGV[2] .. ':' .. string.sub(redis.sha1hex(u.r), 1, 8)
if redis.call('ZSCORE', KEYS[4], mark) then return 0 end
local function int(n) return string.format('%d', n) end
local function add_capped(key, score, member, floor, cap)
  redis.call('ZADD', key, 'GT', score, member)
  if floor then redis.call('ZREMRANGEBYSCORE', key, '-inf', floor) end
  local extra = redis.call('ZCARD', key) - cap
  if extra > 0 then redis.call('ZREMRANGEBYRANK', key, 0, extra - 1) end
end
if redis.call('ZSCORE', KEYS[3], u.r) then
  -- Its id is among the recent requests: written twice, at another offset.
  add_capped(KEYS[4], ARGV[2], mark, '(' .. ARGV[3], tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  return 0
end
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
for i, s in ipairs(u.s) do add_capped(KEYS[4 + i], int(t), s.m, int(last - s.w), s.c) end
add_capped(KEYS[3], int(t), u.r, nil, u.rc)
add_capped(KEYS[4], ARGV[2], mark, '(' .. ARGV[3], tonumber(ARGV[5]))
redis.call('HINCRBY', KEYS[2], 'version', 1)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[4]) end
return 1
"""


class PerRequestStore:
    def __init__(
        self,
        client: redis.Redis,
        ttl_s: int,
        prefix: str,
        *,
        sets: Sequence[DistinctSet],
        recent: int,
        marks: int,
    ) -> None:
        self.ttl_ms = ttl_s * 1000
        # The layout and epoch of the store it is compared with, so either reads the
        # other's state.
        compared = RedisFeatureStore(client, ttl_s, prefix)
        self.layout, self.epoch = compared.layout, compared.epoch
        self.caps = {s.name: s.cap for s in sets}
        self.recent = recent
        self.marks = marks
        self.client = client
        self._apply = client.register_script(_APPLY)

    def apply(self, records: Sequence[RequestRecord], now_ms: int) -> list[bool]:
        """One script call per request, in order, pipelined; True where it was new."""
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
                "s": [
                    {"m": m, "w": s.window_ms, "c": self.caps[s.name]} for s, m in update.members
                ],
                "r": update.request_id,
                "rc": self.recent,
            }
            base = self.layout.user_base(record.user_id, self.epoch)
            source = record.source
            self._apply(
                keys=[
                    f"{base}:c",
                    f"{base}:m",
                    f"{base}:t",
                    f"{base}:seen:{source.partition}",
                    *(f"{base}:{s.name}" for s, _ in update.members),
                ],
                args=[
                    json.dumps(spec, separators=(",", ":"), ensure_ascii=False),
                    source.offset,
                    record.replay_floor,
                    self.ttl_ms,
                    self.marks,
                ],
                client=pipe,
            )
        for user_id in {r.user_id for r in records}:
            pending = self.layout.pending_key(self.layout.shard_of(user_id), self.epoch)
            pipe.zadd(pending, {user_id: now_ms}, nx=True)
        results = pipe.execute()
        return [bool(r) for r in results[: len(records)]]
