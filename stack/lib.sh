# shellcheck shell=bash
# Helpers shared by the scripts under stack/ and bin/: messages, waiting with a timeout,
# TCP ports on 127.0.0.1 (and a Kafka broker's answer on one), pid-file daemons, install
# markers. Sourced, never run; it sets no shell options (each script sets its own) and
# defines the globals below.
#
# A script sources it with its path made from the script's own location, then names
# itself for its messages:
#   # shellcheck source-path=SCRIPTDIR source=../lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   log_name=kafka
# The scripts' own globals are plain, not readonly: a readonly global would make every
# `local` of the same name in these functions fail.

# The checkout this file belongs to, and the cache and state dirs the Makefile exports.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # read by the scripts that source this file
cache_dir=${BOTSCORE_CACHE:-$HOME/.cache/botscore}
# shellcheck disable=SC2034 # read by the scripts that source this file
state_dir=${BOTSCORE_STATE:-$repo_root/.stack}
# The prefix of this script's messages ("kafka: ..."); the script sets it after sourcing.
log_name=${0##*/}

# ---------------------------------------------------------------- messages --

# usage_from_header SCRIPT [STATUS]: SCRIPT's header comment from "# Usage:" to its first
# bare "#", without the comment marks, on stderr; then exit with STATUS (2).
usage_from_header() {
  sed -n '/^# Usage:/,/^#$/p' "$1" | sed -e '/^#$/d' -e 's/^# \{0,1\}//' >&2
  exit "${2:-2}"
}

# A result, on stdout.
say() { echo "$log_name: $*"; }

# Progress or a warning, on stderr.
info() { echo "$log_name: $*" >&2; }

die() {
  info "$@"
  exit 1
}

# need_command NAME HINT: stop unless NAME is on PATH; HINT says how to get it.
need_command() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; $2"
}

# debian_lein: print Leiningen's own `lein`, the first on PATH that is not bin/lein (which
# wraps it, and is on PATH first under make); fail when there is none.
debian_lein() {
  local ours candidate
  ours=$(readlink -f "$repo_root/bin/lein")
  while IFS= read -r candidate; do
    [[ $(readlink -f "$candidate") == "$ours" ]] || { echo "$candidate"; return 0; }
  done < <(type -ap lein)
  return 1
}

# The major version of the java on PATH (8 for "1.8.0_x", 17 for "17.0.2"), or nothing
# when `java -version` cannot tell.
java_major_version() {
  local version major
  version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1) || true
  major=${version%%.*}
  [[ $major == 1 ]] && major=$(echo "$version" | cut -d. -f2)
  major=${major%%[!0-9]*}
  if [[ -n $major ]]; then echo "$major"; fi
}

# require_java MIN [USER]: stop unless the java on PATH is version MIN or newer.
require_java() {
  local min=$1 user=${2:-} major
  need_command java "install a JDK $min+ (Debian: apt-get install openjdk-$min-jdk-headless)"
  major=$(java_major_version)
  if [[ -z $major ]] || ((major < min)); then
    die "Java $min or newer is required${user:+ by $user} (found: ${major:-none} on PATH);" \
      "install openjdk-$min-jdk-headless or put a newer java first on PATH"
  fi
}

# ------------------------------------------------------------------- time --

# Microseconds since the epoch, from bash itself (no date process).
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

# seconds_since START_US: the time since START_US (from now_us), as "1.234s".
seconds_since() {
  local ms=$((($(now_us) - $1) / 1000))
  printf '%d.%03ds\n' $((ms / 1000)) $((ms % 1000))
}

# wait_for SECONDS INTERVAL COMMAND [ARGS...]: run COMMAND every INTERVAL seconds until it
# succeeds; return 1 once SECONDS (a whole number) have passed without success. COMMAND
# runs in this shell, so it can give up early by calling die.
wait_for() {
  local timeout_s=$1 interval_s=$2
  shift 2
  local deadline_us=$((${EPOCHREALTIME/[.,]/} + timeout_s * 1000000))
  until "$@"; do
    ((${EPOCHREALTIME/[.,]/} < deadline_us)) || return 1
    sleep "$interval_s"
  done
}

