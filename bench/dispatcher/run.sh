#!/usr/bin/env bash
# The dispatcher benchmark (issue 4; not a test). For each mode a real
# kizuna-dispatcher sends to a real line-sim, both started here on their own
# ports (fresh for every mode), with the local stack's PostgreSQL and Kafka.
# loadgen.c sets the channels up (simulator, ChannelConfig with the token
# sealed as ingest seals it, limits through the admin API), produces the
# requests to the benchmark topic and reads the simulator's counters once a
# second. It reports the achieved rate (mean over the best BENCH_SECONDS
# window), the highest count in any sliding second on one channel, 429s,
# duplicates, CPU of the dispatcher, line-sim, PostgreSQL (postmaster and
# backends) and Kafka, what the rest of the machine used ("other"), and RSS.
# By default (BENCH_STACK=private) PostgreSQL and Kafka are a private pair
# started for the run (ports BENCH_PG_PORT 54359, BENCH_KAFKA_PORT 19392,
# BENCH_KAFKA_CONTROLLER_PORT 19393) and removed after it; BENCH_STACK=shared
# uses the local stack (deploy/local/stack.sh with-stack starts it if it is
# not running and stops again only what it started).
#
# Modes (BENCH_MODES, default "one eight multicast"; issue 4's three targets):
#   one        one channel, push at LINE's limit (2,000/s): >= 98 %, no 429
#   eight      BENCH_CHANNELS (8) channels, push, limit raised to
#              BENCH_CHANNEL_LIMIT (2,000/s each) in simulator and dispatcher:
#              >= 8,000 req/s in total
#   multicast  one channel, multicast of 500 recipients at LINE's 200 req/s:
#              100,000 recipients/s
#
# Settings (environment): BUILD (build), BENCH_SECONDS (30), BENCH_COUNT
# (requests per mode; default: the mode's target rate * (BENCH_SECONDS + 10)),
# BENCH_CHANNELS (8), BENCH_CHANNEL_LIMIT (2000), BENCH_MULTICAST_LIMIT (0:
# LINE's 200/s; else raised in both), BENCH_BURST (0: the
# dispatcher's default burst; else set per channel), BENCH_RECORD (1: the
# simulator keeps messages and detects duplicates; multicast always 0),
# BENCH_SIM_PORT (18290), BENCH_ADMIN_PORT (18284), BENCH_SIM_THREADS (4), and
# the dispatcher's own variables (DISPATCHER_MAX_INFLIGHT,
# DISPATCHER_RATE_MARGIN_MS...), passed through. docs/benchmarks.md records
# runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
HERE="$ROOT/bench/dispatcher"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ "${1:-}" != "--inner" ]; then
    if [ ! -x "$BIN/kizuna-dispatcher" ] || [ ! -x "$BIN/line-sim" ]; then
        make -C "$ROOT" --no-print-directory BUILD="$BUILD" all
    fi
    bench_with_stack dispatcher 54359 19392 19393
fi

