"""The multilang serializer: one choice in config.json for both ends of Storm's pipe.

streamparse hands config.json's top-level ``"serializer"`` to pystorm in our components;
Storm's end is the topology setting ``topology.multilang.serializer``. If the two differ,
every component fails its handshake, so the topologies take the Storm setting from here
(``config = storm_options()``) instead of naming a class themselves.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, Final

from streamparse.util import get_config

from botscore.errors import ConfigError

__all__ = [
    "JSON_VALUE_CLASSES",
    "MULTILANG_SERIALIZER",
    "SERIALIZER_CLASSES",
    "serializer_choice",
    "storm_options",
]

MULTILANG_SERIALIZER: Final = "topology.multilang.serializer"
# pystorm's serializer name -> the Java class that speaks it on Storm's side.
SERIALIZER_CLASSES: Final[Mapping[str, str]] = {
    "json": "org.apache.storm.multilang.JsonSerializer",
    "msgpack": "botscore.storm.MsgpackSerializer",  # java/ in this repository
}
DEFAULT_SERIALIZER: Final = "json"  # pystorm's, when config.json names none


def serializer_choice(config: Mapping[str, Any]) -> str:
    """The serializer ``config`` (config.json's content) selects, checked.

    streamparse would also take a ``"serializer"`` from an environment, but a topology's
    settings are built without knowing the environment ``sparse`` was given: such a key is
    refused rather than silently split the two ends.
    """
    envs = config.get("envs", {})
    if not isinstance(envs, dict):
        raise ConfigError(f'config.json: "envs" must be an object, got {envs!r}')
    for env_name, env in envs.items():
        if not isinstance(env, dict):
            raise ConfigError(f"config.json: envs.{env_name} must be an object, got {env!r}")
        if "serializer" in env:
            raise ConfigError(
                f'config.json: envs.{env_name} sets "serializer"; set it only at the top '
                "level, where both the components and the topology settings read it"
            )
    choice = config.get("serializer", DEFAULT_SERIALIZER)
    if not isinstance(choice, str) or choice not in SERIALIZER_CLASSES:
        raise ConfigError(
            f'config.json: "serializer" is {choice!r}; expected one of '
            f"{', '.join(map(repr, SERIALIZER_CLASSES))}"
        )
    # pystorm falls back to a serializer that cannot read anything when msgpack is missing,
    # with only an ImportWarning: say it here, before Storm starts.
    if choice == "msgpack" and importlib.util.find_spec("msgpack") is None:
        raise ConfigError(
            '"serializer": "msgpack" needs the Python package msgpack (requirements.txt)'
        )
    return str(choice)


# What Storm's JSON serializer hands a bolt: json-smart maps and lists, and BigDecimal and
# BigInteger numbers. Tuples that cross workers go through Kryo, which refuses classes
# not registered (msgpack's values are plain Java lists, maps and numbers, registered).
JSON_VALUE_CLASSES: Final = (
    "org.apache.storm.shade.net.minidev.json.JSONObject",
    "org.apache.storm.shade.net.minidev.json.JSONArray",
    "java.math.BigDecimal",
    "java.math.BigInteger",
)


def storm_options(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A topology's ``config``: the Storm side of the serializer that ``config`` selects.

    By default ``config`` is the config.json that ``sparse`` itself loaded (``--config``
    included), so the two ends read the very same file.
    """
    if config is None:
        config = get_config()  # cached by sparse before it imports the topology
    choice = serializer_choice(config)
    options: dict[str, Any] = {MULTILANG_SERIALIZER: SERIALIZER_CLASSES[choice]}
    if choice == "json":
        options["topology.kryo.register"] = list(JSON_VALUE_CLASSES)
    return options
