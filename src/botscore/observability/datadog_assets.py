"""Datadog dashboards and monitors kept as code: load, check offline, push.

Each file under ``monitoring/dashboards`` and ``monitoring/monitors`` is exactly the body of
the Datadog API's create request. The offline check parses it with ``datadog-api-client``'s
models, which accept what they cannot parse (an unknown widget becomes an "unparsed" object,
an unknown field an extra property), so the check walks the parsed tree and reports both; it
also refuses a query on a metric the catalogue does not declare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.model_utils import (
    ModelComposed,
    ModelNormal,
    ModelSimple,
    OpenApiModel,
    UnparsedObject,
    validate_and_convert_types,
)
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest

from botscore.errors import ConfigError
from botscore.observability.catalog import (
    EXTERNAL_PREFIXES,
    constant_tags,
    metric_for,
    queryable_names,
)

__all__ = [
    "Asset",
    "AssetKind",
    "grouped_tags",
    "load_assets",
    "metric_names",
    "problems",
    "push",
]


class AssetKind(StrEnum):
    DASHBOARD = "dashboard"
    MONITOR = "monitor"


_MODELS: dict[AssetKind, type[OpenApiModel]] = {
    AssetKind.DASHBOARD: Dashboard,
    AssetKind.MONITOR: Monitor,
}
_FOLDERS = {AssetKind.DASHBOARD: "dashboards", AssetKind.MONITOR: "monitors"}
# A metric in a query, after an aggregator and a colon (``avg:botscore.x{...}``, a monitor's
# ``avg(last_5m):sum:botscore.x{...}``), with the tags it is grouped by (``by {reason}``).
_GROUPED = re.compile(
    r"(?:^|[\s(,:])([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)\s*\{[^}]*\}(?:\s*by\s*\{([^}]*)\})?"
)


@dataclass(frozen=True)
class Asset:
    kind: AssetKind
    path: Path
    body: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.body.get("title") or self.body.get("name") or self.path.stem)


def load_assets(root: Path) -> list[Asset]:
    """Every dashboard and monitor file under ``root``; ``ConfigError`` names a file that
    cannot be read or is not a JSON object."""
    assets = []
    for kind, folder in _FOLDERS.items():
        for path in sorted((root / folder).glob("*.json")):
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError
                raise ConfigError(f"{path}: not JSON: {exc}") from None
            except RecursionError:
                raise ConfigError(f"{path}: its JSON nests too deeply to read") from None
            if not isinstance(body, dict):
                raise ConfigError(f"{path}: the request body must be a JSON object")
            assets.append(Asset(kind, path, body))
    return assets


def problems(asset: Asset) -> list[str]:
    """What the Datadog API would refuse or show empty; an empty list when the asset is sound."""
    try:
        parsed = _parse(asset.body, _MODELS[asset.kind])
    except Exception as exc:  # the client raises several unrelated types for a bad body
        return [f"not a valid {asset.kind} body: {exc}"]
    found = list(_unparsed(parsed, asset.kind.value))
    known = queryable_names()
    for name, keys in sorted(grouped_tags(asset.body).items()):
        if name.startswith("botscore.") and name not in known:
            found.append(f"query on {name}, which no component sends (observability.catalog)")
        elif name.startswith("botscore."):
            component, _, spec = metric_for(name)
            sent = {*spec.tags, *constant_tags(component)}
            found += [
                f"{name} grouped by {key}, a tag it is never sent with"
                for key in sorted(keys - sent)
            ]
        elif not name.startswith(EXTERNAL_PREFIXES):
            found.append(f"query on {name}, neither ours nor an integration's")
    return found


def metric_names(body: Any) -> set[str]:
    """Metric names used by every query string in ``body`` (``q``, ``query``, formulas' queries)."""
    return set(grouped_tags(body))


def grouped_tags(body: Any) -> dict[str, set[str]]:
    """Each metric a query of ``body`` uses -> the tag keys those queries group it by."""
    grouped: dict[str, set[str]] = {}
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("q", "query") and isinstance(value, str):
                for name, by in _GROUPED.findall(value):
                    keys = {k.strip() for k in by.split(",") if k.strip()}
                    grouped.setdefault(name, set()).update(keys)
            else:
                for name, keys in grouped_tags(value).items():
                    grouped.setdefault(name, set()).update(keys)
    elif isinstance(body, list):
        for item in body:
            for name, keys in grouped_tags(item).items():
                grouped.setdefault(name, set()).update(keys)
    return grouped


def _unparsed(value: Any, path: str) -> Iterator[str]:
    """Paths of parts the client could not parse, and of fields its models do not know."""
    if isinstance(value, UnparsedObject):
        yield f"{path}: not understood by the API models ({_brief(value)})"
    elif isinstance(value, ModelSimple) and value._unparsed:
        yield f"{path}: {value.value!r} not understood by the API models (not an allowed value)"
    elif isinstance(value, ModelComposed):
        for instance in value._composed_instances:
            yield from _unparsed(instance, path)
    elif isinstance(value, ModelNormal):
        names = type(value).attribute_map
        for key, item in value._data_store.items():
            if key not in names:
                yield f"{path}.{key}: unknown field of {type(value).__name__}"
            else:
                yield from _unparsed(item, f"{path}.{names[key]}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _unparsed(item, f"{path}[{n}]")


def _parse(body: dict[str, Any], model: type[OpenApiModel]) -> Any:
    return validate_and_convert_types(body, (model,), ["body"], True, True, Configuration())


def _brief(value: UnparsedObject) -> str:
    text = json.dumps(value.to_dict(), default=str, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def push(
    assets: list[Asset], api_key: str, app_key: str, site: str | None, host: str | None = None
) -> list[str]:
    """Create or update each asset (matched by title); returns what was done, one line each.

    ``host`` replaces the site's API address (a proxy, or a local server in tests).
    """
    configuration = Configuration(host=host)
    configuration.api_key["apiKeyAuth"] = api_key
    configuration.api_key["appKeyAuth"] = app_key
    if site:
        configuration.server_variables["site"] = site
    done = []
    with ApiClient(configuration) as client:
        dashboards = DashboardsApi(client)
        monitors = MonitorsApi(client)
        existing_dashboards = {d.title: d.id for d in dashboards.list_dashboards().dashboards or []}
        existing_monitors = {m.name: m.id for m in monitors.list_monitors()}
        for asset in assets:
            if asset.kind is AssetKind.DASHBOARD:
                dashboard = _parse(asset.body, Dashboard)
                if asset.title in existing_dashboards:
                    dashboards.update_dashboard(existing_dashboards[asset.title], dashboard)
                    done.append(f"updated dashboard {asset.title}")
                else:
                    dashboards.create_dashboard(dashboard)
                    done.append(f"created dashboard {asset.title}")
            elif asset.title in existing_monitors:
                update = _parse(asset.body, MonitorUpdateRequest)
                monitors.update_monitor(existing_monitors[asset.title], update)
                done.append(f"updated monitor {asset.title}")
            else:
                monitors.create_monitor(_parse(asset.body, Monitor))
                done.append(f"created monitor {asset.title}")
    return done
