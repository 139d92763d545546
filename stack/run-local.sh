#!/usr/bin/env bash
# `make run`: the whole loop on this machine, until Ctrl-C. Simulated edge traffic goes to
# Kafka; the aggregation topology turns it into features, the scoring topology into threat
# scores, and the enforcement consumer into the edge's decisions in Redis, which the
# simulator applies. Both topologies run in Storm local mode (`sparse run`).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${BOTSCORE_STATE:-$PWD/.stack}
LOGS=$STATE/logs
mkdir -p "$LOGS"
RATE=${BOTSCORE_SIM_RATE:-100}
SPEEDUP=${BOTSCORE_SIM_SPEEDUP:-1}
# A new population each run, unless asked: the edge's decisions from the last run stay in
# Redis for their TTL and would otherwise greet the same users.
SEED=${BOTSCORE_SIM_SEED:-$(date +%s)}

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo
  echo "stopped; services are still up (make down stops them); logs in $LOGS"
}
# Ctrl-C is how this is meant to stop, so it is not an error.
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

# `sparse run` rebuilds _build/ (lein clean + uberjar), so the second topology is only
# started once the first one runs from its own copy of the jar.
start_topology() {
  local name=$1 log=$LOGS/sparse-run-$1.log
  echo "$name topology: sparse run -n $name (log: $log)"
  setsid sparse run -n "$name" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do
    grep -q "reading .* as group" "$log" 2>/dev/null && return
    kill -0 "$pid" 2>/dev/null || { echo "error: $name topology stopped; last lines:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.5
  done
  echo "error: $name topology not reading after 300 s; see $log" >&2
  exit 1
}

start_topology aggregation
start_topology scoring
echo "enforcement: botscore enforce (log: $LOGS/enforce.log)"
setsid botscore enforce >"$LOGS/enforce.log" 2>&1 &
pids+=($!)
echo "edge simulator: $RATE requests/s (x$SPEEDUP), seed $SEED, decisions applied; ground truth in $STATE/simulation-labels.csv"
botscore simulate --rate "$RATE" --speedup "$SPEEDUP" --seed "$SEED" --duration 31536000 --enforce \
  --labels "$STATE/simulation-labels.csv" &
pids+=($!)

# Whichever stops first (a crash, or Ctrl-C) stops the others.
if ! wait -n; then
  echo "a process stopped with an error; last lines of the logs:" >&2
  tail -n 5 "$LOGS"/sparse-run-*.log "$LOGS/enforce.log" >&2
  exit 1
fi
