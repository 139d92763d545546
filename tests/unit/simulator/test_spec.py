"""The simulation spec: its defaults, and the same checks wherever a field is taken."""

from __future__ import annotations

import pytest

from botscore.errors import SimulationSpecError
from botscore.simulator.population import build_population, population_for
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.traffic import TrafficGenerator

from .helpers import START_MS


def test_the_spec_has_the_simulate_defaults():
    assert SimulationSpec() == SimulationSpec(
        users=2000, bot_share=0.3, rate=100.0, duration_s=600.0, seed=1, speedup=1.0
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("users", 0),
        ("users", 2.5),
        ("users", True),
        ("users", 1_000_001),  # built in memory: far more would look like a hang
        ("bot_share", -0.1),
        ("bot_share", 1.5),
        ("bot_share", float("nan")),
        ("rate", 0),
        ("rate", -5.0),
        ("rate", float("inf")),
        ("duration_s", 0),
        ("duration_s", float("nan")),
        ("seed", "7"),
        ("speedup", 0),
        ("speedup", -1.0),
    ],
)
def test_a_spec_that_cannot_work_is_refused_naming_the_field(field, value):
    with pytest.raises(SimulationSpecError, match=rf"^{field} must be"):
        SimulationSpec(**{field: value})


def test_population_and_generator_check_their_fields_like_the_spec():
    with pytest.raises(SimulationSpecError, match=r"^users must be"):
        build_population(0, 0.3, 1)
    with pytest.raises(SimulationSpecError, match=r"^bot_share must be"):
        build_population(10, 1.2, 1)
    population = build_population(50, 0.3, 1)
    with pytest.raises(SimulationSpecError, match=r"^rate must be"):
        TrafficGenerator(population, 0, 10, 1, START_MS)
    with pytest.raises(SimulationSpecError, match=r"^duration_s must be"):
        TrafficGenerator(population, 5, -1, 1, START_MS)


def test_a_spec_and_its_fields_give_the_same_traffic():
    spec = SimulationSpec(users=200, bot_share=0.4, rate=30, duration_s=60, seed=8)
    by_spec = list(TrafficGenerator.from_spec(population_for(spec), spec, START_MS))
    by_fields = list(TrafficGenerator(build_population(200, 0.4, 8), 30, 60, 8, START_MS))
    assert [e.SerializeToString() for e in by_spec] == [e.SerializeToString() for e in by_fields]


@pytest.mark.parametrize(
    ("speedup", "duration_s", "lead_ms"),
    [(1.0, 3600.0, 0), (0.5, 3600.0, 0), (20.0, 3600.0, 3_420_000), (60.0, 600.0, 590_000)],
)
def test_the_clock_lead_is_how_far_simulated_time_outruns_the_wall(speedup, duration_s, lead_ms):
    assert SimulationSpec(speedup=speedup, duration_s=duration_s).clock_lead_ms == lead_ms
