#!/usr/bin/env bash
# The Go side of the wire contract, built with the machine's Go (1.26 or later, as
# clients/edge/go.mod says): protoc-gen-go at the version gen/go/go.mod pins (for
# `make proto`), and botscore-edge, the Go edge client of clients/edge. Go keeps its
# modules and build cache in its own folders (~/go/pkg/mod, ~/.cache/go-build), outside
# the clone; the plugin goes to the cache dir, the client (built from this clone) to the
# state dir.
#
# Usage: edge.sh build    (builds botscore-edge; prints its path)
#        edge.sh plugin   (builds protoc-gen-go; prints its path)
#        edge.sh lint     (gofmt and go vet of both modules)
#
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=go

modules=("$repo_root/gen/go" "$repo_root/clients/edge")

# Go's own installer puts it in /usr/local/go, which a login shell's PATH may not name.
need_go() {
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || die "no go on PATH: install Go 1.26 or later (clients/edge/go.mod)"
}

build() {
  local out=$state_dir/bin/botscore-edge
  mkdir -p "$(dirname "$out")"
  go build -C "$repo_root/clients/edge" -buildvcs=false -o "$out" . || die "building botscore-edge failed"
  echo "$out"
}

# Built inside gen/go's module, so its go.mod's google.golang.org/protobuf is the one pin.
plugin() {
  local out=$cache_dir/go/bin/protoc-gen-go
  mkdir -p "$(dirname "$out")"
  go build -C "$repo_root/gen/go" -buildvcs=false -o "$out" google.golang.org/protobuf/cmd/protoc-gen-go ||
    die "building protoc-gen-go failed"
  echo "$out"
}

lint() {
  local module unformatted
  for module in "${modules[@]}"; do
    unformatted=$(gofmt -l "$module")
    [[ -z $unformatted ]] || die "not gofmt-formatted (run gofmt -w): $unformatted"
    go vet -C "$module" ./... || die "go vet found problems in $module"
  done
}

need_go
case "${1:-}" in
  build) build ;;
  plugin) plugin ;;
  lint) lint ;;
  *) usage_from_header "$0" ;;
esac
