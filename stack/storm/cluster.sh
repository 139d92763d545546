#!/usr/bin/env bash
# A Storm cluster on this machine for `sparse submit -e cluster`: ZooKeeper (the server in
# Storm's jars, ticking every half second), Nimbus and two supervisors with their own slots and local folders (so one
# can be killed), all from the Storm installation that local mode uses (install.sh).
#
# Nimbus schedules with scheduler/ beside this script (compiled here against the installed
# Storm): it moves the workers of a supervisor gone from ZooKeeper at once.
#
# Each daemon runs from its own STORM_HOME overlay under the state folder: the installed
# lib/, lib-worker/ and log4j2/ linked, and its own conf/storm.yaml (the settings in
# cluster.yaml beside this script, which docker-compose.yml's Storm services use too, then its
# own ports, slots, heap and folders). Workers read storm.yaml from their supervisor's
# STORM_HOME and inherit its environment, so the supervisors are started with the project's
# virtualenv first on PATH (workers run `streamparse_run`). A supervisor itself reads the
# storm.yaml in its own conf/ folder: the same, plus a short ZooKeeper session (see below).
#
# `start` starts the daemons that are not running, once every port they need is free; when it
# fails, it stops those it started.
#
# Usage: cluster.sh start | stop | status | conf DAEMON (prints what DAEMON reads: zoo.cfg for
#   zookeeper, storm.yaml for nimbus, supervisor-1 or supervisor-2)
# Environment: STORM_ZK_PORT (2181), STORM_NIMBUS_PORT (6627), STORM_SLOTS_1 (6700,6701),
#   STORM_SLOTS_2 (6702,6703), STORM_SUPERVISOR_PORTS (6628,6629: their Thrift ports), STORM_DAEMON_HEAP_MB (256), STORM_WORKER_HEAP_MB (512),
#   STORM_START_TIMEOUT (90 s), BOTSCORE_CACHE, BOTSCORE_STATE (as the other stack scripts).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=cluster

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
storm_home=${STORM_HOME:-$cache_dir/storm-$(pom_property "$here/pom.xml" storm.version)}
state=$state_dir/cluster
log_dir=$state/logs

zk_port=${STORM_ZK_PORT:-2181}
nimbus_port=${STORM_NIMBUS_PORT:-6627}
slots_1=${STORM_SLOTS_1:-6700,6701}
slots_2=${STORM_SLOTS_2:-6702,6703}
IFS=, read -r supervisor_port_1 supervisor_port_2 <<<"${STORM_SUPERVISOR_PORTS:-6628,6629}"
daemon_heap_mb=${STORM_DAEMON_HEAP_MB:-256}
worker_heap_mb=${STORM_WORKER_HEAP_MB:-512}
start_timeout=${STORM_START_TIMEOUT:-90}

# In start order.
daemons=(zookeeper nimbus supervisor-1 supervisor-2)

main_class() {
  case $1 in
    # Storm's shaded copy: the plain zookeeper jar in lib/ lacks the snappy classes it needs.
    zookeeper) echo org.apache.storm.shade.org.apache.zookeeper.server.ZooKeeperServerMain ;;
    nimbus) echo org.apache.storm.daemon.nimbus.Nimbus ;;
    supervisor-*) echo org.apache.storm.daemon.supervisor.Supervisor ;;
  esac
}

pid_file() { echo "$state/$1/pid"; }

scheduler_classes=$state/nimbus/scheduler

