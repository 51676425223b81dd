#!/usr/bin/env bash
# The dispatcher benchmark (issue 4; not a test). One channel at LINE's push
# limit (2,000 requests/s) for BENCH_SECONDS: a real kizuna-dispatcher sends
# to a real line-sim (recording off), both started here on their own ports,
# with the local stack's PostgreSQL and Kafka. loadgen.c publishes the
# channel (token sealed as ingest seals it), produces the pushes to the
# benchmark topic and reads the simulator's counters once a second. It
# reports the achieved rate (mean over the best BENCH_SECONDS window), the
# highest count in any sliding second, 429s, duplicates, and the
# dispatcher's CPU and RSS. PostgreSQL and Kafka are started if they are not
# running (deploy/local/stack.sh with-stack stops again only what it
# started).
#
# Settings (environment): BUILD (build), BENCH_SECONDS (30), BENCH_COUNT
# (2000 * (BENCH_SECONDS + 10)), BENCH_SIM_PORT (18290), BENCH_ADMIN_PORT
# (18284), BENCH_SIM_THREADS (4), and the dispatcher's own variables
# (DISPATCHER_MAX_INFLIGHT...), passed through. docs/benchmarks.md records
# runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
HERE="$ROOT/bench/dispatcher"

if [ "${1:-}" != "--inner" ]; then
    if [ ! -x "$BIN/kizuna-dispatcher" ] || [ ! -x "$BIN/line-sim" ]; then
        make -C "$ROOT" --no-print-directory BUILD="$BUILD" all
    fi
    export BUILD
    exec env KIZUNA_BIN_DIR="$BIN" "$ROOT/deploy/local/stack.sh" with-stack "$HERE/run.sh" --inner
fi

SECONDS_RUN="${BENCH_SECONDS:-30}"
COUNT="${BENCH_COUNT:-$((2000 * (SECONDS_RUN + 10)))}"
SIM_PORT="${BENCH_SIM_PORT:-18290}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-18284}"
SIM_THREADS="${BENCH_SIM_THREADS:-4}"
TOPIC="send.requests.bench"
WORK="$BUILD/bench/dispatcher"
mkdir -p "$WORK"
SUMMARY="$WORK/summary.txt"

say() { printf 'bench: %s\n' "$*"; }

SIM_PID=""
DISP_PID=""
stop() { # pid: SIGTERM, then SIGKILL after 30 s
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        echo "bench: pid $1 did not stop within 30 s; killing it" >&2
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}
cleanup() {
    stop "$DISP_PID"
    stop "$SIM_PID"
}
trap cleanup EXIT

# --- the driver ----------------------------------------------------------------
say "building loadgen"
PKGS="rdkafka libpq libmicrohttpd libprotobuf-c libcurl jansson libjwt uuid libcrypto"
make -C "$ROOT" --no-print-directory BUILD="$BUILD" "$BUILD/lib/libkizuna_common.a" \
    "$BUILD/lib/libkizuna_proto.a" >/dev/null
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -pthread -I"$ROOT/common" -I"$BUILD/gen" \
    $(pkg-config --cflags $PKGS) -o "$WORK/loadgen" "$HERE/loadgen.c" \
    "$BUILD/lib/libkizuna_common.a" "$BUILD/lib/libkizuna_proto.a" \
    $(pkg-config --libs $PKGS) -lm
"$WORK/loadgen" -C -T "$TOPIC"

# --- the simulator and a channel ---------------------------------------------------
CHANNEL="8$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')$(date +%s)"
TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
say "starting line-sim on 127.0.0.1:$SIM_PORT ($SIM_THREADS threads), log $WORK/line-sim.log"
LINESIM_PORT="$SIM_PORT" LINESIM_THREADS="$SIM_THREADS" LINESIM_LOG_LEVEL=warn \
    "$BIN/line-sim" >"$WORK/line-sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$SIM_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS -XPOST "http://127.0.0.1:$SIM_PORT/_sim/channels" -H 'Content-Type: application/json' \
    -d "{\"channel_id\":\"$CHANNEL\",\"access_token\":\"$TOKEN\"}" >/dev/null
curl -fsS -XPOST "http://127.0.0.1:$SIM_PORT/_sim/users" -H 'Content-Type: application/json' \
    -d "{\"channel_id\":\"$CHANNEL\",\"user_id\":\"Uprobe\",\"display_name\":\"Probe\"}" >/dev/null
curl -fsS -XPUT "http://127.0.0.1:$SIM_PORT/_sim/settings" -H 'Content-Type: application/json' \
    -d '{"record": false}' >/dev/null

# --- the dispatcher -------------------------------------------------------------------
say "starting kizuna-dispatcher (admin 127.0.0.1:$ADMIN_PORT), log $WORK/dispatcher.log"
DISPATCHER_ADMIN_PORT="$ADMIN_PORT" DISPATCHER_LINE_API_BASE="http://127.0.0.1:$SIM_PORT" \
    DISPATCHER_INSTANCE_ID="bench-$CHANNEL" DISPATCHER_GROUP="bench-$CHANNEL" \
    DISPATCHER_REQUESTS_TOPIC="$TOPIC" DISPATCHER_INTAKE_FROM=latest \
    LOG_LEVEL="${LOG_LEVEL:-warn}" "$BIN/kizuna-dispatcher" >"$WORK/dispatcher.log" 2>&1 &
DISP_PID=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$DISP_PID" 2>/dev/null || { tail -20 "$WORK/dispatcher.log"; echo "bench: the dispatcher exited" >&2; exit 1; }
    sleep 0.1
done

say "one channel, push, LINE's limit 2000/s: $COUNT pushes, best ${SECONDS_RUN}s window"
"$WORK/loadgen" -c "$CHANNEL" -t "$TOKEN" -n "$COUNT" -p "$SIM_PORT" -T "$TOPIC" \
    -w "$SECONDS_RUN" -P "$DISP_PID" -Q "$SIM_PID" | tee "$WORK/loadgen.txt"

{
    echo "dispatcher benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
    echo "one channel, push at LINE's limit (2000/s), $COUNT pushes"
    grep '^RESULT' "$WORK/loadgen.txt"
    echo "dispatcher metrics:"
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
        grep -E '^kizuna_dispatcher_(line_calls_total|results_total|requests_total|intake_commit_seconds_(sum|count))' || true
} >"$SUMMARY"
say "summary in $SUMMARY"
cat "$SUMMARY"
