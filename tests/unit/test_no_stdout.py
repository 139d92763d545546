"""No code a Storm component runs writes to stdout: it is the multilang channel to Storm.

A stray ``print`` there is read by Storm as a malformed message and kills the worker. The
command-line tools (``botscore/cli/``) print their output; they never run inside Storm.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
COMPONENT_CODE = [SRC / "bolts", SRC / "spouts", SRC / "botscore"]
TOOLS = SRC / "botscore" / "cli"


def _is_stdout_write(node: ast.AST) -> bool:
    """A ``print`` without ``file=``, or any mention of ``sys.stdout``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "print" and not any(k.arg == "file" for k in node.keywords)
    return isinstance(node, ast.Attribute) and node.attr in ("stdout", "__stdout__")


def _writes_to_stdout(tree: ast.AST) -> list[int]:
    return sorted(node.lineno for node in ast.walk(tree) if _is_stdout_write(node))


def test_component_code_never_writes_to_stdout():
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for root in COMPONENT_CODE
        for path in sorted(root.rglob("*.py"))
        if TOOLS not in path.parents and "_pb2" not in path.name
        for line in _writes_to_stdout(ast.parse(path.read_text()))
    ]
    assert not offenders, f"stdout is Storm's multilang channel: {offenders}"


def test_the_check_sees_a_print():
    assert _writes_to_stdout(ast.parse("print('x')\nimport sys\nsys.stdout.write('y')")) == [1, 3]
    assert _writes_to_stdout(ast.parse("import sys\nprint('x', file=sys.stderr)")) == []
