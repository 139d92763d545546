#!/usr/bin/env bash
# A local Redis Cluster of N primaries, each with R replicas (none by default), from Debian's
# redis-server, on 127.0.0.1, with each node's data under the state dir: for the integration
# tests that need a cluster, and for trying one by hand.
#
# Usage: cluster.sh start|stop|status
#   start: starts the nodes not running; creates the cluster when no node has slots yet (a
#     fresh state dir); waits until every node reports cluster_state:ok.
#   stop: stops every node. Their data and nodes.conf stay: start brings the same cluster
#     back, and a node whose data was lost (nodes.conf kept) rejoins with its slots, empty.
#   status: each node and the cluster's state; exit 1 unless all answer and it is ok.
# Environment: REDIS_CLUSTER_PORT (7001: the first node's port, the others follow it; each
#   node also takes its port + 10000 for the cluster bus), REDIS_CLUSTER_NODES (3: the
#   primaries, at least 3), REDIS_CLUSTER_REPLICAS (0: replicas of each primary, which
#   redis-cli pairs with them; N x (1 + R) nodes in all; keep all three the same from start
#   to stop), REDIS_CLUSTER_START_TIMEOUT (20 s), BOTSCORE_STATE (<repo>/.stack:
#   redis-cluster/PORT, one directory per node).
#
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=redis-cluster

state=$state_dir/redis-cluster
first_port=${REDIS_CLUSTER_PORT:-7001}
primary_count=${REDIS_CLUSTER_NODES:-3}
replica_count=${REDIS_CLUSTER_REPLICAS:-0}
start_timeout=${REDIS_CLUSTER_START_TIMEOUT:-20}

