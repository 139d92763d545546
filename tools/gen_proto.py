"""Generate the protobuf code from ``proto/`` (run by ``make proto``): Python into ``src/``,
Go into ``gen/go/`` (the module ``botscore/gen/go`` the files' ``go_package`` names).

Uses the protoc bundled in the pinned grpcio-tools, so the output is the same on every
machine, and for Go the pinned ``protoc-gen-go`` (``stack/go.sh`` installs it);
``tests/unit/wire/test_proto_generated.py`` checks the committed files match.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
GO_MODULE = "botscore/gen/go"


def proto_files() -> list[str]:
    return [str(p.relative_to(PROTO_DIR)) for p in sorted(PROTO_DIR.rglob("*.proto"))]


def _protoc(*options: str) -> None:
    if protoc.main(["protoc", f"-I{PROTO_DIR}", *options, *proto_files()]) != 0:
        raise SystemExit("protoc failed")


def generate(out_dir: Path) -> None:
    """The Python modules and their type stubs, under ``out_dir``."""
    _protoc(f"--python_out={out_dir}", f"--pyi_out={out_dir}")


def generate_go(out_dir: Path, plugin: Path) -> None:
    """The Go package ``botscore/v1`` under ``out_dir``, made by ``plugin`` (protoc-gen-go)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc(
        f"--plugin=protoc-gen-go={plugin}", f"--go_out={out_dir}", f"--go_opt=module={GO_MODULE}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--go-plugin", type=Path, help="protoc-gen-go; without it, no Go")
    args = parser.parse_args()
    generate(ROOT / "src")
    if args.go_plugin:
        generate_go(ROOT / "gen" / "go", args.go_plugin)
