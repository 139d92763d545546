"""What a simulation is asked for: one definition of its parameters, defaults and limits.

``botscore simulate``, ``botscore train`` and the tests all describe a simulation with a
``SimulationSpec``; the population and the traffic generator check the fields they take
with the same ``check_*`` functions, so every entry point refuses the same bad values with
the same ``SimulationSpecError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from botscore.errors import SimulationSpecError
from botscore.simulator.profiles import DEFAULT_MIX, MIXES

__all__ = [
    "SimulationSpec",
    "check_bot_share",
    "check_duration",
    "check_mix",
    "check_rate",
    "check_seed",
    "check_speedup",
    "check_users",
]


# A population is built in memory first: 200,000 visitors take about a minute on 2 cores,
# so this many about five; far more would look like a hang.
MAX_USERS = 1_000_000


def check_users(users: int) -> None:
    """A population is a whole number of visitors, at least one and at most ``MAX_USERS``."""
    if isinstance(users, bool) or not isinstance(users, int) or not 1 <= users <= MAX_USERS:
        raise SimulationSpecError(
            f"users must be a whole number from 1 to {MAX_USERS:,}, got {users!r}"
        )


def check_bot_share(bot_share: float) -> None:
    if not _is_number(bot_share) or not 0.0 <= bot_share <= 1.0:
        raise SimulationSpecError(f"bot_share must be within [0, 1], got {bot_share!r}")


def check_rate(rate: float) -> None:
    if not _is_number(rate) or not 0.0 < rate < math.inf:
        raise SimulationSpecError(f"rate must be a positive number of requests/s, got {rate!r}")


def check_duration(duration_s: float) -> None:
    if not _is_number(duration_s) or not 0.0 < duration_s < math.inf:
        raise SimulationSpecError(
            f"duration_s must be a positive number of simulated seconds, got {duration_s!r}"
        )


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SimulationSpecError(f"seed must be a whole number, got {seed!r}")


def check_speedup(speedup: float) -> None:
    if not _is_number(speedup) or not 0.0 < speedup < math.inf:
        raise SimulationSpecError(
            f"speedup must be a positive number of simulated seconds per wall second, "
            f"got {speedup!r}"
        )


def check_mix(mix: str) -> None:
    if mix not in MIXES:
        raise SimulationSpecError(f"mix must be one of {', '.join(MIXES)}, got {mix!r}")


def _is_number(value: object) -> bool:
    # NaN fails every comparison, so the range checks after this one also refuse it.
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class SimulationSpec:
    """One simulation: who visits, how fast, for how long, from which seed.

    The defaults are ``botscore simulate``'s. Whether ``rate`` is reachable depends on
    the population drawn, so ``TrafficGenerator`` checks that once it has one.
    """

    # Visitors in the population, bots included.
    users: int = 2000
    # Share of ``users`` that are bots, split over the bot kinds by their ``share``.
    bot_share: float = 0.3
    # Mean requests per simulated second, over all users.
    rate: float = 100.0
    # Simulated seconds of traffic.
    duration_s: float = 600.0
    # The same seed gives the same population and the same requests.
    seed: int = 1
    # Simulated seconds per wall second when the traffic is sent live.
    speedup: float = 1.0
    # Which kinds visit (``profiles.MIXES``).
    mix: str = DEFAULT_MIX

    def __post_init__(self) -> None:
        check_users(self.users)
        check_bot_share(self.bot_share)
        check_rate(self.rate)
        check_duration(self.duration_s)
        check_seed(self.seed)
        check_speedup(self.speedup)
        check_mix(self.mix)

    @property
    def clock_lead_ms(self) -> int:
        """How far ahead of the wall clock the last request is stamped when sent live.

        Above speedup 1 simulated time outruns the wall clock, so the feature stage's
        ``max_event_skew_ms`` and the enforcer's ``max_clock_skew_ms`` must allow this much.
        """
        if self.speedup <= 1:
            return 0
        return math.ceil(self.duration_s * 1000 * (1 - 1 / self.speedup))