# ------------------------------------------------------------------ redis --

# redis_ping PORT: what the Redis on 127.0.0.1:PORT answers to PING. Bounded: redis-cli
# waits forever on a listener that accepts and never answers (a stopped or frozen Redis,
# a stuck port-forward).
redis_ping() { timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null; }
redis_answers() { redis_ping "$1" | grep -q PONG; }
# Listening: PONG, or LOADING while it replays its append-only file.
redis_listens() { redis_ping "$1" | grep -qE '^(PONG|LOADING)'; }

# await_redis PORT...: until each Redis just started answers PING: 5 s to listen, then up to
# REDIS_LOAD_TIMEOUT_S (60) while it replays its append-only file, seconds for a large one
# (the tests' whole run, synced write by write, took 8 s on a busy 2-core machine).
await_redis() {
  local port
  for port in "$@"; do
    wait_for 5 0.1 redis_listens "$port" || return 1
    wait_for "${REDIS_LOAD_TIMEOUT_S:-60}" 0.2 redis_answers "$port" || return 1
  done
}

# ------------------------------------------------------------------ ports --

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  # shellcheck disable=SC2016 # $1 is the child bash's argument, expanded there
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# port_owner PORT: ss's "users:(...)" for whoever listens on PORT, when it may say.
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n 1 || true
}

# require_port_free PORT SETTING: stop when another program listens on PORT; SETTING names
# the variable(s) that move it. A daemon would die on bind, and health checks could be
# answered by that other program.
require_port_free() {
  local port=$1 setting=$2 owner
  port_in_use "$port" || return 0
  owner=$(port_owner "$port")
  die "127.0.0.1:$port is already in use by another process${owner:+ $owner}; stop it or set $setting"
}

