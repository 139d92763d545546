"""Generate the protobuf code from ``proto/`` (run by ``make proto``): Python into ``src/``,
Go into ``gen/go/`` (the module ``botscore/gen/go`` the files' ``go_package`` names), Java into
``gen/java/``.

Python and Go use the protoc bundled in the pinned grpcio-tools, so the output is the same on
every machine, Go with the pinned ``protoc-gen-go``; Java, which that protoc cannot make, the
protoc of the same version from Maven Central (both from ``stack/contract.sh``).
``tests/unit/wire/test_proto_generated.py`` checks the committed Python files match, the
contract tests the Go and Java ones.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
GO_MODULE = "botscore/gen/go"
JAVA_SOURCES = "gen/java/src/main/java"


def proto_files() -> list[str]:
    return [str(p.relative_to(PROTO_DIR)) for p in sorted(PROTO_DIR.rglob("*.proto"))]


def _protoc(*options: str) -> None:
    """The bundled protoc on every file of ``proto/``."""
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


def generate_java(out_dir: Path, java_protoc: Path) -> None:
    """The Java package ``io.botscore.proto.v1`` under ``out_dir``, made by ``java_protoc``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [str(java_protoc), f"-I{PROTO_DIR}", f"--java_out={out_dir}", *proto_files()]
    subprocess.run(command, check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--go-plugin", type=Path, help="protoc-gen-go; without it, no Go")
    parser.add_argument("--java-protoc", type=Path, help="protoc for Java; without it, no Java")
    args = parser.parse_args()
    generate(ROOT / "src")
    if args.go_plugin:
        generate_go(ROOT / "gen" / "go", args.go_plugin)
    if args.java_protoc:
        generate_java(ROOT / JAVA_SOURCES, args.java_protoc)
