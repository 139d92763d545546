"""Where each user's feature state lives in Redis: its shard and the shard's keys.

Users are spread over ``count`` shards. A shard is one Redis Cluster hash tag: every key of
its users, its pending set and its generation hash to one slot, so that a user's script
can check the generation, update the state and mark the user pending in one call, on one
node, whether Redis is one server or a cluster. Shard ``i``'s tag is chosen to hash into
the ``i``-th of ``count`` equal ranges of the 16384 slots: a cluster whose primaries hold
contiguous slot ranges (what ``redis-cli --cluster create`` and rebalancing make) gets a
share of the shards in proportion to its share of the slots.

Each shard keeps its own generation (a primary that restarted without its data lost only
its shards'); the state's generation is one digest of all of them, which changes when any
shard's does. Every other key is named by the state's generation too (its ``epoch``, the
digest's first 8 characters): a loss of any shard starts the whole state over, as the
loss of a single Redis does. The shards that survived still hold the requests they had
counted, but not the dedup marks of those long done (dropped below their replay floors),
so the rebuild from the web logs would count those requests again there. The old epoch's
keys are deleted by the publisher (``RedisFeatureStore.sweep``), or expire as the state does
(``aggregation.state_ttl_s``).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

__all__ = ["MAX_SHARDS", "ShardLayout", "combined_generation", "epoch_of"]

# Finding a tag for a range of 16384 / count slots takes about ``count`` tries: bounded so
# a layout is computed in milliseconds.
MAX_SHARDS = 1024


def _tag_for_range(shard: int, low: int, high: int) -> str:
    """The first tag ``<shard>.<k>`` whose slot lies in ``low..high-1``."""
    for k in range(64 * REDIS_CLUSTER_HASH_SLOTS):
        tag = f"{shard}.{k}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise AssertionError(f"no tag hashes into slots {low}..{high - 1}")  # CRC16 reaches all


@dataclass(frozen=True)
class ShardLayout:
    """The key names of the feature state under ``prefix``, over ``count`` shards."""

    prefix: str
    count: int
    tags: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"state shards must be 1..{MAX_SHARDS}, not {self.count}")
        slots = REDIS_CLUSTER_HASH_SLOTS
        tags = tuple(
            _tag_for_range(i, i * slots // self.count, (i + 1) * slots // self.count)
            for i in range(self.count)
        )
        object.__setattr__(self, "tags", tags)

    def shard_of(self, user_id: str) -> int:
        """The user's shard: stable across processes and restarts (CRC-32 of its id)."""
        return zlib.crc32(user_id.encode()) % self.count

    def user_base(self, user_id: str, epoch: str) -> str:
        """The start of every key of the user's state in ``epoch``."""
        return f"{self.prefix}:{{{self.tags[self.shard_of(user_id)]}}}:{epoch}:u:{user_id}"

    def pending_key(self, shard: int, epoch: str) -> str:
        """The shard's users with requests not yet published (user -> due time)."""
        return f"{self.prefix}:{{{self.tags[shard]}}}:{epoch}:pending"

    def generation_key(self, shard: int) -> str:
        return f"{self.prefix}:{{{self.tags[shard]}}}:generation"

    def epoch_pattern(self, epoch: str) -> str:
        """A SCAN pattern of every key of ``epoch``, under any shard's tag."""
        return f"{self.prefix}:{{*}}:{epoch}:*"

    @property
    def superseded_key(self) -> str:
        """The epochs the state has left (Redis lost some of it since), to delete."""
        return f"{self.prefix}:superseded-epochs"

    def pending_keys(self, epoch: str, shards: Sequence[int] | None = None) -> list[str]:
        """The pending sets of ``shards`` (every shard by default)."""
        chosen = range(self.count) if shards is None else shards
        return [self.pending_key(i, epoch) for i in chosen]

    def share(self, index: int, parts: int) -> tuple[int, ...]:
        """The shards of part ``index`` of ``parts`` (a publisher's, one of ``parts``): every
        ``parts``-th shard from ``index``, so that the parts' sizes differ by one at most and
        each shard is in exactly one of them. Empty when there are more parts than shards."""
        if not 0 <= index < parts:
            raise ValueError(f"part {index} of {parts} does not exist")
        return tuple(range(index, self.count, parts))

    def generation_keys(self) -> list[str]:
        return [self.generation_key(i) for i in range(self.count)]


def combined_generation(shard_generations: Sequence[bytes]) -> str:
    """One name for the generations of all shards: it changes when any of them does."""
    # Names, not a security measure: each shard's digest, so no value can pass for two.
    digests = b"".join(hashlib.sha1(g, usedforsecurity=False).digest() for g in shard_generations)
    return hashlib.sha1(digests, usedforsecurity=False).hexdigest()[:32]


def epoch_of(generation: str) -> str:
    """The part of the state's generation that names its keys."""
    return generation[:8]
