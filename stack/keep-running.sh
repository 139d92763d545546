#!/usr/bin/env bash
# Usage: stack/keep-running.sh NAME LOG COMMAND [ARG...]
#
# Run COMMAND with its output appended to LOG, and start it again when it dies: `make run`
# has no Storm supervisor, and one component's crash used to end the whole loop. A
# component that dies a sixth time within ten minutes is given up on: this exits with its
# status, naming it, and `make run` stops. Stopped by a signal (`make run`'s clean-up sends
# SIGTERM to this script's process group, COMMAND included), it exits 0.
# BOTSCORE_RESTART_DELAY_S (5) is the wait before a restart.
#
# With BOTSCORE_START_LOCK=FILE and BOTSCORE_STARTED_PATTERN=REGEX, COMMAND is started only
# while holding an exclusive lock on FILE, kept until a line COMMAND logs since its start
# matches REGEX, COMMAND dies, or 300 s passed: `sparse run` rebuilds _build/ as it starts,
# so two topologies restarting at once would build over each other; the lock makes them
# take turns.
#
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# >= 3)) || usage_from_header "$0"
name=$1 log=$2
shift 2
log_name="run-local: $name"

max_restarts=5
restart_window_s=600
delay_s=${BOTSCORE_RESTART_DELAY_S:-5}
restarts=()
stopping=0
child=
trap 'stopping=1; [[ -n $child ]] && kill -TERM "$child" 2>/dev/null' TERM INT

lock=${BOTSCORE_START_LOCK:-}
started_pattern=${BOTSCORE_STARTED_PATTERN:-}
[[ -z $lock || -n $started_pattern ]] || die "BOTSCORE_START_LOCK needs BOTSCORE_STARTED_PATTERN"
lock_fd=
[[ -n $lock ]] && exec {lock_fd}>>"$lock"

# started FROM_LINE: COMMAND logged a line matching the pattern after line FROM_LINE of the
# log, died, or took 300 s; then the lock is let go.
started() {
  local from=$1 deadline=$((SECONDS + 300))
  until tail -n "+$((from + 1))" "$log" | grep -Eq -- "$started_pattern"; do
    ((stopping || SECONDS >= deadline)) && break
    kill -0 "$child" 2>/dev/null || break
    sleep 0.5
  done
  flock -u "$lock_fd"
}

while :; do
  # Waiting for the lock, a signal ends the script as it would the wait for COMMAND.
  [[ -n $lock_fd ]] && { flock "$lock_fd" || exit 0; }
  ((stopping)) && exit 0
  echo "=== $(date -u +%FT%TZ) starting: $*" >>"$log"
  from=$(wc -l <"$log")
  # COMMAND does not hold the lock: only this script lets it go.
  if [[ -n $lock_fd ]]; then "$@" {lock_fd}>&- >>"$log" 2>&1 & else "$@" >>"$log" 2>&1 & fi
  child=$!
  [[ -n $lock_fd ]] && started "$from"
  # A trapped signal interrupts the wait: wait again for the child's own status.
  while wait "$child"; status=$?; ((status > 128)) && kill -0 "$child" 2>/dev/null; do :; done
  ((stopping || status == 0)) && exit 0
  now=$(date +%s)
  recent=()
  for at in "${restarts[@]}"; do
    ((now - at < restart_window_s)) && recent+=("$at")
  done
  restarts=("${recent[@]}")
  if ((${#restarts[@]} >= max_restarts)); then
    info "stopped (exit $status) for the $((max_restarts + 1))th time in $((restart_window_s / 60)) minutes: giving up (log: $log)"
    exit "$status"
  fi
  restarts+=("$now")
  info "stopped (exit $status); starting it again in $delay_s s, it reads on from its last commit (log: $log)"
  tail -n 3 "$log" | sed 's/^/  /' >&2
  sleep "$delay_s" &
  child=$!
  wait "$child"
  ((stopping)) && exit 0
done
