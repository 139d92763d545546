#!/usr/bin/env bash
# Three local KRaft Kafka nodes on 127.0.0.1 (each a broker and a controller), from the
# jars `kafka.sh install` assembles: a cluster whose topics have three replicas, for the
# tests that kill a broker mid-stream and for trying a replicated set-up by hand. It is
# not part of `make up`; `make down` stops it.
#
# Usage: replicated.sh start [NODE]   (all three nodes, or node 1, 2 or 3; waits until the
#                                      running nodes all see each other)
#        replicated.sh stop [NODE]    (controlled shutdown)
#        replicated.sh kill NODE      (SIGKILL, as a crash would)
#        replicated.sh status
#        replicated.sh bootstrap      (the three brokers, for kafka.bootstrap_servers)
#
# Environment: KAFKA_REPLICATED_PORT (9192: node N takes clients on 9191+N and its
#   controller on 9194+N), KAFKA_REPLICATED_HEAP_OPTS (-Xms128m -Xmx384m),
#   KAFKA_START_TIMEOUT (60 s), BOTSCORE_STATE (<repo>/.stack: kafka-replicated/node-N).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=kafka-replicated

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_sh=$here/kafka.sh
state=$state_dir/kafka-replicated
cluster_id_file=$state/cluster.id
readonly KAFKA_REPLICATED_PORT="${KAFKA_REPLICATED_PORT:-9192}"
readonly KAFKA_REPLICATED_HEAP_OPTS="${KAFKA_REPLICATED_HEAP_OPTS:--Xms128m -Xmx384m}"
readonly KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
nodes=(1 2 3)

client_port() { echo $((KAFKA_REPLICATED_PORT + $1 - 1)); }
controller_port() { echo $((KAFKA_REPLICATED_PORT + 2 + $1)); }
node_dir() { echo "$state/node-$1"; }
node_config() { echo "$(node_dir "$1")/server.properties"; }
node_pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
node_pid() { pid_from_file "$(node_pid_file "$1")" "kafka.Kafka $(node_config "$1")"; }

bootstrap() {
  local n servers=()
  for n in "${nodes[@]}"; do servers+=("127.0.0.1:$(client_port "$n")"); done
  local IFS=,
  echo "${servers[*]}"
}

voters() {
  local n voters=()
  for n in "${nodes[@]}"; do voters+=("$n@127.0.0.1:$(controller_port "$n")"); done
  local IFS=,
  echo "${voters[*]}"
}

# The node named on the command line: 1, 2 or 3.
node_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "expected a node: 1, 2 or 3 (got '${1:-}')"
  echo "$1"
}

render_config() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/data"
  sed -e "s|@NODE_ID@|$n|g" -e "s|@VOTERS@|$(voters)|g" \
    -e "s|@PORT@|$(client_port "$n")|g" -e "s|@CONTROLLER_PORT@|$(controller_port "$n")|g" \
    -e "s|@DATA_DIR@|$dir/data|g" "$here/replicated.properties.in" >"$(node_config "$n")"
}

# Every node's storage is formatted once, with the cluster's one id; formatting again
# would throw its data away.
format_once() {
  local n=$1 dir
  dir=$(node_dir "$n")
  [[ -f $dir/data/meta.properties ]] && return 0
  if [[ ! -s $cluster_id_file ]]; then
    mkdir -p "$state"
    "$kafka_sh" run-class kafka.tools.StorageTool random-uuid >"$cluster_id_file"
  fi
  "$kafka_sh" run-class kafka.tools.StorageTool format -t "$(<"$cluster_id_file")" \
    -c "$(node_config "$n")" >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die "formatting node $n's storage failed"; }
}

launch() {
  local n=$1 dir
  dir=$(node_dir "$n")
  require_port_free "$(client_port "$n")" KAFKA_REPLICATED_PORT
  require_port_free "$(controller_port "$n")" KAFKA_REPLICATED_PORT
  # Warnings and errors go to kafka.out (kafka.sh's tool logging).
  KAFKA_TOOL_OPTS="$KAFKA_REPLICATED_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20" \
    nohup "$kafka_sh" run-class kafka.Kafka "$(node_config "$n")" >"$dir/kafka.out" 2>&1 </dev/null &
  echo $! >"$(node_pid_file "$n")"
}

running_nodes() {
  local n
  for n in "${nodes[@]}"; do node_pid "$n" >/dev/null && echo "$n"; done
  return 0
}

# Healthy: every running node answers, listing as many unfenced brokers as there run.
all_see_each_other() {
  local running n seen
  mapfile -t running < <(running_nodes)
  for n in "${running[@]}"; do
    seen=$(kafka_broker_count "$(client_port "$n")") || return 1
    ((seen == ${#running[@]})) || return 1
  done
}

# Gives up at once when a node that was started exits (bad config, port clash).
healthy_unless_exited() {
  local n
  for n in "$@"; do
    node_pid "$n" >/dev/null ||
      { tail -n 30 "$(node_dir "$n")/kafka.out" >&2; die "node $n exited during startup"; }
  done
  all_see_each_other
}

cmd_start() {
  local n started=()
  "$kafka_sh" install
  for n in "${@:-${nodes[@]}}"; do
    node_pid "$n" >/dev/null && continue
    render_config "$n"
    format_once "$n"
    launch "$n"
    started+=("$n")
  done
  local started_us
  started_us=$(now_us)
  wait_for "$KAFKA_START_TIMEOUT" 0.25 healthy_unless_exited "${started[@]}" ||
    die "nodes $(running_nodes | xargs) do not all see each other after ${KAFKA_START_TIMEOUT}s"
  info "up on $(bootstrap): nodes $(running_nodes | xargs) running" \
    "(healthy after $(seconds_since "$started_us"))"
}

# All nodes are told at once. Whichever stops last finds no controller quorum left for its
# controlled shutdown and would wait for one until killed: 10 s, then SIGKILL (what it
# had written is in its log files, which it recovers on its next start).
cmd_stop() {
  local n pid
  for n in "${@:-${nodes[@]}}"; do
    if pid=$(node_pid "$n"); then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for n in "${@:-${nodes[@]}}"; do
    if pid=$(node_pid "$n"); then
      stop_pid "$pid" 10 "node $n"
      info "node $n stopped (pid $pid)"
    fi
    rm -f "$(node_pid_file "$n")"
  done
}

cmd_kill() {
  local n=$1 pid
  pid=$(node_pid "$n") || die "node $n is not running"
  kill -KILL "$pid"
  wait_for 10 0.1 pid_gone "$pid" || die "node $n (pid $pid) outlived SIGKILL"
  rm -f "$(node_pid_file "$n")"
  info "node $n killed (pid $pid)"
}

cmd_status() {
  local n pid rc=0
  for n in "${nodes[@]}"; do
    if pid=$(node_pid "$n"); then
      say "node $n up (pid $pid) on 127.0.0.1:$(client_port "$n")," \
        "sees $(kafka_broker_count "$(client_port "$n")" || echo no) brokers"
    else
      say "node $n down"
      rc=1
    fi
  done
  return "$rc"
}

usage() { usage_from_header "${BASH_SOURCE[0]}" "$@"; }

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  case "$cmd" in
    start) if (($#)); then cmd_start "$(node_arg "$1")"; else cmd_start; fi ;;
    stop) if (($#)); then cmd_stop "$(node_arg "$1")"; else cmd_stop; fi ;;
    kill) cmd_kill "$(node_arg "${1:-}")" ;;
    status) cmd_status ;;
    bootstrap) bootstrap ;;
    -h | --help | help) usage 0 ;;
    *) info "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
