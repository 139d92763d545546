#!/usr/bin/env bash
# `make run`: the scoring topology in Storm local mode (`sparse run`), a steady feed of
# sample users, and their threat scores printed as they arrive, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

LOGS=${BOTSCORE_STATE:-$PWD/.stack}/logs
mkdir -p "$LOGS"
RATE=${BOTSCORE_FEED_RATE:-50}

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; services are still up (make down stops them)"
}
trap cleanup EXIT INT TERM

echo "scoring topology: sparse run (log: $LOGS/sparse-run.log)"
setsid sparse run >"$LOGS/sparse-run.log" 2>&1 &
pids+=($!)
echo "feeding sample users at $RATE/s (log: $LOGS/feed.log)"
setsid botscore feed --loop --users 1000 --rate "$RATE" >"$LOGS/feed.log" 2>&1 &
pids+=($!)
setsid botscore watch &
pids+=($!)

# Whichever stops first (a crash, or Ctrl-C) stops the others.
if ! wait -n; then
  echo "a process stopped with an error; last lines of the topology log:" >&2
  tail -20 "$LOGS/sparse-run.log" >&2
  exit 1
fi