# The settings, checked before any command uses them.
check_settings() {
  if ! [[ $primary_count =~ ^[0-9]{1,4}$ ]] || ((10#$primary_count < 3)); then
    die "REDIS_CLUSTER_NODES must be a whole number, at least 3 (a cluster needs a majority" \
      "of primaries to agree that one failed), not '$primary_count'"
  fi
  [[ $replica_count =~ ^[0-9]{1,2}$ ]] ||
    die "REDIS_CLUSTER_REPLICAS must be a whole number (replicas of each primary), not" \
      "'$replica_count'"
  primary_count=$((10#$primary_count))
  replica_count=$((10#$replica_count))
  node_count=$((primary_count * (1 + replica_count)))
  if ! [[ $first_port =~ ^[0-9]{1,5}$ ]] || ((10#$first_port < 1)); then
    die "REDIS_CLUSTER_PORT must be a port number, not '$first_port'"
  fi
  first_port=$((10#$first_port))
  # Node N's cluster bus is on its port + 10000: the last bus port must exist.
  ((first_port + node_count - 1 + 10000 <= 65535)) ||
    die "REDIS_CLUSTER_PORT=$first_port is too high for $node_count nodes: the last node's" \
      "cluster bus (its port + 10000) would pass 65535"
  [[ $start_timeout =~ ^[0-9]{1,5}$ ]] ||
    die "REDIS_CLUSTER_START_TIMEOUT must be a whole number of seconds, not '$start_timeout'"
  start_timeout=$((10#$start_timeout))
}

ports() { seq "$first_port" $((first_port + node_count - 1)); }
addresses() { echo "127.0.0.1:$first_port-$((first_port + node_count - 1))"; }
node_dir() { echo "$state/$1"; }
pid_file() { echo "$state/$1/redis.pid"; }

# Our redis-server on PORT: the pid file's process, titled with our address and cluster
# mode (Redis sets its title so), so that a pid recycled after a crash or a kill -9 is
# never taken for it.
title() { echo "redis-server 127.0.0.1:$1 [cluster]"; }
our_pid() { pid_from_file "$(pid_file "$1")" "$(title "$1")"; }

# cli PORT ARGS...: redis-cli on node PORT. Bounded: redis-cli waits forever on a listener
# that accepts and never answers (a stopped or frozen Redis, a stuck port-forward).
cli() {
  local port=$1
  shift
  timeout 2 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

answers_ping() { redis_answers "$1"; }

# cluster_info PORT FIELD: FIELD's value in node PORT's CLUSTER INFO; fails when the node
# does not answer.
cluster_info() {
  local out value
  out=$(cli "$1" cluster info) || return 1
  value=$(tr -d '\r' <<<"$out" | sed -n "s/^$2://p")
  [[ -n $value ]] || return 1
  echo "$value"
}

# Every node answers and sees the cluster ok: all slots served (cluster-require-full-coverage
# is left at yes, so a node is not ok while any slot has no live primary).
cluster_ok() {
  local port
  for port in $(ports); do
    [[ $(cluster_info "$port" cluster_state) == ok ]] || return 1
  done
}

# node_slots PORT: the slots node PORT serves, as CLUSTER NODES lists them ("0-5460").
node_slots() {
  local out
  out=$(cli "$1" cluster nodes) || return 1
  tr -d '\r' <<<"$out" | awk '$3 ~ /myself/ { s = ""; for (i = 9; i <= NF; i++) s = s (s ? " " : "") $i; print s }'
}

# primary_of PORT: "127.0.0.1:P" when node PORT replicates the primary on P; nothing when
# it is a primary.
primary_of() {
  local out
  out=$(cli "$1" role) || return 1
  tr -d '\r' <<<"$out" | awk 'NR == 1 && $0 != "slave" { exit } NR == 2 { host = $0 } NR == 3 { print host ":" $0 }'
}

# fail_with_logs MESSAGE: MESSAGE, the tail of every node's log, exit 1.
fail_with_logs() {
  local port log
  info "$@"
  for port in $(ports); do
    log=$(node_dir "$port")/redis.log
    [[ -f $log ]] || continue
    info "log of node 127.0.0.1:$port ($log):"
    tail -n 10 "$log" >&2
  done
  exit 1
}

# start_node PORT: start the node on PORT, whose ports are free; it has not answered yet
# when this returns.
start_node() {
  local port=$1 dir
  dir=$(node_dir "$port")
  mkdir -p "$dir"
  # The roles' ACL users load again at every start (each node has its own: ACL changes
  # are not shared across a cluster).
  touch "$dir/users.acl"
  # Append-only file synced on every write: a write Redis acknowledged survives even
  # kill -9. nodes.conf, which Redis writes, holds the node's id, its slots and its peers:
  # with it a restarted node rejoins the same cluster with the same slots.
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$(pid_file "$port")" \
    --dir "$dir" --logfile "$dir/redis.log" --appendonly yes --appendfsync always --save "" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --aclfile "$dir/users.acl" ||
    fail_with_logs "redis-server on 127.0.0.1:$port did not start"
}

# create_cluster: spread the slots over the nodes, which know none yet, and join them.
create_cluster() {
  local port nodes=() out=$state/create.log
  for port in $(ports); do nodes+=("127.0.0.1:$port"); done
  info "creating the cluster: $primary_count primaries, $replica_count replica(s) of each"
  # redis-cli --cluster prompts (--cluster-yes answers) and waits for the nodes to agree,
  # with no bound of its own. It takes the first nodes listed as primaries.
  if ! timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replica_count" \
    --cluster-yes \
    </dev/null >"$out" 2>&1; then
    info "redis-cli --cluster create failed; its output ($out):"
    tail -n 20 "$out" >&2
    fail_with_logs "the cluster was not created"
  fi
}

cmd_start() {
  need_command redis-server "apt-get install redis-server"
  need_command redis-cli "apt-get install redis-tools"
  local port pid started=() empty=() assigned
  # Every node checked before any starts: a port taken stops start with no node started.
  for port in $(ports); do
    if pid=$(our_pid "$port"); then
      answers_ping "$port" ||
        die "redis-server (pid $pid) runs but does not answer on 127.0.0.1:$port; restart" \
          "the cluster: cluster.sh stop && cluster.sh start"
    else
      require_port_free "$port" "REDIS_CLUSTER_PORT"
      require_port_free $((port + 10000)) \
        "REDIS_CLUSTER_PORT (node $port's cluster bus is its port + 10000)"
      started+=("$port")
    fi
  done
  for port in "${started[@]}"; do start_node "$port"; done
  if ((${#started[@]} == 0)) && cluster_ok; then
    say "cluster already up on $(addresses)"
    return
  fi
  if ((${#started[@]})); then
    await_redis "${started[@]}" ||
      fail_with_logs "node(s) ${started[*]} did not answer within 5 s, or did not load their data within ${REDIS_LOAD_TIMEOUT_S:-60} s (REDIS_LOAD_TIMEOUT_S)"
  fi
  # A node that knows no slots is fresh: created now when all are, else lost its nodes.conf
  # (or was added by a larger REDIS_CLUSTER_NODES), which start does not repair. A node
  # that kept its nodes.conf knows its slots even with its data gone, and just rejoins.
  for port in $(ports); do
    assigned=$(cluster_info "$port" cluster_slots_assigned) ||
      fail_with_logs "node 127.0.0.1:$port does not answer CLUSTER INFO"
    if ((assigned == 0)); then empty+=("$port"); fi
  done
  if ((${#empty[@]} == node_count)); then
    create_cluster
  elif ((${#empty[@]})); then
    die "node(s) ${empty[*]} know no slots while the others do (a lost nodes.conf, or a" \
      "REDIS_CLUSTER_NODES larger than the cluster was created with); start afresh:" \
      "cluster.sh stop && rm -rf $state && cluster.sh start"
  fi
  wait_for "$start_timeout" 0.2 cluster_ok ||
    fail_with_logs "the cluster is not ok after ${start_timeout} s; cluster.sh status says what each node sees"
  say "cluster up on $(addresses)"
}

# Redis deletes its pid file on a clean shutdown only; stop deletes it in any case. The
# nodes save nodes.conf as they stop; their data stays.
cmd_stop() {
  local port
  for port in $(ports); do stop_node "$port"; done
}

stop_node() {
  # stop_pid_file's messages name the node.
  local log_name="$log_name 127.0.0.1:$1"
  stop_pid_file "$(pid_file "$1")" "$(title "$1")" redis-server 10
}

# Up = every node is ours and answers, and each sees the cluster ok.
cmd_status() {
  local port pid owner seen slots primary rc=0
  for port in $(ports); do
    if ! pid=$(our_pid "$port"); then
      if port_in_use "$port"; then
        owner=$(port_owner "$port")
        say "127.0.0.1:$port down; the port is in use by another process${owner:+ $owner}"
      else
        say "127.0.0.1:$port down"
      fi
      rc=1
    elif ! seen=$(cluster_info "$port" cluster_state); then
      say "127.0.0.1:$port: redis-server (pid $pid) does not answer"
      rc=1
    else
      slots=$(node_slots "$port") || slots=
      primary=$(primary_of "$port") || primary=
      if [[ -n $primary ]]; then
        say "127.0.0.1:$port up (pid $pid), replica of $primary, sees cluster_state:$seen"
      else
        say "127.0.0.1:$port up (pid $pid), slots ${slots:-none}, sees cluster_state:$seen"
      fi
      [[ $seen == ok ]] || rc=1
    fi
  done
  if ((rc == 0)); then
    say "cluster ok on $(addresses)"
  else
    say "cluster not ok"
  fi
  return "$rc"
}

case ${1:-} in
  start | stop | status)
    check_settings
    "cmd_$1"
    ;;
  *) usage_from_header "$0" ;;
esac
