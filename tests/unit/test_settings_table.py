"""The README's settings table is the one ``botscore.settings`` generates, so it stays complete."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from botscore.settings import Settings, env_var, settings_table

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def _readme_region(root: Path) -> str:
    text = (root / "README.md").read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "settings-table markers missing"
    return text.split(START, 1)[1].split(END, 1)[0]


def test_readme_table_is_the_generated_one(project_root):
    assert _readme_region(project_root).strip() == settings_table().strip(), (
        "README.md's settings table is out of date: run `python tools/settings_table.py`"
    )


def _all_settings() -> list[str]:
    defaults = Settings()
    return [
        f"{section.name}.{item.name}"
        for section in fields(defaults)
        for item in fields(getattr(defaults, section.name))
    ]


def test_every_setting_has_exactly_one_row():
    rows = [line for line in settings_table().splitlines() if line.startswith("| `")]
    names = [row.split("`", 2)[1] for row in rows]
    assert sorted(names) == sorted(_all_settings())
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("setting", "section", "name"),
    [
        ("kafka.sasl_password", "kafka", "sasl_password"),
        ("kafka.ssl_password", "kafka", "ssl_password"),
        ("redis.password", "redis", "password"),
    ],
)
def test_secrets_show_their_environment_variable_not_a_default(setting, section, name):
    (row,) = [r for r in settings_table().splitlines() if r.startswith(f"| `{setting}` |")]
    assert f"| environment only: `{env_var(section, name)}` |" in row


def test_closed_sets_list_their_values():
    (row,) = [
        r for r in settings_table().splitlines() if r.startswith("| `kafka.security_protocol` |")
    ]
    assert row.endswith("one of `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` |")
