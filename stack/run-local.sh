#!/usr/bin/env bash
# `make run`: the whole loop on this machine, until Ctrl-C. Simulated edge traffic goes to
# Kafka; the aggregation topology turns it into features, the scoring topology into threat
# scores, and the enforcement consumer into the edge's decisions in Redis, which the
# simulator applies. Both topologies run in Storm local mode (`sparse run`).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
log_name=run-local
cd "$repo_root"

logs=$state_dir/logs
mkdir -p "$logs"
rate=${BOTSCORE_SIM_RATE:-100}
speedup=${BOTSCORE_SIM_SPEEDUP:-1}
# Simulated seconds to run for; by default a year, so Ctrl-C is what stops it. A set
# duration stops everything when it is over, after the simulator's per-visitor figures.
duration=${BOTSCORE_SIM_DURATION:-31536000}
# classic: the five kinds the model has long known; wide adds unusual humans and human-like bots.
mix=${BOTSCORE_SIM_MIX:-classic}
# A new population each run, unless asked: the edge's decisions from the last run stay in
# Redis for their TTL and would otherwise greet the same users.
seed=${BOTSCORE_SIM_SEED:-$(date +%s)}
# Sped up, simulated time outruns the wall clock (by up to the run's year): the feature
# stage and the enforcer must accept requests and features stamped that far ahead.
if [[ $speedup != 1 ]]; then
  year_ms=31536000000
  export BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS=${BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS:-$year_ms}
  export BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS=${BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS:-$year_ms}
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stack/nginx/nginx.sh stop >/dev/null || true
  echo
  echo "stopped; services are still up (make down stops them); logs in $logs"
}
# Ctrl-C is how this is meant to stop, so it is not an error.
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

# topology_reading NAME LOG PID: the topology's spout has joined its consumer group; exits
# the script when the topology stopped instead.
topology_reading() {
  local name=$1 log=$2 pid=$3
  grep -q "reading .* as group" "$log" 2>/dev/null && return 0
  if pid_gone "$pid"; then
    info "$name topology stopped; last lines:"
    tail -20 "$log" >&2
    exit 1
  fi
  return 1
}

# `sparse run` rebuilds _build/ (lein clean + uberjar), so the second topology is only
# started once the first one runs from its own copy of the jar; restarted, they take turns
# likewise (keep-running.sh's start lock).
# keep_running NAME LOG COMMAND...: COMMAND in its own process group, started again when it
# dies (stack/keep-running.sh); its pid goes to pids, its name to names.
declare -A names=()
keep_running() {
  local name=$1 log=$2
  shift 2
  : >"$log"
  setsid stack/keep-running.sh "$name" "$log" "$@" &
  pids+=($!)
  names[$!]=$name
}

start_topology() {
  local name=$1 log=$logs/sparse-run-$1.log
  echo "$name topology: sparse run -e local -n $name (log: $log)"
  BOTSCORE_START_LOCK=$state_dir/sparse-build.lock BOTSCORE_STARTED_PATTERN="reading .* as group" \
    keep_running "$name topology" "$log" sparse run -e local -n "$name"
  wait_for 300 0.5 topology_reading "$name" "$log" "${pids[-1]}" ||
    die "$name topology not reading after 300 s; see $log"
}

start_topology aggregation
start_topology scoring
echo "enforcement: botscore enforce (log: $logs/enforce.log)"
keep_running enforcer "$logs/enforce.log" botscore enforce
# A real edge beside the simulated one, on the same topics and Redis: nginx in front of a
# demo shop, asking the gate about every request, its access log shipped to Kafka.
secret_file=$state_dir/edge-secret
[[ -s $secret_file ]] || (umask 077 && openssl rand -hex 32 >"$secret_file")
BOTSCORE_EDGE_SECRET=${BOTSCORE_EDGE_SECRET:-$(<"$secret_file")}
BOTSCORE_EDGE_ACCESS_LOG=${BOTSCORE_EDGE_ACCESS_LOG:-$state_dir/nginx/access.log}
export BOTSCORE_EDGE_SECRET BOTSCORE_EDGE_ACCESS_LOG
keep_running "edge gate" "$logs/edge-gate.log" botscore edge gate
keep_running "edge shipper" "$logs/edge-ship.log" botscore edge ship
stack/nginx/nginx.sh start
echo "real edge: http://127.0.0.1:${EDGE_PORT:-8080}/ (try curl; logs: $logs/edge-gate.log, $logs/edge-ship.log)"
# The components send their metrics to UDP 127.0.0.1:8125 (config.json's statsd_port):
# `botscore top` shows them, unless a DogStatsD agent already listens there.
statsd_port=${BOTSCORE_METRICS_STATSD_PORT:-8125}
if ss -Hlun "sport = :$statsd_port" | grep . >/dev/null; then
  echo "a DogStatsD agent listens on UDP $statsd_port: the metrics go to it (botscore top not started)"
else
  page_port=${BOTSCORE_PAGE_PORT:-8090}
  echo "figures: http://127.0.0.1:$page_port/ and botscore top (tail -f $logs/top.log; drawn to $state_dir/local-view.png when stopped)"
  keep_running "botscore top" "$logs/top.log" \
    botscore top --port "$statsd_port" --http "$page_port" --png "$state_dir/local-view.png"
fi
echo "edge simulator: $rate requests/s (x$speedup), $mix mix, seed $seed, decisions applied; ground truth in $state_dir/simulation-labels.csv"
botscore simulate --rate "$rate" --speedup "$speedup" --seed "$seed" --mix "$mix" --duration "$duration" --enforce \
  --labels "$state_dir/simulation-labels.csv" &
pids+=($!)
names[$!]="edge simulator"

# The simulator's end (its duration, Ctrl-C) stops the others, and so does a component
# that keeps dying (keep-running.sh gives up on it) or a simulator that fails.
stopped=
if ! wait -n -p stopped; then
  info "${names[$stopped]:-a process} stopped with an error; see above and its log in $logs"
  exit 1
fi
