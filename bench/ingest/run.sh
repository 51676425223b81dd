#!/usr/bin/env bash
# The ingest webhook benchmark (issue 3; not a test). Against a real
# kizuna-ingest and the real local broker, on this machine:
#   1. maximum throughput: wrk, closed loop, BENCH_CONNECTIONS connections;
#   2. a fixed rate (BENCH_RATE req/s): ratebench.c, open loop, latency
#      counted from the time each request was due (wrk2 is not in Debian).
# Every request is one LINE webhook with one text message event, correctly
# signed (gen_bodies.py); a 200 means the event is durable (broker ack, or
# spool commit past the budget). It reports req/s, p50, p99, the CPU used by
# ingest, the broker, the load generator and the rest of the machine, and
# how the events became durable (ingest's time-to-ack metric). It starts its own kizuna-ingest on
# its own ports, registers a fresh channel, and stops ingest at the end.
#
# The infra: by default a private PostgreSQL + Kafka, started through
# deploy/local/stack.sh with-stack with KIZUNA_LOCAL_DIR under $BUILD and
# ports of their own, and removed afterwards. A run writes millions of
# records to line.webhook, and the integration tests read that topic from
# the beginning: on the shared stack (.local/) every run would slow them
# down (and disturb whoever is using it). BENCH_STACK=shared uses the
# shared stack instead (starting it if needed, as `make test` does).
#
# Settings (environment; bench/ingest/README.md has the table): BUILD,
# BENCH_RUNS ("max rate"; "outage" stops the broker during a fixed-rate
# run), BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_RATE, BENCH_CONNECTIONS,
# BENCH_RATE_CONNECTIONS, BENCH_WRK_THREADS, BENCH_BODIES, BENCH_PUBLIC_PORT,
# BENCH_ADMIN_PORT, BENCH_STACK, BENCH_PG_PORT, BENCH_KAFKA_PORT,
# BENCH_KAFKA_CONTROLLER_PORT, BENCH_OUTAGE_RATE, BENCH_OUTAGE_SECONDS,
# BENCH_OUTAGE_CONNECTIONS, and ingest's own variables
# (INGEST_PUBLIC_THREADS, INGEST_ACK_BUDGET_MS...), passed through.
# docs/benchmarks.md records runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
HERE="$ROOT/bench/ingest"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ "${1:-}" != "--inner" ]; then
    # The project's one installer (apt only when it is missing; sudo when
    # not root), as tests/fuzz/run.sh does.
    command -v wrk >/dev/null 2>&1 || "$ROOT/deploy/local/deps.sh" --packages wrk
    if [ ! -x "$BIN/kizuna-ingest" ] || [ ! -x "$BIN/kizunactl" ]; then
        make -C "$ROOT" --no-print-directory BUILD="$BUILD" all
    fi
    # The broker's GC and safepoint log, kept after the stack is gone:
    # gcslow.py lines its pauses up with ratebench's slow answers.
    rm -f "$BUILD/bench/ingest/kafka-gc.log"
    mkdir -p "$BUILD/bench/ingest"
    [ "${BENCH_STACK:-private}" = private ] &&
        export KIZUNA_KAFKA_JVM_OPTS="${KIZUNA_KAFKA_JVM_OPTS:-} -Xlog:gc*,safepoint:file=$BUILD/bench/ingest/kafka-gc.log:time,uptime,level,tags"
    bench_with_stack ingest 54349 19292 19293
fi

SECONDS_RUN="${BENCH_SECONDS:-30}"
WARMUP="${BENCH_WARMUP_SECONDS:-30}"
RATE="${BENCH_RATE:-5000}"
CONNS_LIST="${BENCH_CONNECTIONS:-64 256}"
RATE_CONNS="${BENCH_RATE_CONNECTIONS:-64}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
NBODIES="${BENCH_BODIES:-50000}"
PUBLIC_PORT="${BENCH_PUBLIC_PORT:-18380}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-18381}"
RUNS="${BENCH_RUNS:-max rate}"
LOCAL="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
WORK="$BUILD/bench/ingest"
mkdir -p "$WORK"
LOG="$WORK/ingest.log"
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"

say() { printf 'bench: %s\n' "$*"; }
report() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

INGEST_PID=""
SIM_PID=""
KAFKA_DOWN=""
cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill -TERM "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
    if [ -n "$KAFKA_DOWN" ]; then
        "$ROOT/deploy/local/stack.sh" kafka-start >/dev/null 2>&1 || echo "bench: could not restart Kafka" >&2
    fi
    if [ -n "$INGEST_PID" ] && kill -0 "$INGEST_PID" 2>/dev/null; then
        kill -TERM "$INGEST_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$INGEST_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$INGEST_PID" 2>/dev/null || true
        wait "$INGEST_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# --- CPU accounting from /proc ------------------------------------------------
