"""A component's parallelism from the settings, for each environment of config.json.

A topology file is read before streamparse knows which environment ``sparse run`` or
``sparse submit`` was given, but streamparse takes a ``par`` of ``{environment: count}``
and picks the count of the one named (``-e``). So a count that operators set in
config.json's options, or as a ``BOTSCORE_*`` variable, reaches Storm without anyone
editing a topology file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamparse.util import get_config

from botscore.errors import ConfigError
from botscore.settings import Settings

__all__ = ["per_environment"]


def per_environment(
    count: Callable[[Settings], int], config: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """``count`` of each environment's settings in ``config`` (by default the config.json
    that ``sparse`` loaded): a component's ``par``."""
    if config is None:
        config = get_config()  # cached by sparse before it imports the topology
    envs = config.get("envs")
    if not isinstance(envs, Mapping) or not envs:
        raise ConfigError('config.json defines no environments: add one under "envs"')
    counts = {}
    for name, env in envs.items():
        options = env.get("options", {}) if isinstance(env, Mapping) else None
        if not isinstance(options, Mapping):
            raise ConfigError(f'config.json: "options" of environment {name!r} must be an object')
        try:
            counts[name] = count(Settings.from_options(options))
        except ConfigError as exc:
            raise ConfigError(f"config.json, environment {name!r}: {exc}") from None
    return counts
