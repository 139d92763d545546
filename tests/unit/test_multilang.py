"""The serializer choice: one config.json key sets Storm's class, bad values are refused."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from botscore.errors import ConfigError
from botscore.multilang import (
    MULTILANG_SERIALIZER,
    serializer_choice,
    storm_options,
)

ROOT = Path(__file__).resolve().parents[2]
ENVS = {"local": {"options": {"botscore.kafka.max_attempts": 10}}}


def test_msgpack_selects_the_projects_java_class():
    options = storm_options({"serializer": "msgpack", "envs": ENVS})
    assert options == {MULTILANG_SERIALIZER: "botscore.storm.MsgpackSerializer"}


def test_json_selects_storms_own_serializer_and_registers_its_values_with_kryo():
    options = storm_options({"serializer": "json", "envs": ENVS})
    assert options == {
        MULTILANG_SERIALIZER: "org.apache.storm.multilang.JsonSerializer",
        # Written out: the integration test finds each in Storm's jars.
        "topology.kryo.register": [
            "org.apache.storm.shade.net.minidev.json.JSONObject",
            "org.apache.storm.shade.net.minidev.json.JSONArray",
            "java.math.BigDecimal",
            "java.math.BigInteger",
        ],
    }


def test_no_choice_is_json_as_in_pystorm():
    assert serializer_choice({"envs": ENVS}) == "json"


def test_the_java_class_exists_in_the_java_sources():
    java = storm_options({"serializer": "msgpack"})[MULTILANG_SERIALIZER]
    assert (ROOT / "java" / (java.replace(".", "/") + ".java")).is_file()


@pytest.mark.parametrize("value", ["MsgPack", "protobuf", "", None, 1, ["json"]])
def test_an_unknown_serializer_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"\"serializer\" is .*expected one of 'json', 'msgpack'"):
        serializer_choice({"serializer": value, "envs": ENVS})


@pytest.mark.parametrize(
    ("envs", "says"),
    [
        ([], r"\"envs\" must be an object, got \[\]"),
        ("serializer-free", r"\"envs\" must be an object"),
        ({"local": None}, r"envs\.local must be an object, got None"),
        ({"local": "serializer"}, r"envs\.local must be an object"),
    ],
)
def test_environments_of_another_shape_are_config_errors(envs, says):
    with pytest.raises(ConfigError, match=says):
        serializer_choice({"serializer": "json", "envs": envs})


def test_a_serializer_per_environment_is_refused():
    envs = {"local": {"serializer": "msgpack", "options": {}}}
    with pytest.raises(ConfigError, match=r"envs\.local sets \"serializer\""):
        serializer_choice({"serializer": "msgpack", "envs": envs})


def test_msgpack_without_the_python_package_is_a_config_error(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "msgpack" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match="needs the Python package msgpack"):
        serializer_choice({"serializer": "msgpack"})
    assert serializer_choice({"serializer": "json"}) == "json"


def test_by_default_the_config_sparse_loaded_is_read(monkeypatch):
    loaded = {"serializer": "msgpack", "envs": ENVS}
    monkeypatch.setattr("botscore.multilang.get_config", lambda: loaded)
    assert storm_options()[MULTILANG_SERIALIZER] == "botscore.storm.MsgpackSerializer"


def test_the_projects_config_json_is_a_valid_choice():
    config = json.loads((ROOT / "config.json").read_text())
    assert serializer_choice(config) in ("json", "msgpack")


def test_the_cluster_workers_get_the_msgpack_library_the_jar_was_built_against():
    """`sparse submit` uploads a jar without dependencies: workers take msgpack-core from the
    Storm installation (stack/storm/pom.xml), which must be the version project.clj builds on."""
    clj = re.search(r'\[org\.msgpack/msgpack-core "([^"]+)"\]', (ROOT / "project.clj").read_text())
    pom = re.search(
        r"<msgpack\.version>([^<]+)</msgpack\.version>",
        (ROOT / "stack" / "storm" / "pom.xml").read_text(),
    )
    assert clj and pom and clj.group(1) == pom.group(1)
