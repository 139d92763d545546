"""Ground truth of a simulation, kept in its own file and never in the messages.

A detector trained or judged on simulated traffic must see only what an edge sees; the
answers (which user is which kind) go to a CSV the evaluation joins on ``user_id``.
"""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path

from botscore.errors import SimulationSpecError
from botscore.simulator.population import Population

__all__ = ["HEADER", "Label", "read_labels", "write_labels"]

HEADER = ("user_id", "kind", "is_bot")

Label = tuple[str, bool]


def write_labels(population: Population, path: str | Path) -> int:
    """Write ``user_id,kind,is_bot`` (0/1) sorted by user id; return the row count.

    Written to a temporary file and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    if not path.name or path.is_dir():
        raise SimulationSpecError(f"the labels file must be a file's path, got {str(path)!r}")
    partial = path.with_name(path.name + ".partial")
    rows = sorted(
        (u.user_id, u.kind, int(population.profiles[u.kind].is_bot)) for u in population.users
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(rows)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # there may be no such file, or no such folder
            partial.unlink()
        raise SimulationSpecError(f"cannot write the labels to {path}: {exc}") from None
    return len(rows)


def read_labels(path: str | Path) -> dict[str, Label]:
    """``user_id -> (kind, is_bot)`` from a file ``write_labels`` wrote.

    Raises ``SimulationSpecError`` when the file cannot be read or is not a labels file
    (its header differs, or a row is not a user's label).
    """
    try:
        with Path(path).open(newline="", encoding="utf-8") as src:
            reader = csv.DictReader(src)
            if tuple(reader.fieldnames or ()) != HEADER:
                found = ",".join(reader.fieldnames or ()) or "nothing"
                raise SimulationSpecError(
                    f"{path} is not a simulation labels file: its header is {found}, "
                    f"expected {','.join(HEADER)}"
                )
            labels = {}
            for row in reader:
                user_id, kind, is_bot = row["user_id"], row["kind"], row["is_bot"]
                if not user_id or not kind or is_bot not in ("0", "1") or None in row:
                    raise SimulationSpecError(
                        f"{path} line {reader.line_num}: not user_id,kind,is_bot (0 or 1)"
                    )
                labels[user_id] = (kind, is_bot == "1")
            return labels
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SimulationSpecError(f"cannot read the labels in {path}: {exc}") from None
