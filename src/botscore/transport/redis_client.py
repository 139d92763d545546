"""The Redis client built from settings: address, database, ACL user and password, TLS.

The password comes only from the environment (``BOTSCORE_REDIS_PASSWORD``, or its role's
``BOTSCORE_REDIS_PASSWORD__<ROLE>``, see ``botscore.settings``); an empty username or
password means none is sent. The client does not retry: redis-py 7 would otherwise retry
every connection error 3 times with up to 10 s backoff, and it counts a missing password
(NOAUTH) as one, hiding it for 5-12 s.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from botscore.settings import RedisSettings, unresolved_role

__all__ = ["create_redis"]


def create_redis(settings: RedisSettings) -> redis.Redis:
    """A client for ``settings``; it connects lazily, on the first command."""
    unresolved_role("redis.username", settings.username)
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username or None,
        password=settings.password.reveal() or None,
        ssl=settings.ssl,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        retry=Retry(NoBackoff(), retries=0),
    )
