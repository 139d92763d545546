"""A Redis key that names the generation of what a database holds, to notice its loss.

Redis restarted without its data, or flushed, looks like a Redis that was never written
to: whatever was stored is gone without an error. Writers that must rebuild what they lost
keep one key per kind of state: the first reader that finds none sets a new random value,
and a writer that sees a value other than the one it saw before knows the state was lost
since, whichever writer set the new one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from botscore.transport.redis_client import RedisClient, script_route

__all__ = ["GenerationKey", "read_generations"]

# KEYS: generation. ARGV: a new generation. Returns the generation held, after setting the
# new one when there was none (a Redis never written to, or one that lost its data); a
# value of another type is replaced.
_GET_OR_SET = """
local held = redis.pcall('GET', KEYS[1])
if type(held) == 'table' and held.err then
  redis.call('DEL', KEYS[1])
  held = false
end
if held then return held end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""
# The name Redis gives the script, not a security measure.
_GET_OR_SET_SHA = hashlib.sha1(_GET_OR_SET.encode(), usedforsecurity=False).hexdigest()


class GenerationKey:
    """The generation named by ``key`` in ``client``'s database."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.key = key
        self._script: Script = client.register_script(_GET_OR_SET)

    def read(self, pipe: Any = None) -> Any:
        """The generation held (bytes), set first if there was none. Given a pipeline, the
        read is queued in it and its reply comes with the pipeline's. Raises
        ``redis.RedisError`` when Redis does not answer."""
        return self._script(keys=[self.key], args=[uuid.uuid4().hex], client=pipe)


def read_generations(client: RedisClient, keys: Sequence[str]) -> list[bytes]:
    """The generation each key names, set first where there was none: one pipeline, which
    a Redis Cluster client splits per node (its pipelines take no script objects, so the
    script is called by name, and loaded once if Redis lacks it). Raises
    ``redis.RedisError`` when Redis does not answer."""
    replies = _get_or_set(client, keys)
    if any(isinstance(reply, NoScriptError) for reply in replies):
        client.script_load(_GET_OR_SET)
        replies = _get_or_set(client, keys)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return [bytes(reply) for reply in replies]


def _get_or_set(client: RedisClient, keys: Sequence[str]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        route = script_route(client, key)
        pipe.execute_command("EVALSHA", _GET_OR_SET_SHA, 1, key, uuid.uuid4().hex, **route)
    return list(pipe.execute(raise_on_error=False))