TCK="$(getconf CLK_TCK)"
# utime + stime of a process, in clock ticks (fields 14 and 15; the command
# name in field 2 may hold spaces, so count from the closing parenthesis).
proc_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}
# busy and total ticks of the whole machine.
machine_ticks() {
    local _cpu user nice sys idle iowait irq softirq steal rest
    read -r _cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}
# CPU seconds of this shell's finished children (the load generators), into
# the variable named $1: the second line of `times`, user and system, as
# "XmY.Zs" each. `times` must run in this shell, not in a $(...) subshell,
# whose children are others.
children_seconds() {
    times >"$WORK/times.txt"
    printf -v "$1" '%s' "$(awk 'NR == 2 { n = split($0, f, " "); s = 0
        for (i = 1; i <= n; i++) { split(f[i], ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2] }
        print s }' "$WORK/times.txt")"
}
# Context switches of all of ingest's threads so far.
ingest_switches() {
    cat /proc/"$INGEST_PID"/task/*/status 2>/dev/null |
        awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { print s + 0 }'
}
KAFKA_PID="$(cat "$LOCAL/run/kafka.pid" 2>/dev/null || true)"
cpu_begin() {
    S0="$(ingest_switches)"
    children_seconds C0
    T0="$(date +%s.%N)"
    I0="$(proc_ticks "$INGEST_PID")"
    K0="$(proc_ticks "${KAFKA_PID:-0}")"
    read -r MB0 MT0 <<<"$(machine_ticks)"
}
# Sets CPU to the CPU used by ingest, the broker, the load generator and
# everything else, each in % of one core, and how busy the machine was. Runs
# in this shell (not in $(...)), for children_seconds.
cpu_end() {
    local t1 i1 k1 mb1 mt1 c1
    children_seconds c1
    SWITCHES=$(($(ingest_switches) - S0))
    t1="$(date +%s.%N)"
    i1="$(proc_ticks "$INGEST_PID")"
    k1="$(proc_ticks "${KAFKA_PID:-0}")"
    read -r mb1 mt1 <<<"$(machine_ticks)"
    # A broker stopped and started again during the run (outage) is a new
    # process: its CPU is not comparable, so it counts as 0 then.
    CPU="$(awk -v t1="$t1" -v t0="$T0" -v i=$((i1 - I0)) -v k=$((k1 >= K0 ? k1 - K0 : 0)) \
        -v mb=$((mb1 - MB0)) -v mt=$((mt1 - MT0)) -v tck="$TCK" -v n="$(nproc)" \
        -v c="$(awk -v a="$C0" -v b="$c1" 'BEGIN { print b - a }')" \
        'BEGIN { t = t1 - t0; busy = mt ? mb / mt : 0
                 other = 100 * (busy * n - i / tck / t - k / tck / t - c / t)
                 printf "ingest %.0f%%, broker %.0f%%, load generator %.0f%%, everything else (kernel, PostgreSQL, other work) %.0f%% (of one core); machine %.0f%% busy (%d cores)",
                 100 * i / tck / t, 100 * k / tck / t, 100 * c / t, other < 0 ? 0 : other, 100 * busy, n }')"
}

metric() { # name{labels} value from ingest's public /metrics, 0 if absent
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}

# --- ingest and a channel ------------------------------------------------------
# ingest registers a channel only when LINE's bot info, asked with the
# channel's access token, names its bot user id: the simulator plays LINE.
CHANNEL="9$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
BOT_USER="U8e742f61d673b39c7fff3cecb7536ef0"
SIM_PORT="${BENCH_SIM_PORT:-18390}"
LINESIM_PORT="$SIM_PORT" LINESIM_THREADS=1 LINESIM_CHANNELS="$CHANNEL:bench-token:$BOT_USER" \
    "$BIN/line-sim" >"$WORK/line-sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$SIM_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done

say "starting kizuna-ingest on 127.0.0.1:$PUBLIC_PORT (admin $ADMIN_PORT), log $LOG"
# wrk's connections all come from 127.0.0.1: no per-address cap unless asked.
INGEST_LINE_API_BASE="http://127.0.0.1:$SIM_PORT" \
    INGEST_PUBLIC_PORT="$PUBLIC_PORT" INGEST_ADMIN_PORT="$ADMIN_PORT" LOG_LEVEL="${LOG_LEVEL:-warn}" \
    INGEST_PUBLIC_PER_ADDRESS_CONNECTIONS="${INGEST_PUBLIC_PER_ADDRESS_CONNECTIONS:-0}" \
    "$BIN/kizuna-ingest" >"$LOG" 2>&1 &
INGEST_PID=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$INGEST_PID" 2>/dev/null || { tail -20 "$LOG"; echo "bench: kizuna-ingest exited" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null || { echo "bench: ingest not ready" >&2; exit 1; }

TENANT="bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TOKEN="$("$BIN/kizunactl" token issue --tenant "$TENANT" --role admin --ttl 1h --subject bench)"
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$ADMIN_PORT/v1/channels" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "{\"channel_id\":\"$CHANNEL\",\"name\":\"bench\",\"channel_secret\":\"$SECRET\",\"access_token\":\"bench-token\",\"bot_user_id\":\"$BOT_USER\"}"
say "channel $CHANNEL registered for tenant $TENANT"

BODIES="$WORK/bodies.txt"
python3 "$HERE/gen_bodies.py" "$SECRET" "$NBODIES" "$BODIES"
cc -std=c11 -O2 -Wall -Wextra -o "$WORK/ratebench" "$HERE/ratebench.c"
WEBHOOK_PATH="/line/webhook/$CHANNEL"
URL="http://127.0.0.1:$PUBLIC_PORT"

# The answer to one signed body must be 200 before anything is measured.
first="$(head -1 "$BODIES")"
status="$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL$WEBHOOK_PATH" \
    -H 'Content-Type: application/json' -H "X-Line-Signature: ${first%% *}" --data-binary "${first#* }")"
[ "$status" = 200 ] || { echo "bench: a signed webhook got $status" >&2; tail -20 "$LOG"; exit 1; }

export BENCH_BODIES="$BODIES" BENCH_PATH="$WEBHOOK_PATH" BENCH_THREADS="$WRK_THREADS"
# A broker just started runs its JIT compiler for a while: without this,
# its first half-minute's stalls would be the p99.
say "warming up (${WARMUP}s at about 5,000 req/s)"
"$WORK/ratebench" -p "$PUBLIC_PORT" -P "$WEBHOOK_PATH" -b "$BODIES" -r 5000 -d "$WARMUP" \
    -c 64 >"$WORK/warmup.txt"

# The acked requests' time-to-ack histogram (ingest's own clock, arrival to
# the last ack), as "le count" lines.
ack_buckets() {
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
        sed -n 's/^kizuna_ingest_time_to_ack_seconds_bucket{outcome="acked",le="\([^"]*\)"} \(.*\)$/\1 \2/p'
}
# Between two ack_buckets snapshots: the share of requests durable within
# 10, 25 and 50 ms, and ingest's own p99 bucket.
ack_share() {
    awk 'NR == FNR { before[$1] = $2; next }
         { d[$1] = $2 - before[$1]; order[++n] = $1 }
         END { total = d["+Inf"]; if (!total) { print "no acked requests"; exit }
               for (i = 1; i <= n; i++) if (d[order[i]] >= 0.99 * total) { p99 = order[i]; break }
               printf "ingest-side time to ack: %.2f%% within 10 ms, %.2f%% within 25 ms, %.2f%% within 50 ms; p99 <= %s s",
                   100 * d["0.01"] / total, 100 * d["0.025"] / total, 100 * d["0.05"] / total, p99 }' "$1" "$2"
}

outcomes() {
    printf 'acked %s, spooled %s, failed %s' \
        "$(metric 'kizuna_ingest_time_to_ack_seconds_count{outcome="acked"}')" \
        "$(metric 'kizuna_ingest_time_to_ack_seconds_count{outcome="spooled"}')" \
        "$(metric 'kizuna_ingest_time_to_ack_seconds_count{outcome="failed"}')"
}

report "== ingest webhook benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
report "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load generator, ingest, broker and PostgreSQL on this one machine"
report "stack: ${BENCH_STACK:-private} (Kafka $KAFKA_BROKERS, PostgreSQL port ${KIZUNA_PG_PORT:-54329})"
report "ingest: INGEST_PUBLIC_THREADS=${INGEST_PUBLIC_THREADS:-default} INGEST_ACK_BUDGET_MS=${INGEST_ACK_BUDGET_MS:-default}; bodies: one text message event, $(head -1 "$BODIES" | wc -c) bytes per line"
report "before the runs: $(outcomes)"

for run in $RUNS; do
    case "$run" in
    max)
        for CONNS in $CONNS_LIST; do
            report ""
            report "-- max throughput: wrk -t$WRK_THREADS -c$CONNS -d${SECONDS_RUN}s --latency -s bench/ingest/webhook.lua $URL"
            ack_buckets >"$WORK/buckets0.txt"
            cpu_begin
            wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$HERE/webhook.lua" "$URL" >"$WORK/wrk.txt"
            cpu_end
            cpu="$CPU"
            rps="$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.txt")"
            p50="$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")"
            p99="$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")"
            non2xx="$(awk '/Non-2xx/ { print $NF }' "$WORK/wrk.txt")"
            errs="$(awk '/Socket errors/ { print }' "$WORK/wrk.txt")"
            report "   $rps req/s, p50 $p50, p99 $p99, non-2xx ${non2xx:-0}${errs:+, $errs}"
            ack_buckets >"$WORK/buckets1.txt"
            report "   $(ack_share "$WORK/buckets0.txt" "$WORK/buckets1.txt")"
            report "   cpu: $cpu"
            report "   after: $(outcomes)"
            sed 's/^/   | /' "$WORK/wrk.txt" >>"$SUMMARY"
        done
        ;;
    rate)
        report ""
        report "-- fixed rate: ratebench -r $RATE -d $SECONDS_RUN -c $RATE_CONNS (bench/ingest/ratebench.c, open loop)"
        ack_buckets >"$WORK/buckets0.txt"
        cpu_begin
        "$WORK/ratebench" -p "$PUBLIC_PORT" -P "$WEBHOOK_PATH" -b "$BODIES" -r "$RATE" \
            -d "$SECONDS_RUN" -c "$RATE_CONNS" -T "$WORK/ratebench-timeline.txt" >"$WORK/ratebench.txt"
        cpu_end
        cpu="$CPU"
        line="$(grep '^RESULT' "$WORK/ratebench.txt")"
        val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
        report "   $(val rate) req/s answered of $RATE due, p50 $(val p50_ms) ms, p99 $(val p99_ms) ms, p99.9 $(val p999_ms) ms, max $(val max_ms) ms; non-200 $(val non200), errors $(val errors), unanswered $(val unanswered)"
        ack_buckets >"$WORK/buckets1.txt"
        report "   $(ack_share "$WORK/buckets0.txt" "$WORK/buckets1.txt")"
        report "   cpu: $cpu; ingest context switches per request: $(awk -v s="$SWITCHES" -v n="$(val answered)" 'BEGIN { printf "%.1f", n ? s / n : 0 }')"
        report "   after: $(outcomes)"
        if [ -s "$WORK/kafka-gc.log" ]; then
            python3 "$HERE/gcslow.py" "$WORK/ratebench-timeline.txt" "$WORK/kafka-gc.log" >"$WORK/gcslow.txt" 2>&1 || true
            grep -E '^(broker safepoint|slow answers in flight|  =>)' "$WORK/gcslow.txt" |
                sed 's/^ */   broker GC: /' | tee -a "$SUMMARY"
            sed 's/^/   | /' "$WORK/gcslow.txt" >>"$SUMMARY"
        fi
        grep -v '^RESULT' "$WORK/ratebench.txt" | sed 's/^/   | /' >>"$SUMMARY"
        ;;
    outage)
        # Opt-in (BENCH_RUNS="outage"): stops the broker for the run; with
        # BENCH_STACK=shared that disturbs anything else using the stack.
        orate="${BENCH_OUTAGE_RATE:-500}"
        osecs="${BENCH_OUTAGE_SECONDS:-10}"
        oconns="${BENCH_OUTAGE_CONNECTIONS:-800}"
        report ""
        report "-- broker down: ratebench -r $orate -d $osecs -c $oconns with Kafka stopped (every event must be spooled)"
        "$ROOT/deploy/local/stack.sh" kafka-stop >"$WORK/outage-stack.log" 2>&1
        KAFKA_DOWN=1
        cpu_begin
        "$WORK/ratebench" -p "$PUBLIC_PORT" -P "$WEBHOOK_PATH" -b "$BODIES" -r "$orate" \
            -d "$osecs" -c "$oconns" >"$WORK/ratebench-outage.txt" || true
        cpu_end
        cpu="$CPU"
        "$ROOT/deploy/local/stack.sh" kafka-start >>"$WORK/outage-stack.log" 2>&1
        KAFKA_DOWN=""
        KAFKA_PID="$(cat "$LOCAL/run/kafka.pid" 2>/dev/null || true)"
        line="$(grep '^RESULT' "$WORK/ratebench-outage.txt" || true)"
        val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
        report "   $(val rate) req/s answered of $orate due, p50 $(val p50_ms) ms, p99 $(val p99_ms) ms, max $(val max_ms) ms; 200 x $(val ok), non-200 $(val non200), errors $(val errors), unanswered $(val unanswered)"
        report "   cpu: $cpu"
        report "   after: $(outcomes)"
        grep -v '^RESULT' "$WORK/ratebench-outage.txt" | sed 's/^/   | /' >>"$SUMMARY"
        ;;
    *)
        echo "bench: unknown run '$run' (max, rate, outage)" >&2
        exit 2
        ;;
    esac
done
report ""
report "spooled events (broker did not confirm within the budget): $(metric 'kizuna_ingest_spooled_events_total{topic="line.webhook"}')"
say "summary in $SUMMARY"
