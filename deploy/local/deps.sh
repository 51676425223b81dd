#!/usr/bin/env bash
# Installs what Kizuna needs to build, test and run locally, and nothing that
# is already there: `make test`, `make run` and `make up` call it every time,
# so a second run must be quick and quiet. Two parts:
#   1. Debian packages (checked with dpkg-query; apt only for missing ones);
#   2. the Apache Kafka broker's jars, fetched once with Maven from
#      deploy/local/pom.xml into .local/kafka/libs (a marker records which pom).
#
#   deploy/local/deps.sh --packages PKG...
# installs only the given Debian packages, those that are missing, and nothing
# else: the one way other scripts (tests/fuzz/run.sh, ...) get their tools.
# On a host without dpkg it does nothing and trusts the host.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
POM="$ROOT/deploy/local/pom.xml"
LIBS="$LOCAL_DIR/kafka/libs"
MARKER="$LIBS/.kizuna-pom.sha256"

PACKAGES=(
    build-essential pkg-config
    librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev
    libcurl4-openssl-dev libcriterion-dev libjansson-dev libjwt-dev uuid-dev
    libssl-dev libpq-dev
    postgresql maven clang-format docker-compose curl
)

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not available; install those packages by hand"
    fi
}

# A JDK 17+ is what the broker needs; Debian 12's default-jdk-headless is 17.
jdk_missing() {
    is_installed default-jdk-headless && return 1
    is_installed openjdk-17-jdk-headless && return 1
    return 0
}

# Installs those of the given packages that are missing; returns 1 when
# none was.
packages_install() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 1

    say "installing ${missing[*]}"
    # --no-install-recommends: docker-compose would otherwise pull in a whole
    # Docker engine, which the local stack does not use.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
    return 0
}

install_packages() {
    local wanted=("${PACKAGES[@]}")
    if jdk_missing; then
        wanted+=(default-jdk-headless)
    fi
    packages_install "${wanted[@]}"
}

fetch_kafka() {
    local want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ]; then
        return 1
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found after installing maven"

    say "fetching the Kafka broker jars with Maven (once)"
    rm -rf "$LIBS"
    mkdir -p "$LIBS" "$LOCAL_DIR/logs"
    local log="$LOCAL_DIR/logs/maven.log"
    if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -rf "$LIBS"
        die "maven could not fetch the Kafka broker; full output in $log"
    fi
    ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing from $LIBS"
    printf '%s\n' "$want" >"$MARKER"
    return 0
}

main() {
    if [ "${1:-}" = "--packages" ]; then
        shift
        [ "$#" -gt 0 ] || die "usage: deps.sh [--packages PKG...]"
        command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: trust the host
        packages_install "$@" || true
        return 0
    fi
    [ "$#" -eq 0 ] || die "usage: deps.sh [--packages PKG...]"
    local changed=0
    if install_packages; then changed=1; fi
    if fetch_kafka; then changed=1; fi
    if [ "$changed" -eq 0 ]; then
        say "all present"
    else
        say "done"
    fi
}

main "$@"