SECONDS_RUN="${BENCH_SECONDS:-30}"
MODES="${BENCH_MODES:-one eight multicast}"
NCHANNELS="${BENCH_CHANNELS:-8}"
CHANNEL_LIMIT="${BENCH_CHANNEL_LIMIT:-2000}"
RECORD="${BENCH_RECORD:-1}"
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
cleanup() {
    bench_stop "$DISP_PID"
    DISP_PID=""
    bench_stop "$SIM_PID"
    SIM_PID=""
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
PG_PID="$(bench_listener_pid "${KIZUNA_PG_PORT:-54329}")"
KAFKA_PID="$(bench_listener_pid "${KIZUNA_KAFKA_PORT:-19092}")"

# Starts line-sim and the dispatcher for one mode (log names carry the mode).
start_pair() {
    local mode="$1" record="$2"
    CHANNEL="8$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')$(date +%s)"
    TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    say "starting line-sim on 127.0.0.1:$SIM_PORT ($SIM_THREADS threads), log $WORK/line-sim-$mode.log"
    LINESIM_PORT="$SIM_PORT" LINESIM_THREADS="$SIM_THREADS" LINESIM_LOG_LEVEL=warn \
        LINESIM_MAX_RECORDED=0 "$BIN/line-sim" >"$WORK/line-sim-$mode.log" 2>&1 &
    SIM_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$SIM_PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local rec=false
    [ "$record" = 1 ] && rec=true
    curl -fsS -XPUT "http://127.0.0.1:$SIM_PORT/_sim/settings" -H 'Content-Type: application/json' \
        -d "{\"record\": $rec}" >/dev/null
    say "starting kizuna-dispatcher (admin 127.0.0.1:$ADMIN_PORT), log $WORK/dispatcher-$mode.log"
    DISPATCHER_ADMIN_PORT="$ADMIN_PORT" DISPATCHER_LINE_API_BASE="http://127.0.0.1:$SIM_PORT" \
        DISPATCHER_INSTANCE_ID="bench-$CHANNEL" DISPATCHER_GROUP="bench-$CHANNEL" \
        DISPATCHER_REQUESTS_TOPIC="$TOPIC" DISPATCHER_INTAKE_FROM=latest \
        LOG_LEVEL="${LOG_LEVEL:-warn}" "$BIN/kizuna-dispatcher" >"$WORK/dispatcher-$mode.log" 2>&1 &
    DISP_PID=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
        kill -0 "$DISP_PID" 2>/dev/null || {
            tail -20 "$WORK/dispatcher-$mode.log"
            echo "bench: the dispatcher exited" >&2
            exit 1
        }
        sleep 0.1
    done
}

run_mode() {
    local mode="$1" k=1 limit=0 recipients=0 rate=2000 record="$RECORD" what
    case "$mode" in
    one) what="one channel, push at LINE's limit (2000/s)" ;;
    eight)
        k="$NCHANNELS"
        limit="$CHANNEL_LIMIT"
        rate=8000 # the target, not the sum of the limits: keeps the run short
        what="$k channels, push, limit $limit/s each"
        ;;
    multicast)
        recipients=500
        limit="${BENCH_MULTICAST_LIMIT:-0}"
        rate=200
        [ "$limit" -gt 0 ] && rate="$limit"
        record=0 # 500 recipients x 200/s would fill the simulator's memory
        what="one channel, multicast x 500 at $rate/s"
        ;;
    *)
        echo "bench: unknown mode $mode (one, eight, multicast)" >&2
        exit 2
        ;;
    esac
    local count="${BENCH_COUNT:-$((rate * (SECONDS_RUN + 10)))}"
    start_pair "$mode" "$record"
    say "$mode: $what: $count requests, best ${SECONDS_RUN}s window; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$WORK/loadgen" -c "$CHANNEL" -t "$TOKEN" -n "$count" -p "$SIM_PORT" -a "$ADMIN_PORT" \
        -T "$TOPIC" -k "$k" -L "$limit" -B "${BENCH_BURST:-0}" -M "$recipients" -w "$SECONDS_RUN" -P "$DISP_PID" \
        -Q "$SIM_PID" -G "$PG_PID" -K "$KAFKA_PID" | tee "$WORK/loadgen-$mode.txt"
    {
        echo "== $mode: $what, $count requests, record=$record, burst=${BENCH_BURST:-default}, margin=${DISPATCHER_RATE_MARGIN_MS:-default} ms"
        grep '^RESULT' "$WORK/loadgen-$mode.txt"
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
            grep -E '^kizuna_dispatcher_(line_calls_total|results_total|requests_total|intake_commit_seconds_(sum|count))' || true
    } >>"$SUMMARY"
    cleanup
}

{
    echo "dispatcher benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, modes: $MODES"
    echo "load average before: $(cat /proc/loadavg)"
} >"$SUMMARY"
for mode in $MODES; do
    run_mode "$mode"
done
say "summary in $SUMMARY"
cat "$SUMMARY"
