"""bin/lein: `lein uberjar` and `lein deps :tree` reuse what an earlier run made from the same
inputs, and run Leiningen again when any input changed; every other command is Leiningen's.

Leiningen here is a stand-in that records each run and writes a jar naming the inputs it saw,
so the test can tell a reused jar from a rebuilt one (the real Leiningen builds the real jar
in every `sparse run` of the integration tests).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
JAR = "_build/botscore-0.1.0-SNAPSHOT-standalone.jar"

STAND_IN = """#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$LEIN_RUNS"
case "$*" in
  uberjar)
    mkdir -p _build
    cat project.clj java/* _resources/* > _build/botscore-0.1.0-SNAPSHOT-standalone.jar
    echo "Created $PWD/_build/botscore-0.1.0-SNAPSHOT.jar"
    echo "Created $PWD/_build/botscore-0.1.0-SNAPSHOT-standalone.jar" ;;
  "deps :tree") echo " [org.apache.storm/storm-core \\"$(cat project.clj)\\"]" ;;
  broken) exit 3 ;;
  *) echo "ran $*" ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with the inputs an uberjar is built from."""
    project = tmp_path / "project"
    for name, text in (
        ("project.clj", "2.8.3"),
        ("java/Serializer.java", "class A {}"),
        ("_resources/code.py", "x = 1"),
    ):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    leiningen = tmp_path / "leiningen"
    leiningen.mkdir()
    (leiningen / "lein").write_text(STAND_IN)
    (leiningen / "lein").chmod(0o755)
    return project


def lein(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """bin/lein in ``project``, ahead of the stand-in on PATH, as `make` puts bin/ first."""
    tmp = project.parent
    path = f"{ROOT / 'bin'}:{tmp / 'leiningen'}:{os.environ['PATH']}"
    return subprocess.run(
        [str(ROOT / "bin" / "lein"), *args],
        cwd=project,
        env={
            **os.environ,
            "PATH": path,
            "BOTSCORE_CACHE": str(tmp / "cache"),
            "LEIN_RUNS": str(tmp / "runs"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def runs(project: Path) -> list[str]:
    path = project.parent / "runs"
    return path.read_text().splitlines() if path.exists() else []


def test_an_uberjar_from_the_same_inputs_is_reused_and_any_change_rebuilds_it(project):
    first = lein(project, "uberjar")
    assert first.returncode == 0, first.stderr
    built = (project / JAR).read_bytes()
    (project / "_build").rename(project / "cleaned")  # `lein clean`, as `sparse run` does
    again = lein(project, "uberjar")
    assert again.returncode == 0, again.stderr
    assert runs(project) == ["uberjar"]
    assert (project / JAR).read_bytes() == built
    # streamparse takes the jar's path from the line that starts with "Created".
    assert again.stdout.splitlines() == [f"Created {project / JAR}"]
    assert "its jar reused" in again.stderr
    for changed in ("project.clj", "java/Serializer.java", "_resources/code.py"):
        (project / changed).write_text((project / changed).read_text() + " ")
        assert lein(project, "uberjar").returncode == 0
        assert (project / JAR).read_bytes() != built
        built = (project / JAR).read_bytes()
    (project / "_resources" / "new.py").write_text("")  # a new file is a change too
    assert lein(project, "uberjar").returncode == 0
    assert runs(project) == ["uberjar"] * 5


def test_the_dependency_tree_is_reused_until_project_clj_changes(project):
    first = lein(project, "deps", ":tree")
    assert lein(project, "deps", ":tree").stdout == first.stdout
    (project / "java" / "Serializer.java").write_text("class B {}")  # not in the tree
    assert lein(project, "deps", ":tree").stdout == first.stdout
    (project / "project.clj").write_text("2.8.4")
    assert "2.8.4" in lein(project, "deps", ":tree").stdout
    assert runs(project) == ["deps :tree", "deps :tree"]


def test_reuse_can_be_turned_off_and_other_commands_are_leiningens(project):
    for _ in range(2):
        assert lein(project, "uberjar", BOTSCORE_LEIN_REUSE="0").returncode == 0
    assert lein(project, "jar").stdout == "ran jar\n"
    assert runs(project) == ["uberjar", "uberjar", "jar"]


def test_a_failing_leiningen_fails_and_leaves_nothing_to_reuse(project):
    broken = project.parent / "leiningen" / "lein"
    broken.write_text(STAND_IN.replace("  uberjar)\n", "  uberjar) exit 2 ;;\n  never)\n"))
    assert lein(project, "uberjar").returncode == 2
    assert lein(project, "uberjar").returncode == 2
    assert lein(project, "broken").returncode == 3
    assert runs(project) == ["uberjar", "uberjar", "broken"]
