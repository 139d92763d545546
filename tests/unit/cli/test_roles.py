"""Every command that reads settings reads them as one role, the one its job needs."""

from __future__ import annotations

import argparse

from botscore.cli.main import build_parser
from botscore.vocabulary import Role

EXPECTED = {
    "topics": Role.ADMIN,
    "access": Role.ADMIN,
    "feed": Role.AGGREGATION,
    "watch": Role.ADMIN,
    "simulate": Role.EDGE,
    "enforce": Role.ENFORCER,
    "edge": Role.EDGE,
    "dead-letters": Role.ADMIN,
    "models": Role.MODELS,
    "backfill": Role.ADMIN,
    "datadog": Role.ADMIN,
    "storm": Role.ADMIN,
    "top": Role.ADMIN,
}


def test_each_command_reads_its_settings_as_its_role():
    (subparsers,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    roles = {}
    for name, parser in subparsers.choices.items():
        defaults = parser._defaults
        if defaults.get("needs_settings", True):
            roles[name] = defaults.get("role")
    assert roles == EXPECTED
