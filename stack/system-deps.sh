#!/usr/bin/env bash
# Install the Debian packages the stack needs, only when something is missing.
# Java 17 and Maven come with the machine; Leiningen, Redis, protoc, openssl (the local
# broker's certificates and keys), docker-compose (its `config` validates docker-compose.yml
# in the unit tests, no Docker engine needed), nginx (the real edge), Chromium (the page's
# tests), python3's venv, procps and iproute2 from Debian.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log_name=system-deps

missing=()
# bin/lein, first on PATH under make, only wraps Leiningen.
debian_lein >/dev/null || missing+=(leiningen)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v openssl >/dev/null || missing+=(openssl)
command -v mvn >/dev/null || missing+=(maven)
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
if ! command -v python3 >/dev/null; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip' 2>/dev/null; then
  # Debian ships venv's pip bootstrap apart, as python3.X-venv: without it `python3 -m venv` fails.
  missing+=("python$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv")
fi
command -v docker-compose >/dev/null || missing+=(docker-compose)
# The real edge's web server (stack/nginx); Debian puts it in /usr/sbin.
{ command -v nginx || [[ -x /usr/sbin/nginx ]]; } >/dev/null || missing+=(nginx)
# A real headless browser for the tests of `botscore top --http`'s page.
command -v chromium >/dev/null || missing+=(chromium)
# The scripts tell their daemons by command line (ps, pgrep) and name a port's owner (ss);
# slim images have neither.
{ command -v ps && command -v pgrep; } >/dev/null || missing+=(procps)
command -v ss >/dev/null || missing+=(iproute2)

if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # On a systemd machine the package just installed starts Debian's own Redis on 6379, where
  # redis.sh would then refuse to start ours.
  if [[ " ${missing[*]} " == *" redis-server "* && -d /run/systemd/system ]]; then
    say "the redis-server package started Debian's Redis service on 6379: systemctl disable --now redis-server"
    out=$("${sudo[@]}" systemctl disable --now redis-server 2>&1) ||
      die "systemctl disable --now redis-server failed: $out"
  fi
  # nginx's package starts Debian's nginx on port 80 likewise; the edge's is stack/nginx's.
  if [[ " ${missing[*]} " == *" nginx "* && -d /run/systemd/system ]]; then
    out=$("${sudo[@]}" systemctl disable --now nginx 2>&1) ||
      die "systemctl disable --now nginx failed: $out"
  fi
fi

require_java 17
python3 - <<'PY' || die "Python 3.11 or newer is required"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
