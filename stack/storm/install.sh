#!/usr/bin/env bash
# Assembles a STORM_HOME from Maven Central jars (see README.md beside this):
#
#   ${BOTSCORE_CACHE:-~/.cache/botscore}/storm-VERSION/
#       lib/         storm-core and deps: daemons and `storm local`
#       lib-worker/  storm-client and deps: `storm jar` submit clients
#       log4j2/      cluster.xml, worker.xml (copied from here)
#       conf/        storm.yaml
#       logs/        created by bin/storm
#
# Idempotent: a marker file records a checksum of the inputs (pom.xml, the
# log4j2 files, this script); when it matches, nothing is done. Maven's
# ~/.m2 is the download cache, so a rebuild after `rm -rf` works offline.
#
# Usage: stack/storm/install.sh [--force]
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
log_name="storm install"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom=$here/pom.xml

check_tools() {
  need_command java "install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)"
  need_command mvn "install Maven 3.6+ (Debian: apt-get install maven)"
}

# The single place where the Storm version is written is the pom.
storm_version() {
  pom_property "$pom" storm.version
}

inputs_checksum() {
  checksum "$pom" "$here"/log4j2/*.xml "${BASH_SOURCE[0]}"
}

# One Maven run per profile: each copies one dependency closure.
copy_jars() {
  local dest=$1 profile
  for profile in lib lib-worker; do
    info "copying the $profile/ jars (the first run downloads ~150 MB into ~/.m2)"
    # Debian's Maven 3.8 prints colour resets even with -B; drop them.
    mvn -B -q -f "$pom" -P "$profile" package "-Dstorm.home=$dest" 2>&1 |
      sed 's/\x1b\[0m//g' ||
      die "maven failed for profile $profile (see the output above)"
  done
}

# docker-compose.yml's ZooKeeper server is the version the pom names: the one storm-core brings.
check_zookeeper() {
  local version
  version=$(pom_property "$pom" zookeeper.version)
  [[ -f $1/zookeeper-$version.jar ]] ||
    die "storm-core brought no zookeeper-$version.jar into lib/ (found: $(cd "$1" && echo zookeeper-[0-9]*.jar));" \
      "set <zookeeper.version> in $pom to its version (docker-compose.yml's ZooKeeper image follows it)"
}

# flux-core and flux-wrappers name org.apache.storm:flux as their parent pom,
# and Maven Central has no such pom (none of 2.6.4 to 2.8.3), so neither Maven
# nor Leiningen can resolve them. Unless the real one can be had, install a
# stand-in with what Storm's flux/pom.xml gives its modules: the storm parent
# (versions) and the dependencies storm-client (provided) and commons-cli.
install_flux_parent() {
  local version=$1 gav="org.apache.storm:flux:$1:pom"
  # Already in Maven's local repository (nearly always): no Maven run.
  [[ -f $HOME/.m2/repository/org/apache/storm/flux/$version/flux-$version.pom ]] && return 0
  check_tools
  if mvn -B -q -f "$pom" dependency:get "-Dartifact=$gav" -Dtransitive=false \
    >/dev/null 2>&1; then
    return 0
  fi
  info "installing a stand-in for $gav (missing from Maven Central)"
  local standin
  standin="$(mktemp --suffix=.pom)"
  cat >"$standin" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<!-- Stand-in written by botscore's stack/storm/install.sh: the real parent
     pom of flux-core/flux-wrappers is not on Maven Central. -->
<project>
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.apache.storm</groupId>
    <artifactId>storm</artifactId>
    <version>$version</version>
    <relativePath/>
  </parent>
  <artifactId>flux</artifactId>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.storm</groupId>
      <artifactId>storm-client</artifactId>
      <version>$version</version>
      <scope>provided</scope>
    </dependency>
    <dependency>
      <groupId>commons-cli</groupId>
      <artifactId>commons-cli</artifactId>
    </dependency>
  </dependencies>
</project>
POM
  mvn -B -q -f "$pom" install:install-file "-Dfile=$standin" "-DpomFile=$standin" 2>&1 |
    sed 's/\x1b\[0m//g' || die "could not install the stand-in for $gav"
  rm -f "$standin"
}

# $1: the directory being filled, $2: its final place (named in storm.yaml).
write_conf() {
  local dir=$1 dest=$2
  mkdir -p "$dir/conf" "$dir/log4j2"
  cp "$here"/log4j2/*.xml "$dir/log4j2/"
  # `storm local` ignores the ZooKeeper and local-dir settings (LocalCluster
  # runs its own in temp dirs); they are here for the cluster daemons.
  cat >"$dir/conf/storm.yaml" <<EOF
# Written by stack/storm/install.sh; edits are lost on the next install.
storm.zookeeper.servers:
  - "127.0.0.1"
nimbus.seeds: ["127.0.0.1"]
storm.local.dir: "$dest/data"
storm.log4j2.conf.dir: "$dest/log4j2"
EOF
}

main() {
  local force=false
  [[ ${1:-} == --force ]] && force=true
  [[ -f $pom ]] || die "missing $pom"

  local version dest marker sum
  version="$(storm_version)"
  [[ -n $version ]] || die "no <storm.version> in $pom"
  dest="$cache_dir/storm-$version"
  marker="$dest/.installed"
  sum="$(inputs_checksum)"

  # Held until this script exits: another checkout's install of the same Storm waits.
  lock_cache "storm-$version"
  # In ~/.m2, not in $dest: it can be gone (~/.m2 cleared, or not cached in CI) while the
  # marker below matches, and then Leiningen cannot resolve flux-core.
  install_flux_parent "$version"
  if ! $force && marker_matches "$marker" "$sum"; then
    info "Storm $version already installed in $dest"
    return 0
  fi

  check_tools
  info "installing Storm $version into $dest"
  # Build next to the target and swap at the end, so that an interrupted run
  # never leaves a half-filled STORM_HOME that looks complete.
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  copy_jars "$tmp"
  check_zookeeper "$tmp/lib"
  write_conf "$tmp" "$dest"
  echo "$sum" >"$tmp/.installed"

  replace_dir "$tmp" "$dest"
  trap - EXIT
  info "done: STORM_HOME=$dest ($(count_entries "$dest/lib") jars in lib/, $(count_entries "$dest/lib-worker") in lib-worker/)"
}

main "$@"
