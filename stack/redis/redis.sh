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

answers_ping() { redis_answers "$port"; }

# Our redis-server: the pid file's process, titled with our address (Redis sets its title so),
# so that a pid recycled after a crash or a kill -9 is never taken for it.
title="redis-server 127.0.0.1:$port"
our_pid() { pid_from_file "$pid_file" "$title"; }

cmd_start() {
  need_command redis-server "apt-get install redis-server"
  local pid
  if pid=$(our_pid); then
    if answers_ping; then
      say "already up on 127.0.0.1:$port"
      return
    fi
    die "redis-server (pid $pid) runs but does not answer on 127.0.0.1:$port; restart it: redis.sh stop && redis.sh start"
  fi
  require_port_free "$port" REDIS_PORT
  mkdir -p "$state"
  # The roles' ACL users (`botscore access` saves them there) load again at every start.
  touch "$state/users.acl"
  # Append-only file synced on every write: a write Redis acknowledged survives even
  # kill -9, so a tuple acked after its Redis update is never lost.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pid_file" \
    --dir "$state" --logfile "$state/redis.log" --appendonly yes --appendfsync always --save "" \
    --aclfile "$state/users.acl"
  if await_redis "$port"; then
    say "up on 127.0.0.1:$port"
    return
  fi
  info "redis did not answer within 5 s, or did not load its data within ${REDIS_LOAD_TIMEOUT_S:-60} s (REDIS_LOAD_TIMEOUT_S); log:"
  tail -20 "$state/redis.log" >&2
  exit 1
}

# Redis deletes its pid file on a clean shutdown only; stop deletes it in any case.
cmd_stop() { stop_pid_file "$pid_file" "$title" redis-server 10; }

# Up = our redis-server answers: another program's Redis on the port is not ours.
cmd_status() {
  local pid owner
  if ! pid=$(our_pid); then
    if port_in_use "$port"; then
      owner=$(port_owner "$port")
      say "down; 127.0.0.1:$port is in use by another process${owner:+ $owner}"
    else
      say "down"
    fi
    return 1
  fi
  if answers_ping; then
    say "up on 127.0.0.1:$port (pid $pid)"
  else
    say "redis-server (pid $pid) does not answer on 127.0.0.1:$port"
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
