"""``KeyStore``: a dict behind ``mget``, the only call an edge's decision read makes."""

from __future__ import annotations

import redis


class KeyStore:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.down = False  # every call fails as an unreachable Redis's would

    def mget(self, keys: list[str]) -> list[bytes | None]:
        if self.down:
            raise redis.ConnectionError("down")
        return [self.values.get(k) for k in keys]
