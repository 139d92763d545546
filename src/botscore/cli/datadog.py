"""``botscore datadog``: check the dashboards and monitors offline; ``--push`` sends them.

The check needs no network and no keys. Pushing reads ``DD_API_KEY`` and ``DD_APP_KEY``
(and ``DD_SITE`` when the account is not on Datadog's default site) from the environment,
and creates or updates each asset by its title, so pushing twice changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from botscore.cli.command import Subparsers
from botscore.errors import ConfigError
from botscore.observability.datadog_assets import load_assets, problems, push
from botscore.settings import Settings
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "datadog", help="check the Datadog dashboards and monitors; --push sends them"
    )
    parser.add_argument(
        "--assets",
        type=Path,
        default=Path("monitoring"),
        help="folder with dashboards/ and monitors/ (default: %(default)s)",
    )
    parser.add_argument(
        "--push", action="store_true", help="send them to Datadog (default: check only)"
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def run(settings: Settings, args: argparse.Namespace) -> int:
    assets = load_assets(args.assets)
    if not assets:
        raise ConfigError(f"no dashboard or monitor under {args.assets}")
    failed = 0
    for asset in assets:
        found = problems(asset)
        failed += bool(found)
        print(f"{asset.kind} {asset.title!r} ({asset.path}): {'ok' if not found else 'REFUSED'}")
        for problem in found:
            print(f"  {problem}")
    if failed:
        print(f"botscore: {failed} of {len(assets)} assets refused", file=sys.stderr)
        return 1
    if not args.push:
        print(f"{len(assets)} assets checked offline; nothing sent (--push sends them)")
        return 0
    keys = {name: os.environ.get(name, "") for name in ("DD_API_KEY", "DD_APP_KEY")}
    missing = [name for name, value in keys.items() if not value]
    if missing:
        raise ConfigError(f"--push needs {' and '.join(missing)} in the environment")
    for line in push(assets, keys["DD_API_KEY"], keys["DD_APP_KEY"], os.environ.get("DD_SITE")):
        print(line)
    return 0
