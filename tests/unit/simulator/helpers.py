"""Traffic for the simulator's tests: one seeded population and its requests, built like
``botscore simulate`` builds them (from a ``SimulationSpec``)."""

from __future__ import annotations

from typing import Any

from botscore.simulator.population import Population, population_for
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog

__all__ = ["START_MS", "simulated_traffic"]

START_MS = 1_700_000_000_000


def simulated_traffic(
    users: int = 600,
    bot_share: float = 0.3,
    seed: int = 11,
    rate: float = 100.0,
    duration_s: float = 400.0,
    mix: str = "classic",
    **kwargs: Any,
) -> tuple[Population, TrafficGenerator, list[WebLog]]:
    """The population, its generator (``kwargs`` go to ``TrafficGenerator.from_spec``)
    and every request it made."""
    spec = SimulationSpec(
        users=users, bot_share=bot_share, rate=rate, duration_s=duration_s, seed=seed, mix=mix
    )
    population = population_for(spec)
    generator = TrafficGenerator.from_spec(population, spec, START_MS, **kwargs)
    return population, generator, list(generator)
