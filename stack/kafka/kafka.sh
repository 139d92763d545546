#!/usr/bin/env bash
# Local single-node KRaft Apache Kafka 4.1.2 for botscore, run straight from the
# Apache jars (assembled from pom.xml with plain `mvn`; no Docker, no tarball).
#
# Usage: kafka.sh install | start | stop | status
#        kafka.sh topic NAME PARTITIONS
#        kafka.sh console-consumer ARGS...   (--bootstrap-server added if absent)
#        kafka.sh run-class CLASS ARGS...    (any class, Kafka libs on the classpath)
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m, broker), KAFKA_TOOL_OPTS (tool JVMs), KAFKA_START_TIMEOUT (60 s),
#   BOTSCORE_CACHE (~/.cache/botscore: libs), BOTSCORE_STATE (<repo>/.stack: data, logs, pid).
#
# Reading binary (protobuf) values with the console consumer
# ----------------------------------------------------------
# The consumer class in kafka-tools 4.1.2 is org.apache.kafka.tools.consumer.ConsoleConsumer
# (formatter org.apache.kafka.tools.consumer.DefaultMessageFormatter; in 4.1 the
# formatter options are still passed with --property, --formatter-property is 4.2+).
# By default the formatter writes the raw value bytes followed by "\n", which cannot
# be split safely: protobuf bytes contain 0x0A too.  Instead ask for the value to be
# deserialized with org.apache.kafka.common.serialization.BytesDeserializer: the
# formatter then prints Bytes.toString(), which keeps printable ASCII 0x20-0x7E
# except the backslash and writes every other byte (backslash and newline
# included) as \xHH with upper-case hex, one record per line, unambiguously:
#   kafka.sh console-consumer --topic T --from-beginning --max-messages N \
#     --property value.deserializer=org.apache.kafka.common.serialization.BytesDeserializer
# and decode each line in Python with
#   re.sub(rb"\\x([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), line)
# (an empty value prints an empty line; a null value prints "null").
set -euo pipefail

readonly KAFKA_VERSION=4.1.2
readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO_ROOT="$(cd "$HERE/../.." && pwd)"
readonly KAFKA_HOME="${BOTSCORE_CACHE:-$HOME/.cache/botscore}/kafka-$KAFKA_VERSION"
readonly LIBS="$KAFKA_HOME/libs"
readonly INSTALLED_MARKER="$KAFKA_HOME/.installed"
readonly STATE="${BOTSCORE_STATE:-$REPO_ROOT/.stack}/kafka"
readonly DATA_DIR="$STATE/data"
readonly LOG_DIR="$STATE/logs"
readonly PID_FILE="$STATE/kafka.pid"
readonly CONFIG="$STATE/server.properties"
readonly KAFKA_PORT="${KAFKA_PORT:-9092}"
readonly KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
readonly KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
readonly KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
# Short-lived tool JVMs start faster with C1 only and the serial GC.
readonly KAFKA_TOOL_OPTS="${KAFKA_TOOL_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
readonly BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

die() { echo "kafka: $*" >&2; exit 1; }
info() { echo "kafka: $*" >&2; }

# ---------------------------------------------------------------- install --

require_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH; Kafka $KAFKA_VERSION needs Java 17 or newer"
  local version major
  version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
  major="${version%%.*}"
  [[ "$major" == 1 ]] && major="$(echo "$version" | cut -d. -f2)"   # 1.8.0_x style
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the Java version from 'java -version' (got '$version')"
  (( major >= 17 )) || die "Java $version found; Kafka $KAFKA_VERSION needs Java 17 or newer"
}

# The marker holds the pom's checksum: editing pom.xml makes the next install re-assemble.
pom_checksum() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }

is_installed() {
  [[ -f "$INSTALLED_MARKER" && "$(cat "$INSTALLED_MARKER")" == "$(pom_checksum)" ]]
}

