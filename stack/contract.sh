#!/usr/bin/env bash
# The other languages' side of the wire contract in proto/: the Go module gen/go and its
# client botscore-edge (clients/edge), built with the machine's Go (1.26 or later, as
# clients/edge/go.mod says), and the Java code in gen/java, built with Maven. Go keeps its
# modules and build cache in its own folders (~/go/pkg/mod, ~/.cache/go-build) and Maven in
# ~/.m2, outside the clone; the code generators go to the cache dir, botscore-edge (built
# from this clone) to the state dir.
#
# Usage: contract.sh edge          (builds botscore-edge; prints its path)
#        contract.sh go-plugin     (builds protoc-gen-go at gen/go/go.mod's version; prints its path)
#        contract.sh java-protoc   (protoc from Maven Central at gen/java/pom.xml's version; its path)
#        contract.sh java          (compiles gen/java; prints its class path, dependencies included)
#        contract.sh lint          (gofmt, go vet and go test of the Go modules)
#
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log_name=contract

go_modules=("$repo_root/gen/go" "$repo_root/clients/edge")
java_pom=$repo_root/gen/java/pom.xml

# Go's own installer puts it in /usr/local/go, which a login shell's PATH may not name.
need_go() {
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || die "no go on PATH: install Go 1.26 or later (clients/edge/go.mod)"
}

edge() {
  need_go
  local out=$state_dir/bin/botscore-edge
  mkdir -p "$(dirname "$out")"
  go build -C "$repo_root/clients/edge" -buildvcs=false -o "$out" . ||
    die "building botscore-edge failed"
  echo "$out"
}

# Built inside gen/go's module, so its go.mod's google.golang.org/protobuf is the one pin.
go_plugin() {
  need_go
  local out=$cache_dir/go/bin/protoc-gen-go
  mkdir -p "$(dirname "$out")"
  go build -C "$repo_root/gen/go" -buildvcs=false -o "$out" \
    google.golang.org/protobuf/cmd/protoc-gen-go || die "building protoc-gen-go failed"
  echo "$out"
}

java_protoc() {
  local version arch out
  version=$(sed -n 's:.*<protobuf.version>\(.*\)</protobuf.version>.*:\1:p' "$java_pom")
  [[ -n $version ]] || die "no <protobuf.version> in $java_pom"
  case "$(uname -m)" in
    x86_64) arch=x86_64 ;;
    aarch64) arch=aarch_64 ;;
    *) die "no protoc on Maven Central for $(uname -m)" ;;
  esac
  out=$cache_dir/java/protoc-$version
  if [[ ! -x $out ]]; then
    mkdir -p "$(dirname "$out")"
    mvn -q -f "$java_pom" dependency:copy \
      "-Dartifact=com.google.protobuf:protoc:$version:exe:linux-$arch" \
      "-DoutputDirectory=$cache_dir/java" -Dmdep.stripVersion=false >&2 ||
      die "fetching protoc $version failed"
    mv "$cache_dir/java/protoc-$version-linux-$arch.exe" "$out"
    chmod +x "$out"
  fi
  echo "$out"
}

java() {
  local classpath=$state_dir/java/classpath
  mkdir -p "$(dirname "$classpath")"
  mvn -q -f "$java_pom" compile dependency:build-classpath "-Dmdep.outputFile=$classpath" >&2 ||
    die "compiling gen/java failed"
  echo "$repo_root/gen/java/target/classes:$(cat "$classpath")"
}

lint() {
  need_go
  local module unformatted
  for module in "${go_modules[@]}"; do
    unformatted=$(gofmt -l "$module")
    [[ -z $unformatted ]] || die "not gofmt-formatted (run gofmt -w): $unformatted"
    go vet -C "$module" ./... || die "go vet found problems in $module"
    go test -C "$module" -count=1 ./... >/dev/null || die "go test failed in $module"
  done
}

case "${1:-}" in
  edge) edge ;;
  go-plugin) go_plugin ;;
  java-protoc) java_protoc ;;
  java) java ;;
  lint) lint ;;
  *) usage_from_header "$0" ;;
esac
