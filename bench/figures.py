"""Figures the benches keep for ``sizing.py``: each bench's headline numbers, per machine.

``keep_figures`` prints them as one ``figures:`` line and appends that line, with the
time, the commit and the machine's cores, to ``$BOTSCORE_STATE/bench/figures.txt``
(``.stack/bench/figures.txt`` by default); ``latest_figures`` reads the newest value of
each. They are whole-machine figures: on the bench machine the broker, Redis and the
measured processes share its cores.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def figures_file() -> Path:
    return Path(os.environ.get("BOTSCORE_STATE", ROOT / ".stack")) / "bench" / "figures.txt"


def keep_figures(**values: float) -> None:
    """Print ``values`` and keep them for ``sizing.py``."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    pairs = " ".join(f"{name}={value:.6g}" for name, value in values.items())
    line = f"figures: {pairs} cores={os.cpu_count()}"
    print(line)
    path = figures_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {commit or '-'} {line}\n")


def latest_figures(path: Path) -> dict[str, tuple[float, str]]:
    """Each figure's newest value in ``path`` with when and at which commit it was kept."""
    found: dict[str, tuple[float, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stamp, commit, marker, *pairs = line.split()
        if marker != "figures:":
            continue
        for pair in pairs:
            name, _, value = pair.partition("=")
            found[name] = (float(value), f"{stamp} {commit}")
    return found
