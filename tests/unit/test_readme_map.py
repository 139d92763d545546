"""The README's map of the code names every package and top-level module, and only real paths."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _map_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start, end = text.index("<!-- code-map:start -->"), text.index("<!-- code-map:end -->")
    return [line for line in text[start:end].splitlines() if line.startswith("| `")]


def _mapped_paths() -> set[str]:
    """The first cell's paths; a bare name after a path stands in that path's folder."""
    paths = set()
    for row in _map_rows():
        first = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", first)
        folder = str(Path(names[0]).parent)
        for name in names:
            paths.add(name if "/" in name else f"{folder}/{name}")
    return paths


def test_every_mapped_path_exists():
    missing = [p for p in _mapped_paths() if not (ROOT / p.rstrip("/")).exists()]
    assert missing == []


def test_every_package_and_top_level_module_is_mapped():
    mapped = _mapped_paths()
    src = ROOT / "src" / "botscore"
    expected = {f"src/botscore/{p.name}/" for p in src.iterdir() if (p / "__init__.py").exists()}
    expected |= {f"src/botscore/{p.name}" for p in src.glob("*.py") if p.name != "__init__.py"}
    assert sorted(expected - mapped) == []
