"""Seeded synthetic feature vectors for humans and bots.

A stand-in for the edge traffic simulator: it lets a new user see scores flow and gives
the baseline model something to learn. Distributions are rough but shaped like the real
signals (bots request faster, from more IPs and data centres, skip the JavaScript check).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from botscore.model.features import CATALOG

__all__ = ["SampleUser", "sample_users"]


@dataclass(frozen=True)
class SampleUser:
    user_id: str
    is_bot: bool
    features: dict[str, float]


def _human(rng: np.random.Generator) -> list[float]:
    # Some humans look busy: power users, shared offices, VPNs through data centres.
    busy = rng.random() < 0.1
    rpm = rng.gamma(2.0, 1.5) * (4 if busy else 1)
    return [
        rpm,
        rpm * rng.uniform(5, 40),
        float(rng.integers(1, 8 if busy else 3)),
        float(rng.integers(1, 3)),
        float(rng.integers(3, 60)),
        rng.beta(1, 30),
        rng.beta(1, 200),
        rng.beta(2, 3) if busy else rng.beta(1, 40),
        rng.gamma(3.0, 4.0),
        rng.uniform(0.8, 2.5),
        rng.beta(30, 1),
        rng.poisson(0.3),
        0.0,  # a browser's user agent
        0.0,  # and that browser's TLS handshake
    ]


def _bot(rng: np.random.Generator) -> list[float]:
    stealthy = rng.random() < 0.4
    rpm = rng.gamma(2.0, 1.5) if stealthy else rng.gamma(4.0, 15.0)
    values = [
        rpm,
        rpm * rng.uniform(30, 60),
        float(rng.integers(1, 4) if stealthy else rng.integers(2, 200)),
        float(rng.integers(1, 3) if stealthy else rng.integers(1, 30)),
        float(rng.integers(5, 500)),
        rng.beta(2, 10),
        rng.beta(2, 20),
        rng.beta(5, 5) if not stealthy else rng.beta(2, 10),
        rng.gamma(2.0, 1.0) if not stealthy else rng.gamma(3.0, 3.5),
        rng.uniform(0.0, 0.6) if not stealthy else rng.uniform(0.4, 1.8),
        rng.beta(1, 5) if not stealthy else rng.beta(8, 3),
        rng.poisson(5 if not stealthy else 1),
    ]
    # Crawlers and HTTP libraries say what they are; stealthy bots never do.
    declares_bot = float(rng.random() < 0.4) if not stealthy else 0.0
    # A library behind a browser's user agent sends its own TLS handshake, not the
    # browser's; stealthy bots impersonate that too.
    return [*values, declares_bot, float(not stealthy and not declares_bot)]


def sample_users(count: int, seed: int, bot_share: float = 0.3) -> Iterator[SampleUser]:
    """Yield ``count`` users; the same seed always yields the same users."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        is_bot = bool(rng.random() < bot_share)
        values = _bot(rng) if is_bot else _human(rng)
        features = {name: float(v) for name, v in zip(CATALOG, values, strict=True)}
        yield SampleUser(f"user-{seed}-{i:07d}", is_bot, features)
