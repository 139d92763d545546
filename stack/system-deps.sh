#!/usr/bin/env bash
# Install the Debian packages the stack needs, only when something is missing.
# Java 17 and Maven come with the machine; Leiningen, Redis, protoc, openssl (the local
# broker's certificates and keys) and docker-compose (its `config` validates docker-compose.yml
# in the unit tests, no Docker engine needed) from Debian.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log_name=system-deps

missing=()
command -v lein >/dev/null || missing+=(leiningen)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v openssl >/dev/null || missing+=(openssl)
command -v mvn >/dev/null || missing+=(maven)
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
command -v docker-compose >/dev/null || missing+=(docker-compose)

if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

require_java 17
python3 - <<'PY' || die "Python 3.11 or newer is required"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
