#!/usr/bin/env bash
# Local single-node KRaft Apache Kafka 4.1.2 for botscore, run straight from the
# Apache jars (assembled from pom.xml with plain `mvn`; no Docker, no tarball).
#
# Usage: kafka.sh install | start | stop | status
#        kafka.sh topic NAME PARTITIONS
#        kafka.sh console-consumer ARGS...   (--bootstrap-server added if absent)
#        kafka.sh run-class CLASS ARGS...    (any class, Kafka libs on the classpath)
#        kafka.sh tls-ca                     (path of the CA certificate for TLS clients)
#        kafka.sh client-cert [NAME]         (folder of a client certificate, for KAFKA_MTLS_PORT;
#                                             NAME's, principal User:NAME, made on first use)
#        kafka.sh sasl-users                 (path of the SASL users' passwords, USER=PASSWORD lines)
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_TLS_PORT (9094),
#   KAFKA_SASL_PORT (9095, SASL_PLAINTEXT), KAFKA_SASL_SSL_PORT (9096, SASL_SSL),
#   KAFKA_MTLS_PORT (9097, TLS requiring a client certificate),
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m, broker), KAFKA_TOOL_OPTS (tool JVMs), KAFKA_START_TIMEOUT (60 s),
#   BOTSCORE_CACHE (~/.cache/botscore: libs), BOTSCORE_STATE (<repo>/.stack: data, logs, pid, tls, sasl).
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

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name=kafka

kafka_version=4.1.2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_home=$cache_dir/kafka-$kafka_version
libs=$kafka_home/libs
installed_marker=$kafka_home/.installed
state=$state_dir/kafka
data_dir=$state/data
log_dir=$state/logs
pid_file=$state/kafka.pid
config=$state/server.properties
# A checksum of what the running broker was started from (``broker_inputs``).
inputs_file=$state/broker.inputs
tls_dir=$state/tls
client_dir=$tls_dir/client
sasl_dir=$state/sasl
readonly KAFKA_PORT="${KAFKA_PORT:-9092}"
readonly KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
readonly KAFKA_TLS_PORT="${KAFKA_TLS_PORT:-9094}"
readonly KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9095}"
readonly KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-9096}"
readonly KAFKA_MTLS_PORT="${KAFKA_MTLS_PORT:-9097}"
readonly KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
readonly KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
# Short-lived tool JVMs start faster with C1 only and the serial GC.
readonly KAFKA_TOOL_OPTS="${KAFKA_TOOL_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
bootstrap=127.0.0.1:$KAFKA_PORT
# The listeners besides PLAINTEXT, as NAME:PORT (names as in server.properties.in).
secure_listeners=("SSL:$KAFKA_TLS_PORT" "SASL_PLAINTEXT:$KAFKA_SASL_PORT"
  "SASL_SSL:$KAFKA_SASL_SSL_PORT" "MTLS:$KAFKA_MTLS_PORT")

# ---------------------------------------------------------------- install --

# The marker holds the pom's checksum: editing pom.xml makes the next install re-assemble.
pom_checksum() { checksum "$here/pom.xml"; }

is_installed() { marker_matches "$installed_marker" "$(pom_checksum)"; }

# Copy the jars into a scratch dir, swap it in, and write the marker last, so an
# interrupted install is never mistaken for a complete one.
cmd_install() {
  require_java 17 "Kafka $kafka_version"
  is_installed && return 0
  lock_cache "kafka-$kafka_version"
  # Another checkout may have installed it while this one waited.
  if is_installed; then
    unlock_cache
    return 0
  fi
  need_command mvn "it is needed once to fetch the Kafka jars"
  info "assembling Kafka $kafka_version jars into $libs (Maven's ~/.m2 caches the downloads)"
  mkdir -p "$kafka_home"
  local tmp="$kafka_home/libs.partial"
  rm -rf "$tmp" "$installed_marker"
  # Output is kept for failures only: Debian's mvn 3.8 prints stray colour
  # resets to stdout even with -q -B.
  local out
  out="$(mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1)" \
    || { echo "$out" >&2; die "mvn could not assemble the Kafka jars (output above)"; }
  ls "$tmp"/kafka_2.13-*.jar "$tmp"/kafka-tools-*.jar >/dev/null 2>&1 \
    || die "mvn finished but the Kafka jars are missing from $tmp"
  replace_dir "$tmp" "$libs"
  pom_checksum >"$installed_marker"
  unlock_cache
  info "installed $(count_entries "$libs") jars"
}

