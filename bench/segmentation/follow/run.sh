#!/usr/bin/env bash
# The follow benchmark (issue 10's last target; not a test): "a follow
# becomes FriendAdded on friend.events with p99 at most 20 ms at 2,000
# follows/s". A real kizuna-segmentation, started here on its own admin
# port, consumes line.webhook; loadgen.c publishes a channel on `channels`,
# produces follow WebhookEvents (as ingest would) at BENCH_RATE per second
# for BENCH_SECONDS, open loop, and reads friend.events, timing each follow
# from the moment it was due to its FriendAdded. It prints p50/p90/p99/p99.9
# and max, and the CPU of segmentation, PostgreSQL (postmaster and
# backends), Kafka, the load generator and the rest of the machine.
#
# By default (BENCH_STACK=private) PostgreSQL and Kafka are a private pair
# started for the run (ports BENCH_PG_PORT 54369, BENCH_KAFKA_PORT 19492,
# BENCH_KAFKA_CONTROLLER_PORT 19493) and removed after it; BENCH_STACK=shared
# uses the local stack. Nothing consumes send.requests here: the profile
# requests the follows cause are produced and left on the topic.
#
# Settings (environment): BUILD (build), BENCH_RATE (2000), BENCH_SECONDS
# (30, measured), BENCH_WARMUP_SECONDS (10, at the same rate, not counted),
# BENCH_WEBHOOK_CONSUMERS ("1 2": one run per value, each with a fresh
# segmentation and channel, SEGMENTATION_WEBHOOK_CONSUMERS), BENCH_ADMIN_PORT (18282), and segmentation's own variables
# (SEGMENTATION_WEBHOOK_CONSUMERS...), passed through. docs/benchmarks.md
# records runs. Run it while holding /tmp/kizuna-integ.lock on a shared box.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
HERE="$ROOT/bench/segmentation/follow"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ "${1:-}" != "--inner" ]; then
    if [ ! -x "$BIN/kizuna-segmentation" ]; then
        make -C "$ROOT" --no-print-directory BUILD="$BUILD" all
    fi
    bench_with_stack segmentation-follow 54369 19492 19493
fi

RATE="${BENCH_RATE:-2000}"
SECONDS_RUN="${BENCH_SECONDS:-30}"
WARMUP="${BENCH_WARMUP_SECONDS:-10}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-18282}"
WORK="$BUILD/bench/segmentation-follow"
mkdir -p "$WORK"
SUMMARY="$WORK/summary.txt"

say() { printf 'bench: %s\n' "$*"; }

SEG_PID=""
cleanup() {
    bench_stop "$SEG_PID"
    SEG_PID=""
}
trap cleanup EXIT

say "building loadgen"
PKGS="rdkafka libpq libmicrohttpd libprotobuf-c libcurl jansson libjwt uuid libcrypto"
make -C "$ROOT" --no-print-directory BUILD="$BUILD" "$BUILD/lib/libkizuna_common.a" \
    "$BUILD/lib/libkizuna_proto.a" >/dev/null
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -pthread -I"$ROOT/common" -I"$BUILD/gen" \
    $(pkg-config --cflags $PKGS) -o "$WORK/loadgen" "$HERE/loadgen.c" \
    "$BUILD/lib/libkizuna_common.a" "$BUILD/lib/libkizuna_proto.a" \
    $(pkg-config --libs $PKGS) -lm
PG_PID="$(bench_listener_pid "${KIZUNA_PG_PORT:-54329}")"
KAFKA_PID="$(bench_listener_pid "${KIZUNA_KAFKA_PORT:-19092}")"

# One run: a segmentation with $1 line.webhook consumers and a fresh channel.
run_one() {
    local consumers="$1" rc=0
    CHANNEL="9$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')$(date +%s)"
    say "starting kizuna-segmentation ($consumers webhook consumers, admin 127.0.0.1:$ADMIN_PORT), log $WORK/segmentation-$consumers.log"
    SEGMENTATION_ADMIN_PORT="$ADMIN_PORT" SEGMENTATION_WEBHOOK_CONSUMERS="$consumers" \
        LOG_LEVEL="${LOG_LEVEL:-warn}" "$BIN/kizuna-segmentation" >"$WORK/segmentation-$consumers.log" 2>&1 &
    SEG_PID=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
        kill -0 "$SEG_PID" 2>/dev/null || {
            tail -20 "$WORK/segmentation-$consumers.log"
            echo "bench: segmentation exited" >&2
            exit 1
        }
        sleep 0.1
    done
    say "channel $CHANNEL: $RATE follows/s for ${SECONDS_RUN}s after ${WARMUP}s; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$WORK/loadgen" -c "$CHANNEL" -r "$RATE" -s "$SECONDS_RUN" -w "$WARMUP" -S "$SEG_PID" \
        -G "$PG_PID" -K "$KAFKA_PID" | tee "$WORK/loadgen-$consumers.txt" || rc=$?
    {
        echo "== $consumers webhook consumer(s), relay linger ${SEGMENTATION_RELAY_LINGER_MS:-2} ms"
        grep -E '^(warm|RESULT)' "$WORK/loadgen-$consumers.txt" || true
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
            grep -E '^kizuna_(segmentation_webhook_events_total|consumer_records_total|outbox_relayed_total|segmentation_webhook_lag_seconds_(sum|count))' || true
    } >>"$SUMMARY"
    cleanup
    return "$rc"
}

{
    echo "segmentation follow benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
        "$RATE follows/s for ${SECONDS_RUN}s after ${WARMUP}s of warm-up"
    echo "load average before: $(cat /proc/loadavg)"
} >"$SUMMARY"
rc=0
for consumers in ${BENCH_WEBHOOK_CONSUMERS:-1 2}; do
    run_one "$consumers" || rc=$?
done
say "summary in $SUMMARY"
cat "$SUMMARY"
exit "$rc"
