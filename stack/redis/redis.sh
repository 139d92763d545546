#!/usr/bin/env bash
# Redis from Debian's redis-server, on 127.0.0.1, with its data under the state dir.
# Usage: redis.sh start|stop|status
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=redis

state=$state_dir/redis
port=${REDIS_PORT:-6379}
pid_file=$state/redis.pid

answers_ping() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

our_pid() { pid_from_file "$pid_file"; }

cmd_start() {
  need_command redis-server "apt-get install redis-server"
  if our_pid >/dev/null && answers_ping; then
    say "already up on 127.0.0.1:$port"
    return
  fi
  require_port_free "$port" REDIS_PORT
  mkdir -p "$state"
  # Append-only file synced on every write: a write Redis acknowledged survives even
  # kill -9, so a tuple acked after its Redis update is never lost.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pid_file" \
    --dir "$state" --logfile "$state/redis.log" --appendonly yes --appendfsync always --save ""
  if wait_for 5 0.1 answers_ping; then
    say "up on 127.0.0.1:$port"
    return
  fi
  info "redis did not answer within 5 s; log:"
  tail -20 "$state/redis.log" >&2
  exit 1
}

cmd_stop() {
  local pid
  pid=$(our_pid) || {
    say "not running"
    return
  }
  stop_pid "$pid" 10 redis-server
  say "stopped"
}

cmd_status() {
  if answers_ping; then
    say "up on 127.0.0.1:$port"
  else
    say "down"
    return 1
  fi
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