# -------------------------------------------------------------- processes --

# Run a Kafka class in the foreground with tool-style logging (warnings to stderr).
run_class() {
  # shellcheck disable=SC2086 # KAFKA_TOOL_OPTS is a list of JVM flags
  exec java $KAFKA_TOOL_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/tools-log4j2.xml" -cp "$libs/*" "$@"
}

# Same, but returning to the caller (for the steps of `start`).
java_tool() { (run_class "$@"); }

# PID of our broker if it is running: the pid file must point at a live
# kafka.Kafka process that uses our config (a recycled pid is not ours).
broker_pid() { pid_from_file "$pid_file" "kafka.Kafka $config"; }

# Healthy = the broker answers a Kafka Metadata request and lists at least one (unfenced)
# broker: only then can topics really be created.
probe_metadata() {
  local brokers
  brokers=$(kafka_broker_count "$KAFKA_PORT") && ((brokers > 0))
}

# The names of the secure listeners that accept no connections, space-separated.
missing_listeners() {
  local listener missing=()
  for listener in "${secure_listeners[@]}"; do
    port_in_use "${listener#*:}" || missing+=("${listener%%:*}")
  done
  echo "${missing[*]}"
}

# Healthy broker = Metadata answered on the plaintext listener, and every secure listener
# accepts connections (start checked that nobody else held their ports).
healthy() { probe_metadata && [[ -z "$(missing_listeners)" ]]; }

# ------------------------------------------------------------------ start --

# A path made safe for the replacement side of `sed s|...|...|`.
sed_escape() { local s="${1//\\/\\\\}"; s="${s//|/\\|}"; echo "${s//&/\\&}"; }

render_config() {
  mkdir -p "$data_dir" "$log_dir"
  rendered_config >"$config"
}

rendered_config() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@TLS_PORT@|$KAFKA_TLS_PORT|g" \
    -e "s|@SASL_PORT@|$KAFKA_SASL_PORT|g" \
    -e "s|@SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" \
    -e "s|@MTLS_PORT@|$KAFKA_MTLS_PORT|g" \
    -e "s|@DATA_DIR@|$(sed_escape "$data_dir")|g" \
    -e "s|@TLS_DIR@|$(sed_escape "$tls_dir")|g" \
    -e "s|@SASL_DIR@|$(sed_escape "$sasl_dir")|g" \
    "$here/server.properties.in"
}

# What a broker's behaviour depends on besides its data: its config as this script would
# render it now, its jars, its logging and its JVM options.
broker_inputs() {
  { rendered_config; pom_checksum; cat "$here/log4j2.xml"; echo "$KAFKA_HEAP_OPTS"; } |
    sha256sum | cut -d' ' -f1
}

# started_from_other_inputs: true when the running broker was started from other inputs
# (server.properties.in, pom.xml, log4j2.xml, ports or JVM options changed since).
started_from_other_inputs() {
  [[ ! -f $inputs_file || $(<"$inputs_file") != "$(broker_inputs)" ]]
}

# TLS material for the SSL listener, made once with keytool into $tls_dir:
#   ca.p12         local CA key pair (EC P-256, 10 years), PKCS12
#   ca.pem         the CA certificate, for clients (Python: ssl_cafile; `kafka.sh tls-ca`)
#   broker.p12     broker keystore: key pair + certificate signed by the CA,
#                  SAN IP:127.0.0.1,DNS:localhost, with the CA in its chain
#   truststore.p12 the CA certificate (broker truststore: it checks client certificates)
#   store.password one random password for the three stores, mode 600; the broker reads
#                  it through Kafka's FileConfigProvider, so it is never in server.properties
# Built in a scratch dir and moved into place whole, so a half-made set is never used.
# The password reaches keytool through its environment, never its command line.
tls_files=(ca.p12 ca.pem broker.p12 truststore.p12 store.password)

# keytool_in DIR STORE_PASSWORD ARGS...: keytool in DIR; output kept for failures only.
keytool_in() {
  local dir=$1 password=$2
  shift 2
  local log="$dir/keytool.$BASHPID.log"
  (cd "$dir" && STORE_PASS="$password" keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC \
    "$@" -storepass:env STORE_PASS) >"$log" 2>&1 \
    || { cat "$log" >&2; die "keytool $1 failed (output above)"; }
  rm -f "$log"
}

# both F G: run the functions F and G at once; fails if either failed. For tool JVMs,
# which spend most of their time (0.5-2 s) starting up.
both() { local a b; "$1" & a=$!; "$2" & b=$!; wait "$a" && wait "$b"; }

# A random password: 48 hex digits.
random_password() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

tls_material_complete() {
  local f
  for f in "${tls_files[@]}"; do [[ -s "$tls_dir/$f" ]] || return 1; done
}

ensure_tls_material() {
  tls_material_complete && return 0
  need_command keytool "it comes with Java 17"
  local tmp="$tls_dir.partial" started_us saved_umask
  started_us=$(now_us)
  saved_umask="$(umask)"
  umask 077   # keys and password: owner only (keytool honours the umask too)
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local password
  password="$(random_password)"
  printf 'password=%s\n' "$password" >"$tmp/store.password"
  kt() { keytool_in "$tmp" "$password" "$@"; }
  local key=(-keyalg EC -groupname secp256r1 -validity 3650 -storetype PKCS12)
  ca_pair() {
    kt -genkeypair -alias ca "${key[@]}" -keystore ca.p12 -dname "CN=botscore local Kafka CA" \
      -ext bc:c=ca:true,pathlen:0 -ext ku:c=keyCertSign,cRLSign
  }
  broker_pair() { kt -genkeypair -alias broker "${key[@]}" -keystore broker.p12 -dname "CN=localhost"; }
  ca_pem() { kt -exportcert -rfc -alias ca -keystore ca.p12 -file ca.pem; }
  broker_csr() { kt -certreq -alias broker -keystore broker.p12 -file broker.csr; }
  broker_chain() {
    cat "$tmp/broker.pem" "$tmp/ca.pem" >"$tmp/broker-chain.pem"
    kt -importcert -noprompt -alias broker -keystore broker.p12 -file broker-chain.pem
  }
  truststore() { kt -importcert -noprompt -alias ca -storetype PKCS12 -keystore truststore.p12 -file ca.pem; }
  both ca_pair broker_pair || die "could not generate the TLS key pairs"
  both ca_pem broker_csr || die "could not export the CA certificate / broker request"
  kt -gencert -alias ca -keystore ca.p12 -infile broker.csr -outfile broker.pem -rfc -validity 3650 \
    -ext SAN=IP:127.0.0.1,DNS:localhost -ext ku:c=digitalSignature -ext eku=serverAuth
  both broker_chain truststore || die "could not build the broker keystore / truststore"
  rm -f "$tmp/broker.csr" "$tmp/broker-chain.pem"
  replace_dir "$tmp" "$tls_dir"
  umask "$saved_umask"
  info "made TLS keystores in $tls_dir ($(seconds_since "$started_us"))"
}

# A client certificate for the MTLS listener, made once into a folder of its own (under
# $tls_dir, beside the CA that signs it, so a new CA gets new ones):
#   client.pem           certificate CN=<name>, signed by the CA, clientAuth only
#   client-key.pem       its EC P-256 private key, PKCS#8 PEM encrypted with AES-256
#   client-key.password  the key's password (a client's ssl_password), mode 600
# The broker's principal for it is User:<name> (ssl.principal.mapping.rules). openssl makes
# the key already encrypted (the plain key never touches the disk) and its request; keytool
# signs the request with the CA. Passwords go through the environment.
# ensure_client_cert NAME DIR
ensure_client_cert() {
  local name=$1 dir=$2
  [[ -s "$dir/client.pem" && -s "$dir/client-key.pem" && -s "$dir/client-key.password" ]] \
    && return 0
  need_command openssl "Debian: apt-get install openssl"
  local tmp="$dir.partial" saved_umask key_password store_password
  saved_umask="$(umask)"
  umask 077
  rm -rf "$tmp"
  mkdir -p "$tmp"
  key_password="$(random_password)"
  echo "$key_password" >"$tmp/client-key.password"
  store_password="$(sed -n 's/^password=//p' "$tls_dir/store.password")"
  if ! KEY_PASS="$key_password" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -aes-256-cbc -pass env:KEY_PASS -out "$tmp/client-key.pem" 2>"$tmp/openssl.log" \
    || ! KEY_PASS="$key_password" openssl req -new -key "$tmp/client-key.pem" -passin env:KEY_PASS \
      -subj "/CN=$name" -out "$tmp/client.csr" 2>>"$tmp/openssl.log"; then
    cat "$tmp/openssl.log" >&2
    die "openssl could not make the client key (output above)"
  fi
  keytool_in "$tmp" "$store_password" -gencert -alias ca -keystore "$tls_dir/ca.p12" \
    -infile client.csr -outfile client.pem -rfc -validity 3650 \
    -ext ku:c=digitalSignature -ext eku=clientAuth
  rm -f "$tmp/client.csr" "$tmp/openssl.log"
  mkdir -p "$(dirname "$dir")"
  replace_dir "$tmp" "$dir"
  umask "$saved_umask"
  info "made a client certificate for $name in $dir"
}

# SASL users, one per mechanism, with random passwords, made once into $sasl_dir
# (mode 700) as users.properties (mode 600): the broker reads PLAIN's password from it
# through FileConfigProvider, ensure_scram_users the SCRAM ones, clients all three.
sasl_users=(botscore-plain botscore-scram-sha-256 botscore-scram-sha-512)

ensure_sasl_users() {
  [[ -s "$sasl_dir/users.properties" ]] && return 0
  local tmp="$sasl_dir.partial" saved_umask user
  saved_umask="$(umask)"
  umask 077
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for user in "${sasl_users[@]}"; do
    echo "$user=$(random_password)"
  done >"$tmp/users.properties"
  replace_dir "$tmp" "$sasl_dir"
  umask "$saved_umask"
  info "made SASL users ${sasl_users[*]} in $sasl_dir/users.properties"
}

# SCRAM credentials live in the cluster metadata, not in a file the broker reads. Each
# start asks the broker which it has and adds those missing: a new cluster's, and any a
# restart lost (Kafka 4.1 to 4.3 can drop every user of a mechanism when it replays a
# credential's deletion from its metadata log; see metadata.log.max.snapshot.interval.ms
# in server.properties.in). kafka-configs reads each password from a mode-600 file, never
# from its command line.
ensure_scram_users() {
  local started_us described mechanism user missing=() pids=() pid failed=0 saved_umask
  started_us=$(now_us)
  described="$(java_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --describe \
    --entity-type users 2>"$log_dir/scram-describe.log")" \
    || { cat "$log_dir/scram-describe.log" >&2; die "could not list the SCRAM users"; }
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    user="botscore-${mechanism,,}"
    grep -q "user-principal '$user' are .*$mechanism=" <<<"$described" || missing+=("$mechanism")
  done
  ((${#missing[@]} > 0)) || return 0
  saved_umask="$(umask)"
  umask 077
  # add_scram_user MECHANISM: user botscore-<mechanism> gets its password for MECHANISM.
  add_scram_user() {
    local mechanism=$1 user request
    user="botscore-${mechanism,,}"
    request="$sasl_dir/$user.scram"
    printf '%s=password=%s\n' "$mechanism" \
      "$(sed -n "s/^$user=//p" "$sasl_dir/users.properties")" >"$request"
    java_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter \
      --entity-type users --entity-name "$user" --add-config-file "$request" \
      >"$log_dir/scram-$user.log" 2>&1 \
      || { rm -f "$request"; cat "$log_dir/scram-$user.log" >&2; return 1; }
    rm -f "$request"
  }
  for mechanism in "${missing[@]}"; do
    add_scram_user "$mechanism" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  umask "$saved_umask"
  ((failed == 0)) || die "could not add the SCRAM users (output above)"
  info "added SCRAM user(s) for ${missing[*]}, missing from the cluster" \
    "($(seconds_since "$started_us"))"
}

# The broker denies what no ACL grants: the local SASL users and the client certificate's
# principal get every topic, group and transactional id (tests and tools use them as any
# client would), and only describing the cluster and idempotent writes on it: administering
# stays the super user's. Added once per cluster, as the SCRAM users are.
dev_principals=("${sasl_users[@]}" botscore-client)

ensure_dev_acls() {
  local marker=$sasl_dir/acls-cluster-id cluster_id
  cluster_id="$(sed -n 's/^cluster\.id=//p' "$data_dir/meta.properties")"
  marker_matches "$marker" "$cluster_id" && return 0
  local started_us principals=() user
  started_us=$(now_us)
  for user in "${dev_principals[@]}"; do principals+=(--allow-principal "User:$user"); done
  # add_acls LABEL ACL-COMMAND-ARGS...: one AclCommand run, its output in a log.
  add_acls() {
    local label=$1
    shift
    java_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$bootstrap" --add --force \
      "${principals[@]}" "$@" >"$log_dir/acls-$label.log" 2>&1 \
      || { cat "$log_dir/acls-$label.log" >&2; return 1; }
  }
  resources() { add_acls resources --topic '*' --group '*' --transactional-id '*' --operation All; }
  cluster() { add_acls cluster --cluster --operation Describe --operation IdempotentWrite; }
  both resources cluster || die "could not grant the local users their ACLs (output above)"
  echo "$cluster_id" >"$marker"
  info "granted ${dev_principals[*]} every topic and group on cluster $cluster_id" \
    "($(seconds_since "$started_us"))"
}

# Format the KRaft storage only once: meta.properties marks a formatted log dir,
# and reformatting would throw away the topics of earlier runs.
format_storage_once() {
  [[ -f "$data_dir/meta.properties" ]] && return 0
  local cluster_id
  cluster_id="$(java_tool kafka.tools.StorageTool random-uuid)"
  info "formatting storage in $data_dir (cluster id $cluster_id)"
  java_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$config" >"$log_dir/format.log" 2>&1 \
    || { cat "$log_dir/format.log" >&2; die "formatting storage failed"; }
}

# Refuse to start when another program holds one of our ports.
check_ports_free() {
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "${secure_listeners[@]#*:}"; do
    require_port_free "$port" \
      "KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_TLS_PORT / KAFKA_SASL_PORT / KAFKA_SASL_SSL_PORT / KAFKA_MTLS_PORT"
  done
}

launch_broker() {
  # Kafka's own launcher uses these GC settings; a 512 MB heap is plenty for tests.
  # kafka.out (JVM errors, WARN+ logs) is per run; server.log keeps the history; gc.log
  # (like the launcher's kafkaServer-gc.log, plus safepoints) tells a pause from a stall.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
  nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "-Xlog:gc*,safepoint:file=$log_dir/gc.log:time,uptime,level,tags:filecount=5,filesize=20M" \
    -Dkafka.logs.dir="$log_dir" -Dlog4j2.configurationFile="$here/log4j2.xml" \
    -cp "$libs/*" kafka.Kafka "$config" >"$log_dir/kafka.out" 2>&1 </dev/null &
  echo $! >"$pid_file"
  broker_inputs >"$inputs_file"
}

# server.log outlives a run: remember where this run's lines begin.
server_log_mark=0
mark_server_log() {
  server_log_mark=0
  [[ -f "$log_dir/server.log" ]] && server_log_mark="$(wc -l <"$log_dir/server.log")"
  return 0
}

show_log_tails() {
  echo "----- $log_dir/kafka.out -----" >&2
  tail -n 20 "$log_dir/kafka.out" >&2 || true
  echo "----- last lines of this run in $log_dir/server.log -----" >&2
  tail -n "+$((server_log_mark + 1))" "$log_dir/server.log" 2>/dev/null | tail -n 30 >&2 || true
}

# The health check, giving up at once if the JVM exits (bad config, port clash). The pid file
# names the broker this start launched or found: alive is enough (its command line names
# kafka.Kafka only once exec'd).
healthy_unless_exited() {
  healthy && return 0
  pid_from_file "$pid_file" >/dev/null || { show_log_tails; rm -f "$pid_file"; die "broker exited during startup"; }
  return 1
}

wait_until_healthy() {
  wait_for "$KAFKA_START_TIMEOUT" 0.25 healthy_unless_exited && return 0
  show_log_tails
  # A half-started broker would keep the ports busy; leave a clean slate.
  cmd_stop
  die "broker not healthy after ${KAFKA_START_TIMEOUT}s (raise KAFKA_START_TIMEOUT if the machine is slow)"
}

cmd_start() {
  cmd_install
  local pid missing
  if pid="$(broker_pid)"; then
    if probe_metadata && missing="$(missing_listeners)" && [[ -n $missing ]]; then
      # Started from an older config without these listeners: it keeps serving the
      # others (stopping it here would pull the broker from under running tests).
      info "WARNING: broker (pid $pid) has no $missing listener;" \
        "restart it to get them: kafka.sh stop && kafka.sh start"
      return 0
    fi
    if started_from_other_inputs; then
      # As above: warned, not restarted under whatever is using it.
      info "WARNING: broker (pid $pid) was started from other settings than these" \
        "(server.properties.in, pom.xml, log4j2.xml, ports or KAFKA_HEAP_OPTS changed);" \
        "restart it to apply them: kafka.sh stop && kafka.sh start"
    fi
    if healthy; then
      info "already up (pid $pid)"
      ensure_scram_users
      ensure_dev_acls
      return 0
    fi
    info "broker (pid $pid) is running but not healthy yet; waiting"
  else
    rm -f "$pid_file"
    check_ports_free
    ensure_tls_material
    ensure_client_cert botscore-client "$client_dir"
    ensure_sasl_users
    render_config
    format_storage_once
    mark_server_log
    launch_broker
    info "started broker (pid $(<"$pid_file")), logs in $log_dir"
  fi
  local started_us
  started_us=$(now_us)
  wait_until_healthy
  info "up on $bootstrap, TLS on 127.0.0.1:$KAFKA_TLS_PORT, SASL on :$KAFKA_SASL_PORT" \
    "and :$KAFKA_SASL_SSL_PORT (TLS), client certificates on :$KAFKA_MTLS_PORT" \
    "(healthy after $(seconds_since "$started_us"))"
  ensure_scram_users
  ensure_dev_acls
}

# ------------------------------------------------------------------- stop --

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    rm -f "$pid_file"
    info "not running"
    return 0
  fi
  # 30 s for a controlled shutdown, then SIGKILL.
  stop_pid "$pid" 30 broker
  rm -f "$pid_file"
  info "stopped (pid $pid)"
}

# ------------------------------------------------------ other subcommands --

cmd_status() {
  local pid missing
  if pid="$(broker_pid)" && probe_metadata; then
    missing="$(missing_listeners)"
    if started_from_other_inputs; then
      say "up (pid $pid), started from other settings than these:" \
        "restart with kafka.sh stop && kafka.sh start to apply them"
    elif [[ -z $missing ]]; then
      say "up (pid $pid), TLS on 127.0.0.1:$KAFKA_TLS_PORT, SASL on :$KAFKA_SASL_PORT" \
        "and :$KAFKA_SASL_SSL_PORT (TLS), client certificates on :$KAFKA_MTLS_PORT"
    else
      say "up (pid $pid), no $missing listener: restart with kafka.sh stop && kafka.sh start"
    fi
  else
    say "down"
    return 1
  fi
}

cmd_topic() {
  (($# == 2)) || die "usage: kafka.sh topic NAME PARTITIONS"
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got '$2'"
  is_installed || die "not installed; run: kafka.sh start"
  # Without a broker TopicCommand would retry for a minute before failing.
  probe_metadata || die "broker not reachable on $bootstrap; run: kafka.sh start"
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
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
  run_class org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bootstrap" "$@"
}

# Path of the CA certificate that signed the broker's TLS certificate (PEM).
cmd_tls_ca() {
  tls_material_complete || die "no TLS material in $tls_dir; run: kafka.sh start"
  echo "$tls_dir/ca.pem"
}

# The folder of the client certificate for the MTLS listener (see ensure_client_cert).
# client-cert [NAME]: the folder of the local client certificate, or of NAME's (made on
# first use: a role's principal by certificate, User:NAME).
cmd_client_cert() {
  local name=${1:-}
  if [[ -z $name ]]; then
    [[ -s "$client_dir/client.pem" ]] || die "no client certificate in $client_dir; run: kafka.sh start"
    echo "$client_dir"
    return 0
  fi
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] \
    || die "client-cert: '$name' is not a name (letters, digits, '.', '_', '-')"
  tls_material_complete || die "no CA in $tls_dir to sign it; run: kafka.sh start"
  ensure_client_cert "$name" "$tls_dir/clients/$name" >&2
  echo "$tls_dir/clients/$name"
}

# Path of the SASL users' passwords (see ensure_sasl_users).
cmd_sasl_users() {
  [[ -s "$sasl_dir/users.properties" ]] || die "no SASL users in $sasl_dir; run: kafka.sh start"
  echo "$sasl_dir/users.properties"
}

cmd_run_class() {
  (($# >= 1)) || die "usage: kafka.sh run-class CLASS [ARGS...]"
  is_installed || die "not installed; run: kafka.sh install"
  run_class "$@"
}

usage() { usage_from_header "${BASH_SOURCE[0]}" "$@"; }

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
    tls-ca) cmd_tls_ca ;;
    client-cert) cmd_client_cert "$@" ;;
    sasl-users) cmd_sasl_users ;;
    -h | --help | help) usage 0 ;;
    *) info "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
