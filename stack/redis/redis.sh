#!/usr/bin/env bash
# Redis from Debian's redis-server, on 127.0.0.1, with its data under the state dir.
# Usage: redis.sh start|stop|status
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${BOTSCORE_STATE:-$REPO/.stack}/redis
PORT=${REDIS_PORT:-6379}
PIDFILE=$STATE/redis.pid

ping() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

our_pid() {
  [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"
}

start() {
  command -v redis-server >/dev/null || { echo "error: redis-server not found (apt-get install redis-server)" >&2; exit 1; }
  if our_pid >/dev/null && ping; then echo "redis: already up on 127.0.0.1:$PORT"; return; fi
  if ping || (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
    echo "error: 127.0.0.1:$PORT is taken by another process; stop it or set REDIS_PORT" >&2
    exit 1
  fi
  mkdir -p "$STATE"
  # Append-only file synced on every write: a write Redis acknowledged survives even
  # kill -9, so a tuple acked after its Redis update is never lost.
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes --pidfile "$PIDFILE" \
    --dir "$STATE" --logfile "$STATE/redis.log" --appendonly yes --appendfsync always --save ""
  for _ in $(seq 1 50); do ping && { echo "redis: up on 127.0.0.1:$PORT"; return; }; sleep 0.1; done
  echo "error: redis did not answer within 5 s; log:" >&2
  tail -20 "$STATE/redis.log" >&2
  exit 1
}

stop() {
  local pid
  pid=$(our_pid) || { echo "redis: not running"; return; }
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { echo "redis: stopped"; return; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

status() {
  if ping; then echo "redis: up on 127.0.0.1:$PORT"; else echo "redis: down"; return 1; fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
