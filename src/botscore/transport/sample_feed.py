"""Sample users onto the features topic: a pipeline fed without the feature stage.

``botscore feed`` uses it to try the scoring topology on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from botscore.clock import now_ms
from botscore.model.sample_users import sample_users
from botscore.wire.codec import encode_user_features

__all__ = ["FeedProducer", "feed_sample_users"]


class FeedProducer(Protocol):
    """The part of ``kafka.KafkaProducer`` the feed uses."""

    def send(self, topic: str, *, key: bytes, value: bytes) -> Any: ...

    def flush(self) -> None: ...


def feed_sample_users(
    producer: FeedProducer,
    topic: str,
    users: int,
    seed: int,
    rate: float = 0.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Send ``users`` sample users of population ``seed`` to ``topic``, keyed by user id,
    then flush; return how many were sent.

    ``rate`` paces the sends to that many per second from the start of the call; 0 sends
    as fast as possible.
    """
    interval = 1 / rate if rate > 0 else 0.0
    started = clock()
    sent = 0
    for i, user in enumerate(sample_users(users, seed)):
        payload = encode_user_features(user.user_id, now_ms(), user.features)
        producer.send(topic, key=user.user_id.encode(), value=payload)
        sent += 1
        if interval:
            sleep(max(0.0, started + (i + 1) * interval - clock()))
    producer.flush()
    return sent