# kafka_broker_count PORT: how many brokers the Kafka broker on 127.0.0.1:PORT lists in
# its answer to a Metadata request (v4, no topics); fails when nothing answers. A broker
# still fenced is left out of that list. Raw bytes over bash's /dev/tcp: milliseconds,
# where a JVM tool (TopicCommand --list) takes seconds.
kafka_broker_count() {
  # size 17 | api_key 3 | api_version 4 | correlation_id 1 | client_id "hc" | topics [] | allow_auto_topic_creation false
  local request='\x00\x00\x00\x11\x00\x03\x00\x04\x00\x00\x00\x01\x00\x02hc\x00\x00\x00\x00\x00'
  local reply
  # response: size(4) correlation_id(4) throttle_time_ms(4) broker_count(4) ...
  # shellcheck disable=SC2016 # $1 and $2 are the child bash's arguments, expanded there
  reply="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "$2" >&3 && head -c 16 <&3' \
    _ "$1" "$request" 2>/dev/null | od -An -v -tx1 | tr -d ' \n')" || return 1
  [[ ${#reply} == 32 && "${reply:8:8}" == 00000001 ]] || return 1
  echo $((16#${reply:24:8}))
}

# -------------------------------------------------------- pid-file daemons --

# pid_args PID: PID's command line, its arguments joined by spaces; fails once PID is gone.
# Without ps (slim images lack procps) it is read from /proc: "cannot ask" must not read as
# "not ours", or a daemon that is starting would be taken for one that died.
pid_args() {
  if command -v ps >/dev/null; then
    ps -ww -o args= -p "$1" 2>/dev/null
  else
    local args
    args=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") && [[ -n $args ]] && echo "$args"
  fi
}

# pid_from_file FILE [ARGS_PATTERN]: the pid in FILE when that process runs and, given
# ARGS_PATTERN, its command line contains it (so a recycled pid is not taken for ours).
pid_from_file() {
  local file=$1 pattern=${2:-} pid args
  [[ -f $file ]] || return 1
  pid=$(<"$file") || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_gone "$pid" && return 1
  if [[ -n $pattern ]]; then
    args=$(pid_args "$pid") || return 1
    [[ $args == *"$pattern"* ]] || return 1
  fi
  echo "$pid"
}

# pid_gone PID: PID has exited. A zombie has exited too: our daemons are orphans, and where
# PID 1 never reaps (many CI containers) their zombies stay, and kill -0 succeeds on them.
pid_gone() {
  local stat
  kill -0 "$1" 2>/dev/null || return 0
  # The state is the field after the command name, which ends with the line's last ")".
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ $stat == Z* ]]
}

# stop_pid PID GRACE_S WHAT: SIGTERM, then SIGKILL when PID still runs after GRACE_S
# seconds; returns once PID is gone. WHAT names it in the messages. Stops the script when
# PID outlives SIGKILL by 10 s (stuck in the kernel), so that `make down` never hangs.
stop_pid() {
  local pid=$1 grace_s=$2 what=$3
  kill -TERM "$pid" 2>/dev/null || true
  wait_for "$grace_s" 0.1 pid_gone "$pid" && return 0
  info "$what (pid $pid) still alive after ${grace_s}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_for 10 0.1 pid_gone "$pid" ||
    die "$what (pid $pid) still alive 10s after SIGKILL; see: ps -o pid,stat,wchan,args -p $pid"
}

# stop_pid_file FILE PATTERN WHAT GRACE_S: stop the daemon whose pid FILE holds (when its
# command line contains PATTERN, as for pid_from_file) and delete FILE, which a crash or a
# SIGKILL would leave naming a pid that is recycled later. Says "stopped" or "not running".
stop_pid_file() {
  local file=$1 pattern=$2 what=$3 grace_s=$4 pid
  if ! pid=$(pid_from_file "$file" "$pattern"); then
    rm -f "$file"
    say "not running"
    return
  fi
  stop_pid "$pid" "$grace_s" "$what"
  rm -f "$file"
  say "stopped"
}

# ---------------------------------------------------------------- installs --

# pom_property POM NAME: the first <NAME>value</NAME> in POM, so that a version is
# written down in the pom only.
pom_property() {
  sed -n "s:.*<$2>\(.*\)</$2>.*:\1:p" "$1" | head -n 1
}

# checksum FILES...: SHA-256 of the files' contents, one after the other.
checksum() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# marker_matches MARKER SUM: MARKER, written last by a complete install, holds SUM.
marker_matches() {
  [[ -f $1 && $(<"$1") == "$2" ]]
}

# replace_dir NEW DEST: NEW, built beside DEST, takes its place whole, so that a
# half-built DEST is never seen.
replace_dir() {
  rm -rf "$2"
  mv "$1" "$2"
}

# lock_cache NAME: hold an exclusive lock on $cache_dir/NAME.lock until unlock_cache or the
# script's exit. Checkouts share the cache: two installs into one directory at once would
# remove each other's half-built copy, so the second waits for the first (up to
# BOTSCORE_CACHE_LOCK_TIMEOUT, 1800 s) and then finds its work done. Release it before
# starting a daemon, which would inherit the lock and hold it for its whole life.
lock_cache() {
  need_command flock "Debian: apt-get install util-linux"
  mkdir -p "$cache_dir"
  exec {cache_lock_fd}>"$cache_dir/$1.lock"
  flock -n "$cache_lock_fd" && return 0
  info "waiting for another checkout's install into $cache_dir ($1.lock) to finish"
  flock -w "${BOTSCORE_CACHE_LOCK_TIMEOUT:-1800}" "$cache_lock_fd" ||
    die "$cache_dir/$1.lock still held after ${BOTSCORE_CACHE_LOCK_TIMEOUT:-1800} s:" \
      "is another install stuck? (fuser $cache_dir/$1.lock names it)"
}

# unlock_cache: release lock_cache's lock (nothing when none is held).
unlock_cache() {
  if [[ -n ${cache_lock_fd:-} ]]; then
    exec {cache_lock_fd}>&-
    cache_lock_fd=
  fi
}

# count_entries DIR: how many (non-hidden) entries DIR holds.
count_entries() {
  find "$1" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l
}