build_scheduler() {
  need_command javac "install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)"
  rm -rf "$scheduler_classes"
  javac --release 17 -Xlint:all -Werror -cp "$storm_home/lib/*" -d "$scheduler_classes" \
    "$here"/scheduler/botscore/storm/*.java || die "the scheduler in $here/scheduler does not compile"
}

# A daemon's classpath: Storm's jars and its conf/ folder, plus the scheduler for Nimbus.
daemon_classpath() {
  local classpath="$state/$1/home/lib/*:$state/$1/conf"
  [[ $1 == nimbus ]] && classpath+=":$scheduler_classes"
  echo "$classpath"
}

# The daemon's pid when it runs: its command line names its class and its own home.
daemon_pid() {
  pid_from_file "$(pid_file "$1")" "-Dstorm.home=$state/$1/home"
}

# The slots of a supervisor as a YAML list: "6700,6701" -> "[6700, 6701]".
yaml_ports() { echo "[${1//,/, }]"; }

# The daemon's storm.yaml: the settings all daemons share (cluster.yaml), then its own ports,
# slots, heap and folders.
storm_yaml() {
  local daemon=$1
  cat "$here/cluster.yaml"
  echo "storm.zookeeper.port: $zk_port"
  echo "nimbus.thrift.port: $nimbus_port"
  echo "storm.local.dir: \"$state/$daemon/local\""
  echo "storm.log.dir: \"$log_dir\""
  echo "worker.heap.memory.mb: $worker_heap_mb"
  case $daemon in
    supervisor-1)
      echo "supervisor.slots.ports: $(yaml_ports "$slots_1")"
      echo "supervisor.thrift.port: $supervisor_port_1"
      ;;
    supervisor-2)
      echo "supervisor.slots.ports: $(yaml_ports "$slots_2")"
      echo "supervisor.thrift.port: $supervisor_port_2"
      ;;
  esac
}

# A killed supervisor stays registered (an ephemeral node) until its ZooKeeper session ends,
# and Nimbus's scheduler moves its workers once it is gone and their ports refuse: a 2 s
# session (four ticks; ended within a tick of it) instead of Storm's 20 s. A supervisor whose
# session lapses under load keeps its workers (their ports accept). The supervisor's workers,
# which read $home/conf, keep Storm's 20 s.
supervisor_session_ms=2000
zk_tick_ms=500

# What a daemon's JVM reads: its storm.yaml, plus the short session for a supervisor.
daemon_yaml() {
  storm_yaml "$1"
  if [[ $1 == supervisor-* ]]; then
    echo "storm.zookeeper.session.timeout: $supervisor_session_ms"
  fi
}

# ZooKeeper's settings: sessions may last from two ticks up to Storm's 20 s default, any
# number of connections from this machine, no admin web server. Its data starts empty at each
# start, as Storm's DevZookeeper's did.
zoo_cfg() {
  echo "tickTime=$zk_tick_ms"
  echo "maxSessionTimeout=20000"
  echo "maxClientCnxns=0"
  echo "dataDir=$state/zookeeper/data"
  echo "clientPortAddress=127.0.0.1"
  echo "clientPort=$zk_port"
  echo "admin.enableServer=false"
}

write_home() {
  local daemon=$1 home=$state/$1/home
  mkdir -p "$home/conf" "$state/$daemon/local" "$log_dir"
  local dir
  for dir in lib lib-worker log4j2; do
    ln -sfn "$storm_home/$dir" "$home/$dir"
  done
  storm_yaml "$daemon" >"$home/conf/storm.yaml"
  mkdir -p "$state/$daemon/conf"
  if [[ $daemon == zookeeper ]]; then
    rm -rf "$state/zookeeper/data"
    zoo_cfg >"$state/zookeeper/conf/zoo.cfg"
  else
    daemon_yaml "$daemon" >"$state/$daemon/conf/storm.yaml"
  fi
}

# The daemons this start launched, in order (stop_launched stops them when it fails).
launched=()

start_daemon() {
  local daemon=$1 home=$state/$1/home pid
  if pid=$(daemon_pid "$daemon"); then
    say "$daemon already running (pid $pid)"
    return 0
  fi
  write_home "$daemon"
  local args=()
  [[ $daemon == zookeeper ]] && args=("$state/zookeeper/conf/zoo.cfg")
  (
    cd "$state/$daemon"
    exec java "-Xmx${daemon_heap_mb}m" -Djava.awt.headless=true \
      "-Dstorm.home=$home" "-Dstorm.log.dir=$log_dir" "-Dlogfile.name=$daemon.log" \
      "-Dlog4j.configurationFile=$home/log4j2/cluster.xml" \
      -cp "$(daemon_classpath "$daemon")" "$(main_class "$daemon")" "${args[@]}" \
      >"$log_dir/$daemon.out" 2>&1
  ) &
  echo $! >"$(pid_file "$daemon")"
  launched+=("$daemon")
}

# A failed start stops what it launched, last first: left running, those daemons would hold
# their ports, and the next start (a clean clone has no pid files) would refuse them. Alive
# is enough to stop one (see daemon_alive_or_die): this script launched it.
stop_launched() {
  local i daemon pid
  for ((i = ${#launched[@]} - 1; i >= 0; i--)); do
    daemon=${launched[i]}
    if pid=$(pid_from_file "$(pid_file "$daemon")"); then
      stop_pid "$pid" 20 "$daemon"
      info "$daemon stopped: this start failed"
    fi
    rm -f "$(pid_file "$daemon")"
  done
}

# While a daemon starts, its pid is the subshell that is about to exec java (its command line
# does not name the daemon yet, so daemon_pid would miss it under load): alive is enough.
daemon_alive_or_die() {
  pid_from_file "$(pid_file "$1")" >/dev/null ||
    die "$1 exited during start-up; see $log_dir/$1.out and $log_dir/$1.log"
}

zookeeper_up() { daemon_alive_or_die zookeeper && port_in_use "$zk_port"; }

# Nimbus accepts uploads only once it leads (streamparse #488 otherwise); only lines this
# start wrote count (the log is appended to across restarts).
nimbus_log_start=1
nimbus_leads() {
  daemon_alive_or_die nimbus && port_in_use "$nimbus_port" &&
    tail -c "+$nimbus_log_start" "$log_dir/nimbus.log" 2>/dev/null |
    grep -s "gained leadership" >/dev/null # not -q: with pipefail, tail's SIGPIPE would fail it
}

supervisor_port() {
  if [[ $1 == supervisor-1 ]]; then echo "$supervisor_port_1"; else echo "$supervisor_port_2"; fi
}

supervisor_slots() {
  if [[ $1 == supervisor-1 ]]; then echo "$slots_1"; else echo "$slots_2"; fi
}

# A supervisor serves Thrift once it has registered and started its workers' monitor.
supervisor_up() { daemon_alive_or_die "$1" && port_in_use "$(supervisor_port "$1")"; }

# Every port that the daemons not running yet need, before any starts: a clash found midway
# would fail the start after some had started. A supervisor's slots are not checked while
# workers of its own run: those hold them, and it takes them back.
check_ports() {
  daemon_pid zookeeper >/dev/null || require_port_free "$zk_port" STORM_ZK_PORT
  daemon_pid nimbus >/dev/null || require_port_free "$nimbus_port" STORM_NIMBUS_PORT
  local supervisor slots slot
  for supervisor in supervisor-1 supervisor-2; do
    daemon_pid "$supervisor" >/dev/null && continue
    require_port_free "$(supervisor_port "$supervisor")" STORM_SUPERVISOR_PORTS
    [[ -n $(worker_pids "$supervisor") ]] && continue
    IFS=, read -ra slots <<<"$(supervisor_slots "$supervisor")"
    for slot in "${slots[@]}"; do
      require_port_free "$slot" "STORM_SLOTS_${supervisor#supervisor-}"
    done
  done
}

cmd_start() {
  require_java 17 "Storm"
  [[ -d $storm_home/lib && -d $storm_home/lib-worker ]] ||
    die "no Storm installation at $storm_home; run stack/storm/install.sh (or make up) first"
  need_command streamparse_run "the workers run it: put the project's virtualenv on PATH (make venv)"
  local started
  started=$(now_us)
  check_ports
  trap stop_launched EXIT
  start_daemon zookeeper
  wait_for "$start_timeout" 0.5 zookeeper_up || die "ZooKeeper not up after ${start_timeout}s"
  if ! daemon_pid nimbus >/dev/null; then
    nimbus_log_start=$(($(stat -c %s "$log_dir/nimbus.log" 2>/dev/null || echo 0) + 1))
    build_scheduler
  fi
  start_daemon nimbus
  wait_for "$start_timeout" 0.5 nimbus_leads || die "Nimbus does not lead after ${start_timeout}s"
  local supervisor
  for supervisor in supervisor-1 supervisor-2; do
    start_daemon "$supervisor"
  done
  for supervisor in supervisor-1 supervisor-2; do
    wait_for "$start_timeout" 0.5 supervisor_up "$supervisor" ||
      die "$supervisor not up after ${start_timeout}s"
  done
  trap - EXIT
  say "up in $(seconds_since "$started"): ZooKeeper :$zk_port, Nimbus :$nimbus_port," \
    "supervisors with slots $slots_1 and $slots_2; logs in $log_dir"
}

# Workers outlive their supervisor: they are ours when their command line names one of our
# supervisors' homes (or SUPERVISOR's, given).
worker_pids() {
  pgrep -f -- "-Dstorm.home=$state/${1:-supervisor-[0-9]+}/home .*org.apache.storm.(LogWriter|daemon.worker.Worker)" ||
    true
}

stop_daemon() {
  local pid
  if pid=$(daemon_pid "$1"); then
    # SIGTERM: a Nimbus killed with SIGKILL keeps its ZooKeeper lock until the session ends.
    stop_pid "$pid" 20 "$1"
    say "$1 stopped"
  fi
  rm -f "$(pid_file "$1")"
}

# Supervisors first (they would restart the workers), then their workers, then the rest.
cmd_stop() {
  local pid
  stop_daemon supervisor-2
  stop_daemon supervisor-1
  for pid in $(worker_pids); do
    stop_pid "$pid" 10 "a worker"
  done
  stop_daemon nimbus
  stop_daemon zookeeper
}

cmd_status() {
  local daemon pid down=0
  for daemon in "${daemons[@]}"; do
    if pid=$(daemon_pid "$daemon"); then
      say "$daemon running (pid $pid)"
    else
      say "$daemon stopped"
      down=1
    fi
  done
  say "workers: $(worker_pids | wc -l)"
  return "$down"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  conf)
    [[ " ${daemons[*]} " == *" ${2:-} "* ]] || die "usage: $0 conf DAEMON, one of: ${daemons[*]}"
    if [[ $2 == zookeeper ]]; then zoo_cfg; else daemon_yaml "$2"; fi
    ;;
  *)
    echo "usage: $0 start | stop | status | conf DAEMON" >&2
    exit 2
    ;;
esac
