"""Parallelism per environment: what streamparse hands Storm for the environment named."""

import importlib

import pytest

from botscore.errors import ConfigError
from botscore.parallelism import per_environment
from botscore.wire.records import PublicationBatch

CONFIG = {
    "envs": {
        "local": {"options": {}},
        "cluster": {
            "options": {
                "botscore.aggregation.publishers": 3,
                "botscore.aggregation.state_shards": 8,
            }
        },
    }
}


def publishers(settings):
    return settings.aggregation.publishers


def test_each_environment_gets_its_own_settings_count(monkeypatch):
    monkeypatch.delenv("BOTSCORE_AGGREGATION_PUBLISHERS", raising=False)
    assert per_environment(publishers, CONFIG) == {"local": 1, "cluster": 3}


def test_a_variable_sets_the_count_in_every_environment(monkeypatch):
    monkeypatch.setenv("BOTSCORE_AGGREGATION_PUBLISHERS", "2")
    assert per_environment(publishers, CONFIG) == {"local": 2, "cluster": 2}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"envs": {}}, "defines no environments"),
        ({"envs": {"local": {"options": []}}}, "must be an object"),
        (
            {"envs": {"prod": {"options": {"botscore.aggregation.publishers": 17}}}},
            r"environment 'prod': aggregation.publishers \(17\) is more than "
            r"aggregation.state_shards \(16\)",
        ),
    ],
)
def test_a_config_that_cannot_say_is_refused_naming_the_environment(config, message):
    with pytest.raises(ConfigError, match=message):
        per_environment(publishers, config)


def test_the_aggregation_topology_runs_the_configured_publishers_and_producers(monkeypatch):
    monkeypatch.setenv("BOTSCORE_AGGREGATION_PUBLISHERS", "4")
    topology = importlib.reload(importlib.import_module("topologies.aggregation")).Aggregation
    par = {spec.name: spec.par for spec in topology.specs}
    assert par["due_features"] == par["publish"] == {"local": 4, "cluster": 4}
    assert par["web_logs"] == par["aggregate"] == 1


def test_each_publishers_tuples_go_to_one_producer():
    """Storm may fail a publication whose producer still holds some of its messages; made
    again by another producer, a user's newer features could reach Kafka before its older."""
    topology = importlib.import_module("topologies.aggregation").Aggregation
    [grouping] = {spec.name: spec for spec in topology.specs}["publish"].inputs.values()
    assert grouping.fields == ["publisher"]
    assert "publisher" in PublicationBatch.FIELDS