# Copy the jars into a scratch dir, swap it in, and write the marker last, so an
# interrupted install is never mistaken for a complete one.
cmd_install() {
  require_java
  is_installed && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH; it is needed once to fetch the Kafka jars"
  info "assembling Kafka $KAFKA_VERSION jars into $LIBS (Maven's ~/.m2 caches the downloads)"
  mkdir -p "$KAFKA_HOME"
  local tmp="$KAFKA_HOME/libs.partial"
  rm -rf "$tmp" "$INSTALLED_MARKER"
  # Output is kept for failures only: Debian's mvn 3.8 prints stray colour
  # resets to stdout even with -q -B.
  local out
  out="$(mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1)" \
    || { echo "$out" >&2; die "mvn could not assemble the Kafka jars (output above)"; }
  ls "$tmp"/kafka_2.13-*.jar "$tmp"/kafka-tools-*.jar >/dev/null 2>&1 \
    || die "mvn finished but the Kafka jars are missing from $tmp"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  pom_checksum >"$INSTALLED_MARKER"
  info "installed $(ls "$LIBS" | wc -l) jars"
}

# -------------------------------------------------------------- processes --

# Run a Kafka class in the foreground with tool-style logging (warnings to stderr).
run_class() {
  # shellcheck disable=SC2086 # KAFKA_TOOL_OPTS is a list of JVM flags
  exec java $KAFKA_TOOL_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/tools-log4j2.xml" -cp "$LIBS/*" "$@"
}

# Same, but returning to the caller (for the steps of `start`).
java_tool() { (run_class "$@"); }

# PID of our broker if it is running: the pid file must point at a live
# kafka.Kafka process that uses our config (a recycled pid is not ours).
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  local args
  args="$(ps -ww -o args= -p "$pid" 2>/dev/null)" || return 1
  [[ "$args" == *"kafka.Kafka $CONFIG"* ]] || return 1
  echo "$pid"
}

# Healthy = the broker answers a Kafka Metadata request (v4, no topics) and lists
# at least one broker.  A broker that is still fenced is left out of that list,
# so this only passes once topics can really be created.  Raw bytes over bash's
# /dev/tcp: milliseconds, where a JVM tool (TopicCommand --list) takes seconds.
probe_metadata() {
  # size 17 | api_key 3 | api_version 4 | correlation_id 1 | client_id "hc" | topics [] | allow_auto_topic_creation false
  local request='\x00\x00\x00\x11\x00\x03\x00\x04\x00\x00\x00\x01\x00\x02hc\x00\x00\x00\x00\x00'
  local reply
  # response: size(4) correlation_id(4) throttle_time_ms(4) broker_count(4) ...
  reply="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "$2" >&3 && head -c 16 <&3' \
    _ "$KAFKA_PORT" "$request" 2>/dev/null | od -An -v -tx1 | tr -d ' \n')" || return 1
  [[ ${#reply} == 32 && "${reply:8:8}" == 00000001 && "${reply:24:8}" != 00000000 ]]
}

# Something accepts TCP connections on 127.0.0.1:PORT?
port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

port_owner() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n 1 || true; }

# ------------------------------------------------------------------ start --

render_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local sed_data_dir="${DATA_DIR//\\/\\\\}"; sed_data_dir="${sed_data_dir//|/\\|}"; sed_data_dir="${sed_data_dir//&/\\&}"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$sed_data_dir|g" \
      "$HERE/server.properties.in" >"$CONFIG"
}

# Format the KRaft storage only once: meta.properties marks a formatted log dir,
# and reformatting would throw away the topics of earlier runs.
format_storage_once() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  local cluster_id
  cluster_id="$(java_tool kafka.tools.StorageTool random-uuid)"
  info "formatting storage in $DATA_DIR (cluster id $cluster_id)"
  java_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$CONFIG" >"$LOG_DIR/format.log" 2>&1 \
    || { cat "$LOG_DIR/format.log" >&2; die "formatting storage failed"; }
}

# Refuse to start when another program holds one of our ports: the broker would
# die on bind, and health checks could be answered by that other program.
check_ports_free() {
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_in_use "$port"; then
      local owner
      owner="$(port_owner "$port")"
      die "127.0.0.1:$port is already in use by another process${owner:+ $owner}; stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    fi
  done
}

launch_broker() {
  # Kafka's own launcher uses these GC settings; a 512 MB heap is plenty for tests.
  # kafka.out (JVM errors, WARN+ logs) is per run; server.log keeps the history.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
  nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$HERE/log4j2.xml" \
    -cp "$LIBS/*" kafka.Kafka "$CONFIG" >"$LOG_DIR/kafka.out" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
}

# server.log outlives a run: remember where this run's lines begin.
SERVER_LOG_MARK=0
mark_server_log() {
  SERVER_LOG_MARK=0
  [[ -f "$LOG_DIR/server.log" ]] && SERVER_LOG_MARK="$(wc -l <"$LOG_DIR/server.log")"
  return 0
}

show_log_tails() {
  echo "----- $LOG_DIR/kafka.out -----" >&2
  tail -n 20 "$LOG_DIR/kafka.out" >&2 || true
  echo "----- last lines of this run in $LOG_DIR/server.log -----" >&2
  tail -n "+$((SERVER_LOG_MARK + 1))" "$LOG_DIR/server.log" 2>/dev/null | tail -n 30 >&2 || true
}

# Poll the health check; give up early if the JVM exits (bad config, port clash).
wait_until_healthy() {
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    probe_metadata && return 0
    broker_pid >/dev/null || { show_log_tails; rm -f "$PID_FILE"; die "broker exited during startup"; }
    sleep 0.25
  done
  show_log_tails
  # A half-started broker would keep the ports busy; leave a clean slate.
  cmd_stop
  die "broker not healthy after ${KAFKA_START_TIMEOUT}s (raise KAFKA_START_TIMEOUT if the machine is slow)"
}

cmd_start() {
  cmd_install
  local pid
  if pid="$(broker_pid)"; then
    if probe_metadata; then info "already up (pid $pid)"; return 0; fi
    info "broker (pid $pid) is running but not healthy yet; waiting"
  else
    rm -f "$PID_FILE"
    check_ports_free
    render_config
    format_storage_once
    mark_server_log
    launch_broker
    info "started broker (pid $(cat "$PID_FILE")), logs in $LOG_DIR"
  fi
  local started_us="${EPOCHREALTIME/./}"
  wait_until_healthy
  local elapsed_ms=$(( (${EPOCHREALTIME/./} - started_us) / 1000 ))
  info "up on $BOOTSTRAP (healthy after $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))s)"
}

# ------------------------------------------------------------------- stop --

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    info "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do    # 150 x 0.2 s = 30 s for a controlled shutdown
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    info "broker (pid $pid) still alive after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  info "stopped (pid $pid)"
}

# ------------------------------------------------------ other subcommands --

cmd_status() {
  local pid
  if pid="$(broker_pid)" && probe_metadata; then
    echo "kafka: up (pid $pid)"
  else
    echo "kafka: down"
    return 1
  fi
}

cmd_topic() {
  (($# == 2)) || die "usage: kafka.sh topic NAME PARTITIONS"
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$2'"
  is_installed || die "not installed; run: kafka.sh start"
  # Without a broker TopicCommand would retry for a minute before failing.
  probe_metadata || die "broker not reachable on $BOOTSTRAP; run: kafka.sh start"
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
    --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor 1
}

cmd_console_consumer() {
  is_installed || die "not installed; run: kafka.sh start"
  local arg
  for arg in "$@"; do
    if [[ "$arg" == --bootstrap-server* ]]; then
      run_class org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
    fi
  done
  run_class org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" "$@"
}

cmd_run_class() {
  (($# >= 1)) || die "usage: kafka.sh run-class CLASS [ARGS...]"
  is_installed || die "not installed; run: kafka.sh install"
  run_class "$@"
}

usage() {
  sed -n '5,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

main() {
  (($# >= 1)) || usage
  local cmd="$1"
  shift
  case "$cmd" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    topic) cmd_topic "$@" ;;
    console-consumer) cmd_console_consumer "$@" ;;
    run-class) cmd_run_class "$@" ;;
    -h | --help | help) usage 0 ;;
    *) info "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
