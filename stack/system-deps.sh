#!/usr/bin/env bash
# Install the Debian packages the stack needs, only when something is missing.
# Java 17 and Maven come with the machine; Leiningen, Redis and protoc from Debian.
set -euo pipefail

need_java_major=17

missing=()
command -v lein >/dev/null || missing+=(leiningen)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v mvn >/dev/null || missing+=(maven)
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v python3 >/dev/null || missing+=(python3 python3-venv)

if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [[ -z $java_major || $java_major -lt $need_java_major ]]; then
  echo "error: Java $need_java_major or newer is required (found: ${java_major:-none}); set JAVA_HOME or install openjdk-17" >&2
  exit 1
fi
python3 - <<'PY' || { echo "error: Python 3.11 or newer is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
