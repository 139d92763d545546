#!/usr/bin/env bash
# nginx from Debian in front of a demo shop on 127.0.0.1, asking botscore's gate about every
# request and logging each one for botscore's log shipper (botscore.conf.in says how).
# Usage: nginx.sh start|stop|status|reopen
#   EDGE_PORT (8080): the site's port; BOTSCORE_EDGE_GATE_PORT (8181): the gate's.
#   reopen: nginx reopens its logs (after the access log was rotated).
#
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=nginx

here=$repo_root/stack/nginx
state=$state_dir/nginx
port=${EDGE_PORT:-8080}
gate_port=${BOTSCORE_EDGE_GATE_PORT:-8181}
conf=$state/nginx.conf
pid_file=$state/nginx.pid

# Debian puts nginx in /usr/sbin, which a user's PATH may not have.
nginx_bin() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }; }

# Our nginx: the pid file's master process, started with our config.
our_pid() { pid_from_file "$pid_file" "$conf"; }

answers_http() { port_in_use "$port"; }

write_conf() {
  local user_line=""
  # Started by root, workers would run as nobody, who may not read a checkout under /root.
  [[ $(id -u) -eq 0 ]] && user_line="user root;"
  mkdir -p "$state/tmp"
  sed -e "s|@STATE@|$state|g" -e "s|@SITE@|$here/site|g" -e "s|@PORT@|$port|g" \
    -e "s|@GATE_PORT@|$gate_port|g" -e "s|@USER@|$user_line|g" \
    "$here/botscore.conf.in" >"$conf"
}

cmd_start() {
  local bin pid out
  bin=$(nginx_bin) || die "nginx not found; install it: apt-get install nginx"
  if pid=$(our_pid); then
    say "already up on 127.0.0.1:$port (pid $pid)"
    return
  fi
  require_port_free "$port" EDGE_PORT
  write_conf
  out=$("$bin" -t -q -p "$state" -e "$state/error.log" -c "$conf" 2>&1) ||
    die "nginx refuses $conf: $out"
  "$bin" -p "$state" -e "$state/error.log" -c "$conf"
  if wait_for 5 0.1 answers_http; then
    say "up on http://127.0.0.1:$port (gate expected on 127.0.0.1:$gate_port; access log $state/access.log)"
    return
  fi
  info "nginx did not answer within 5 s; error log:"
  tail -20 "$state/error.log" >&2
  exit 1
}

cmd_stop() { stop_pid_file "$pid_file" "$conf" nginx 10; }

cmd_status() {
  local pid
  if pid=$(our_pid); then
    say "up on http://127.0.0.1:$port (pid $pid)"
  else
    say "down"
    return 1
  fi
}

cmd_reopen() {
  local pid
  pid=$(our_pid) || die "not running"
  kill -USR1 "$pid"
  say "reopening its logs"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reopen) cmd_reopen ;;
  *) usage_from_header "$0" ;;
esac
