"""The simulator tests' shared fixtures: one run of the default traffic and one of the wide
mix, indexed by kind and by user."""

from __future__ import annotations

from collections import defaultdict

import pytest

from botscore.simulator.population import Population
from botscore.simulator.traffic import TrafficGenerator
from botscore.v1.web_log_pb2 import WebLog

from .helpers import simulated_traffic

Traffic = tuple[
    Population,
    TrafficGenerator,
    list[WebLog],
    dict[str, list[WebLog]],
    dict[str, list[WebLog]],
    dict[str, str],
]


# Package-wide: several test modules read the same traffic, and none changes it.
@pytest.fixture(scope="package")
def traffic() -> Traffic:
    """(population, generator, events, events by kind, events by user, kind of each user)."""
    return _indexed(*simulated_traffic())


@pytest.fixture(scope="package")
def wide_traffic() -> Traffic:
    """The same as ``traffic`` for the wide mix: every kind the simulator knows."""
    return _indexed(*simulated_traffic(mix="wide"))


def _indexed(population: Population, generator: TrafficGenerator, events: list[WebLog]) -> Traffic:
    kind_of = {u.user_id: u.kind for u in population.users}
    by_kind: defaultdict[str, list[WebLog]] = defaultdict(list)
    by_user: defaultdict[str, list[WebLog]] = defaultdict(list)
    for event in events:
        by_kind[kind_of[event.user_id]].append(event)
        by_user[event.user_id].append(event)
    return population, generator, events, by_kind, by_user, kind_of
