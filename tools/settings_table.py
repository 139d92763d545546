"""Rewrite the settings table in README.md from ``src/botscore/settings.py``.

The table sits between ``<!-- settings-table:start -->`` and ``<!-- settings-table:end -->``;
``tests/unit/test_settings_table.py`` fails until this has been run after a setting changed.
Run from anywhere: ``python tools/settings_table.py [README.md]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def replace_region(text: str, body: str, start: str = START, end: str = END) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``body``."""
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise SystemExit(f"markers {start} ... {end} not found")
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n\n{body.strip()}\n\n{end}{tail}"


def main(readme: Path) -> None:
    # botscore is not installed (see bin/botscore): import it from this checkout.
    sys.path.insert(0, str(ROOT / "src"))
    from botscore.settings import settings_table

    text = readme.read_text(encoding="utf-8")
    updated = replace_region(text, settings_table())
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
        print(f"{readme}: settings table rewritten")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "README.md")
