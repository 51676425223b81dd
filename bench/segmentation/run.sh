#!/usr/bin/env bash
# The segmentation benchmark (issue 10; not a test). A real
# kizuna-segmentation on a generated people database, on this machine:
#   count   a 3-condition segment (tag BENCH_TAG, score between BENCH_SCORE_LO
#           and BENCH_SCORE_HI, added within BENCH_DAYS days): the service's
#           answer (GET segments/{id}/count of a saved segment, and POST
#           segments/preview) against the best of several hand-written SQL
#           forms of the same question on the same tables (hand.sql), run
#           in turns, BENCH_RUNS times each: median, best, the ratio, the
#           EXPLAIN ANALYZE of every form and of the service's own SQL;
#   export  GET friends.csv of every friend of the channel (columns
#           user_id,display_name,added_at,blocked,tags,field:score): wall
#           time, bytes, rows, the service's peak RSS (VmHWM, reset just
#           before) and CPU;
#   import  POST friends/import.csv of BENCH_IMPORT_ROWS rows (user_id,
#           tag:tag30 = 1, field:points = a new value) for existing friends
#           in random order: rows/s, CPU.
# The data (gen.sql): BENCH_FRIENDS friends on the measured channel and
# BENCH_FRIENDS2 on a second one, 50 tags, 10 fields, generated set-based in
# PostgreSQL by the service's own role, then VACUUM ANALYZE.
#
# Targets (issue 10): count <= 500 ms and <= 1.5 x the best hand SQL;
# export of 1M friends <= 15 s with RSS <= 64 MB; import >= 10,000 rows/s.
#
# By default (BENCH_STACK=private) PostgreSQL and Kafka are a private pair
# started for the run (ports BENCH_PG_PORT 54379, BENCH_KAFKA_PORT 19592,
# BENCH_KAFKA_CONTROLLER_PORT 19593: not those of bench/segmentation/follow)
# and removed after it; BENCH_STACK=shared uses the local stack (and drops
# and recreates its segmentation schema, as the integration tests do).
#
# Settings (environment): BUILD (build), BENCH_PHASES ("count export
# import"), BENCH_FRIENDS (1000000), BENCH_FRIENDS2 (30 % of BENCH_FRIENDS),
# BENCH_RUNS (11), BENCH_TAG (tag05), BENCH_SCORE_LO (200), BENCH_SCORE_HI
# (499), BENCH_DAYS (30), BENCH_IMPORT_ROWS (100000), BENCH_IMPORT_CHUNK
# (rows per request; 0: all in one), BENCH_SEED (0.42), BENCH_SEG_PORT
# (18286), BENCH_KEEP_CSV (0: the exported file is deleted after counting),
# and the service's own variables (SEGMENTATION_API_DB_CONNECTIONS...),
# passed through. docs/benchmarks.md records runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
HERE="$ROOT/bench/segmentation"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if [ "${1:-}" != "--inner" ]; then
    if [ ! -x "$BIN/kizuna-segmentation" ] || [ ! -x "$BIN/kizunactl" ]; then
        make -C "$ROOT" --no-print-directory BUILD="$BUILD" all
    fi
    bench_with_stack segmentation 54379 19592 19593
fi

PHASES="${BENCH_PHASES:-count export import}"
FRIENDS="${BENCH_FRIENDS:-1000000}"
FRIENDS2="${BENCH_FRIENDS2:-$((FRIENDS * 3 / 10))}"
RUNS="${BENCH_RUNS:-11}"
TAG="${BENCH_TAG:-tag05}"
SCORE_LO="${BENCH_SCORE_LO:-200}"
SCORE_HI="${BENCH_SCORE_HI:-499}"
DAYS="${BENCH_DAYS:-30}"
IMPORT_ROWS="${BENCH_IMPORT_ROWS:-100000}"
IMPORT_CHUNK="${BENCH_IMPORT_CHUNK:-0}"
SEED="${BENCH_SEED:-0.42}"
SEG_PORT="${BENCH_SEG_PORT:-18286}"
LOCAL="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
PSQL="${KIZUNA_PG_BIN:-/usr/lib/postgresql/15/bin}/psql"
WORK="$BUILD/bench/segmentation"
mkdir -p "$WORK"
LOG="$WORK/segmentation.log"
SUMMARY="$WORK/summary.txt" # the numbers
DETAIL="$WORK/detail.txt"   # plans, samples, raw timings
: >"$SUMMARY"
: >"$DETAIL"
URL="http://127.0.0.1:$SEG_PORT"

say() { printf 'bench: %s\n' "$*"; }
report() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
detail() { printf '%s\n' "$*" >>"$DETAIL"; }

SEG_PID=""
SAMPLER_PID=""
cleanup() {
    if [ -n "$SAMPLER_PID" ]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    if [ -n "$SEG_PID" ] && kill -0 "$SEG_PID" 2>/dev/null; then
        kill -TERM "$SEG_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$SEG_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SEG_PID" 2>/dev/null; then
            echo "bench: kizuna-segmentation did not stop within 30 s; killing it" >&2
            kill -KILL "$SEG_PID" 2>/dev/null || true
        fi
        wait "$SEG_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# psql as the service's role (search_path segmentation), or as the admin.
sql() { "$PSQL" "$SEGMENTATION_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql_value() { sql -At -c "$1"; }
sql_admin() { "$PSQL" "$KIZUNA_PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

# --- CPU and memory from /proc --------------------------------------------------
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
# PostgreSQL: the postmaster with the children it has reaped (fields 16
# and 17: a psql session's backend, once it ended) and every child still
# running (backends, autovacuum, checkpointer...).
pg_ticks() {
    local total p stat
    stat="$(cat "/proc/$PG_PID/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    total=$((${12} + ${13} + ${14} + ${15}))
    for p in $(pgrep -P "$PG_PID" 2>/dev/null); do
        total=$((total + $(proc_ticks "$p")))
    done
    echo "$total"
}
machine_ticks() {
    local _cpu user nice sys idle iowait irq softirq steal rest
    read -r _cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}
status_kb() { # field of /proc/<pid>/status in kB (VmRSS, VmHWM)
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
cpu_begin() {
    T0="$(date +%s.%N)"
    S0="$(proc_ticks "$SEG_PID")"
    P0="$(pg_ticks)"
    read -r MB0 MT0 <<<"$(machine_ticks)"
}
# Sets CPU: what the service, PostgreSQL and everything else used since
# cpu_begin, in % of one core (and the service's CPU seconds, CPU_SEG_S).
cpu_end() {
    local t1 s1 p1 mb1 mt1
    t1="$(date +%s.%N)"
    s1="$(proc_ticks "$SEG_PID")"
    p1="$(pg_ticks)"
    read -r mb1 mt1 <<<"$(machine_ticks)"
    CPU_SEG_S="$(awk -v s=$((s1 - S0)) -v tck="$TCK" 'BEGIN { printf "%.2f", s / tck }')"
    CPU="$(awk -v t1="$t1" -v t0="$T0" -v s=$((s1 - S0)) -v p=$((p1 >= P0 ? p1 - P0 : 0)) \
        -v mb=$((mb1 - MB0)) -v mt=$((mt1 - MT0)) -v tck="$TCK" -v n="$(nproc)" \
        'BEGIN { t = t1 - t0; busy = mt ? mb / mt : 0
                 other = 100 * (busy * n - s / tck / t - p / tck / t)
                 printf "segmentation %.0f%%, PostgreSQL %.0f%%, everything else (curl, kernel, other work) %.0f%% (of one core); machine %.0f%% busy (%d cores)",
                 100 * s / tck / t, 100 * p / tck / t, other < 0 ? 0 : other, 100 * busy, n }')"
}
# Samples the service's VmRSS every 50 ms into $1 (one kB value a line),
# until killed.
rss_sampler() {
    while :; do
        status_kb "$SEG_PID" VmRSS >>"$1"
        sleep 0.05
    done
}

# median and best of the numbers on stdin (one a line): "median best n".
stats() {
    sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "- - 0"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f %d\n", m, v[1], NR }'
}
json_get() { # member of the JSON object in file $1, or empty
    python3 -c 'import json, sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2])
except Exception:
    v = None
print("" if v is None else v)' "$1" "$2"
}

# --- the stack, the service and the data -------------------------------------------
PG_PID="$(ss -ltnpH "sport = :${KIZUNA_PG_PORT:-54329}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1 || true)"
PG_PID="${PG_PID:-0}"
detail "PostgreSQL's postmaster: pid $PG_PID"

# A fresh schema, as the integration tests make it: the service's
# migrations create the tables when it starts.
sql_admin -c "DROP SCHEMA IF EXISTS segmentation CASCADE" \
    -c "CREATE SCHEMA segmentation AUTHORIZATION kizuna_segmentation" 2>/dev/null

say "starting kizuna-segmentation on 127.0.0.1:$SEG_PORT, log $LOG"
SEGMENTATION_ADMIN_PORT="$SEG_PORT" LOG_LEVEL="${LOG_LEVEL:-warn}" \
    "$BIN/kizuna-segmentation" >"$LOG" 2>&1 &
SEG_PID=$!
for _ in $(seq 1 300); do
    curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
    kill -0 "$SEG_PID" 2>/dev/null || { tail -20 "$LOG"; echo "bench: kizuna-segmentation exited" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$URL/readyz" >/dev/null || { echo "bench: segmentation not ready" >&2; exit 1; }

TENANT="bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
CHANNEL="16$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
CHANNEL2="17$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
TOKEN="$(KIZUNA_JWT_KEY="$KIZUNA_JWT_KEY" "$BIN/kizunactl" token issue --tenant "$TENANT" --role admin --ttl 2h --subject bench)"

report "== segmentation benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
report "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
report "stack: ${BENCH_STACK:-private} (PostgreSQL $(sql_value 'SHOW server_version') on port ${KIZUNA_PG_PORT:-54329}: shared_buffers $(sql_value 'SHOW shared_buffers'), work_mem $(sql_value 'SHOW work_mem'), effective_cache_size $(sql_value 'SHOW effective_cache_size'), random_page_cost $(sql_value 'SHOW random_page_cost'), jit $(sql_value 'SHOW jit'))"
report "service: kizuna-segmentation, SEGMENTATION_API_DB_CONNECTIONS=${SEGMENTATION_API_DB_CONNECTIONS:-default}, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"

say "generating $FRIENDS friends on channel $CHANNEL and $FRIENDS2 on $CHANNEL2 (gen.sql)"
g0="$(date +%s.%N)"
sql -v channel="$CHANNEL" -v channel2="$CHANNEL2" -v tenant="$TENANT" -v friends="$FRIENDS" \
    -v friends2="$FRIENDS2" -v seed="$SEED" -f "$HERE/gen.sql" >/dev/null
g1="$(date +%s.%N)"
sql -c "VACUUM (ANALYZE) channels, friends, tags, friend_tags, fields, friend_fields"
g2="$(date +%s.%N)"
report "data: generated in $(awk -v a="$g0" -v b="$g1" 'BEGIN { printf "%.1f", b - a }') s, VACUUM ANALYZE $(awk -v a="$g1" -v b="$g2" 'BEGIN { printf "%.1f", b - a }') s"
sql -At -F ' ' -c "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid) / 1048576, pg_indexes_size(c.oid) / 1048576
    FROM pg_class c WHERE c.relnamespace = 'segmentation'::regnamespace AND c.relname IN ('friends', 'friend_tags', 'friend_fields')
    ORDER BY c.relname" | while read -r rel rows tsize isize; do
    report "   $rel: $rows rows, table $tsize MiB, indexes $isize MiB"
done
report "   channel $CHANNEL: $(sql_value "SELECT count(*) FROM friends WHERE channel_id = '$CHANNEL'") friends, $(sql_value "SELECT count(*) FROM friend_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.channel_id = '$CHANNEL'") tags on friends, $(sql_value "SELECT count(*) FROM friend_fields ff JOIN fields d ON d.id = ff.field_id WHERE d.channel_id = '$CHANNEL'") field values"

# The API, as admin: call METHOD PATH OUTFILE [curl args...] prints
# "status seconds bytes".
call() {
    local method="$1" path="$2" out="$3"
    shift 3
    curl -sS -X "$method" -o "$out" -w '%{http_code} %{time_total} %{size_download}\n' \
        -H "Authorization: Bearer $TOKEN" "$@" "$URL/v1/channels/$CHANNEL/$path"
}

# --- count --------------------------------------------------------------------------
phase_count() {
    local tag_id score_id since filter expect seg_id st t n out form
    tag_id="$(sql_value "SELECT id FROM tags WHERE channel_id = '$CHANNEL' AND name = '$TAG'")"
    score_id="$(sql_value "SELECT id FROM fields WHERE channel_id = '$CHANNEL' AND name = 'score'")"
    since="$(sql_value "SELECT to_char(date_trunc('second', now() - interval '$DAYS days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")"
    filter="{\"all\":[{\"tag\":\"$TAG\"},{\"field\":\"score\",\"op\":\"between\",\"value\":[$SCORE_LO,$SCORE_HI]},{\"added_at\":{\"gte\":\"$since\"}}]}"
    report ""
    report "-- segment count: $filter"
    # The hand-written forms, with the ids looked up once (hand.sql).
    local vars=(-v channel="$CHANNEL" -v tag_id="$tag_id" -v score_id="$score_id"
        -v lo="$SCORE_LO" -v hi="$SCORE_HI" -v since="$since")
    FORMS="$(sed -n 's/^-- form \([a-z_]*\):.*/\1/p' "$HERE/hand.sql")"
    expect="$(sql "${vars[@]}" -At -c "\\set form exists" -f "$HERE/hand.sql" | tail -1)"
    report "   answer (hand SQL): $expect friends"
    for form in $FORMS; do
        n="$(sql "${vars[@]}" -At -c "\\set form $form" -f "$HERE/hand.sql" | tail -1)"
        [ "$n" = "$expect" ] || report "   WRONG: form $form counts $n, not $expect"
        {
            echo "== EXPLAIN (ANALYZE, BUFFERS), form $form"
            sql "${vars[@]}" -c "\\set form $form" -c "\\set explain 1" -f "$HERE/hand.sql"
        } >>"$DETAIL" 2>&1
    done

    # The service: a saved segment (its count) and a preview.
    out="$WORK/answer.json"
    SERVICE=1
    read -r st t n < <(call POST segments "$out" -H 'Content-Type: application/json' \
        --data "{\"name\":\"bench-3\",\"filter\":$filter}")
    seg_id="$(json_get "$out" id)"
    if [ "$st" != 201 ] || [ -z "$seg_id" ]; then
        report "   service: POST segments answered $st ($(head -c 300 "$out")): the service is not measured"
        SERVICE=0
    fi
    # Warm-up: each way twice, so that every run reads from the same caches.
    for _ in 1 2; do
        if [ "$SERVICE" = 1 ]; then
            call GET "segments/$seg_id/count" "$out" >/dev/null
            call POST segments/preview "$out" -H 'Content-Type: application/json' \
                --data "{\"filter\":$filter}" >/dev/null
        fi
        sql "${vars[@]}" -c "\\set form all" -f "$HERE/hand.sql" >/dev/null
    done
    if [ "$SERVICE" = 1 ]; then
        read -r st t n < <(call GET "segments/$seg_id/count" "$out")
        n="$(json_get "$out" count)"
        [ "$st" = 200 ] && [ "$n" = "$expect" ] || report "   WRONG: segments/{id}/count answered $st, count '$n', not $expect"
        read -r st t n < <(call POST segments/preview "$out" -H 'Content-Type: application/json' --data "{\"filter\":$filter}")
        n="$(json_get "$out" count)"
        [ "$st" = 200 ] && [ "$n" = "$expect" ] || report "   WRONG: segments/preview answered $st, count '$n', not $expect"
        detail "== preview answer: $(head -c 2000 "$out")"
    fi

    # The runs, in turns: service count, service preview, each SQL form.
    : >"$WORK/t-count.txt"
    : >"$WORK/t-preview.txt"
    for form in $FORMS; do : >"$WORK/t-sql-$form.txt"; done
    cpu_begin
    for r in $(seq 1 "$RUNS"); do
        if [ "$SERVICE" = 1 ]; then
            read -r st t n < <(call GET "segments/$seg_id/count" "$out")
            if [ "$st" = 200 ]; then awk -v t="$t" 'BEGIN { printf "%.3f\n", t * 1000 }' >>"$WORK/t-count.txt"; fi
            read -r st t n < <(call POST segments/preview "$out" -H 'Content-Type: application/json' --data "{\"filter\":$filter}")
            if [ "$st" = 200 ]; then awk -v t="$t" 'BEGIN { printf "%.3f\n", t * 1000 }' >>"$WORK/t-preview.txt"; fi
        fi
        # \timing: the query's time as psql sees it (sent to answer read).
        # Each form runs once untimed first: a new session's first plans
        # load the catalog caches, which the service's pooled sessions have.
        sql "${vars[@]}" -c "\\set form all" -f "$HERE/hand.sql" -c "\\set timing 1" -f "$HERE/hand.sql" |
            awk '/^form / { f = $2 } /^Time: / { print f, $2 }' >"$WORK/t-round.txt"
        for form in $FORMS; do
            awk -v f="$form" '$1 == f { print $2 }' "$WORK/t-round.txt" >>"$WORK/t-sql-$form.txt"
        done
        detail "round $r: count $(tail -1 "$WORK/t-count.txt" 2>/dev/null) ms, preview $(tail -1 "$WORK/t-preview.txt" 2>/dev/null) ms, sql $(tr '\n' ' ' <"$WORK/t-round.txt")"
    done
    cpu_end
    local best_form="" best_med="" med best cnt
    report "   $RUNS runs each, in turns; ms, median / best:"
    for form in $FORMS; do
        read -r med best cnt < <(stats <"$WORK/t-sql-$form.txt")
        report "   hand SQL, form $form: $med / $best ms"
        if [ -z "$best_med" ] || awk -v a="$med" -v b="$best_med" 'BEGIN { exit !(a < b) }'; then
            best_form="$form"
            best_med="$med"
            BEST_SQL_BEST="$best"
        fi
    done
    if [ "$SERVICE" = 1 ]; then
        read -r med best cnt < <(stats <"$WORK/t-count.txt")
        COUNT_MED="$med"
        report "   service, GET segments/{id}/count: $med / $best ms ($cnt answers)"
        report "      ratio to the fastest hand SQL (form $best_form, median $best_med ms): $(awk -v a="$med" -v b="$best_med" 'BEGIN { printf "%.2f", a / b }')x median, $(awk -v a="$best" -v b="$BEST_SQL_BEST" 'BEGIN { printf "%.2f", a / b }')x best"
        read -r med best cnt < <(stats <"$WORK/t-preview.txt")
        report "   service, POST segments/preview (count and a sample of 20): $med / $best ms ($cnt answers), $(awk -v a="$med" -v b="$best_med" 'BEGIN { printf "%.2f", a / b }')x the fastest hand SQL"
        report "   target: count <= 500 ms and <= 1.5x the best hand SQL: $(awk -v a="$COUNT_MED" -v b="$best_med" 'BEGIN { print (a <= 500 && a <= 1.5 * b) ? "MET" : "NOT MET" }') (medians)"
    fi
    report "   cpu during the runs: $CPU"
    if [ "$SERVICE" = 1 ]; then service_plans "$seg_id" "$filter"; fi
}

# The service's own SQL and its plan: statement logging on for one count and
# one preview (private stack only: it is a server setting), the statements
# taken from the server log, and EXPLAIN ANALYZE run on them as the service
# sent them (service_sql.py).
service_plans() {
    local seg_id="$1" filter="$2" pglog="$LOCAL/logs/postgres.log" from out="$WORK/answer.json"
    if [ "${BENCH_STACK:-private}" != private ] || [ ! -f "$pglog" ]; then
        detail "== the service's SQL: not captured (shared stack)"
        return 0
    fi
    from="$(wc -c <"$pglog")"
    sql_admin -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    call GET "segments/$seg_id/count" "$out" >/dev/null
    call POST segments/preview "$out" -H 'Content-Type: application/json' --data "{\"filter\":$filter}" >/dev/null
    sql_admin -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
    tail -c +"$((from + 1))" "$pglog" >"$WORK/service-sql.log"
    python3 "$HERE/service_sql.py" "$WORK/service-sql.log" >"$WORK/service-explain.sql" 2>>"$DETAIL" || true
    {
        echo "== the service's statements (server log, log_min_duration_statement = 0; durations are the server's)"
        grep -E 'kizuna_segmentation@.*(duration|DETAIL)' "$WORK/service-sql.log" | sed 's/^[^]]*] //' | head -60 || true
        if [ -s "$WORK/service-explain.sql" ]; then
            echo "== EXPLAIN (ANALYZE, BUFFERS) of the service's counting statements"
            sql -f "$WORK/service-explain.sql" 2>&1
        fi
    } >>"$DETAIL"
    # In the summary, the statements of the connections that counted (the
    # API's; the consumers and the relay have their own).
    grep -E 'kizuna_segmentation@.*duration: .* execute' "$WORK/service-sql.log" >"$WORK/service-sql.txt" || true
    local pids
    pids="$(sed -n 's/^[^[]*\[\([0-9]*\)\].*count(.*/\1/p' "$WORK/service-sql.txt" | sort -u | tr '\n' ' ')"
    awk -v pids=" $pids" '{ p = $0; sub(/^[^[]*\[/, "", p); sub(/\].*/, "", p) } index(pids, " " p " ")' "$WORK/service-sql.txt" |
        sed -n 's/.*duration: \([0-9.]*\) ms.*execute[^:]*: \(.\{0,90\}\).*/      server-side: \1 ms  \2/p' | tee -a "$SUMMARY"
}

# --- export -------------------------------------------------------------------------
phase_export() {
    local columns="user_id,display_name,added_at,blocked,tags,field:score" st t bytes rows hwm peak out="$WORK/export.csv"
    report ""
    report "-- CSV export: GET friends.csv?columns=$columns ($FRIENDS friends)"
    local rss0
    rss0="$(status_kb "$SEG_PID" VmRSS)"
    # VmHWM from here on is the export's peak (5: reset the peak to now).
    echo 5 >"/proc/$SEG_PID/clear_refs" 2>/dev/null || detail "export: could not reset VmHWM"
    : >"$WORK/rss.txt"
    rss_sampler "$WORK/rss.txt" &
    SAMPLER_PID=$!
    cpu_begin
    read -r st t bytes < <(call GET "friends.csv?columns=$columns" "$out")
    cpu_end
    hwm="$(status_kb "$SEG_PID" VmHWM)"
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    peak="$(sort -n "$WORK/rss.txt" | tail -1)"
    if [ "$st" != 200 ]; then
        report "   answered $st: $(head -c 300 "$out")"
        return 0
    fi
    rows=$(($(wc -l <"$out") - 1))
    detail "== export: the first lines"
    head -4 "$out" >>"$DETAIL"
    report "   $st in $(awk -v t="$t" 'BEGIN { printf "%.2f", t }') s, $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB), $rows lines after the header ($(awk -v r="$rows" -v t="$t" 'BEGIN { printf "%.0f", r / t }') rows/s)"
    [ "$rows" = "$FRIENDS" ] || report "   WRONG: $rows rows, not $FRIENDS (a display name with a line break would count twice; gen.sql makes none)"
    report "   segmentation RSS: $((rss0 / 1024)) MB before, peak $((hwm / 1024)) MB (VmHWM since the request; sampled every 50 ms: $((${peak:-0} / 1024)) MB); CPU $CPU_SEG_S s"
    report "   cpu: $CPU"
    report "   target: <= 15 s with RSS <= 64 MB: $(awk -v t="$t" -v m="$hwm" 'BEGIN { print (t <= 15 && m <= 65536) ? "MET" : "NOT MET" }')"
    [ "${BENCH_KEEP_CSV:-0}" = 1 ] || rm -f "$out"
    export_floors
    export_pages
}

# What the same export costs PostgreSQL alone: the same columns in one
# statement (COPY ... TO STDOUT into psql, no pages, no HTTP), once with the
# export's per-row subqueries and once set-based (joins and one GROUP BY).
export_floors() {
    local score_id f0 f1 form
    score_id="$(sql_value "SELECT id FROM fields WHERE channel_id = '$CHANNEL' AND name = 'score'")"
    for form in subqueries joins; do
        f0="$(date +%s.%N)"
        sql -v channel="$CHANNEL" -v score_id="$score_id" -v form="$form" -f "$HERE/export_floor.sql" >/dev/null
        f1="$(date +%s.%N)"
        report "   for comparison, one SQL statement (COPY TO STDOUT, psql to /dev/null), $form: $(awk -v a="$f0" -v b="$f1" 'BEGIN { printf "%.2f", b - a }') s"
    done
}

# The export's page statement and its plan: statement logging on (private
# stack only) while the first pages of a second export are read.
export_pages() {
    local pglog="$LOCAL/logs/postgres.log" from
    if [ "${BENCH_STACK:-private}" != private ] || [ ! -f "$pglog" ]; then
        return 0
    fi
    from="$(wc -c <"$pglog")"
    sql_admin -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    { curl -sS -H "Authorization: Bearer $TOKEN" \
        "$URL/v1/channels/$CHANNEL/friends.csv?columns=user_id,display_name,added_at,blocked,tags,field:score" |
        head -c 2000000 >/dev/null; } 2>/dev/null || true
    sql_admin -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
    tail -c +"$((from + 1))" "$pglog" >"$WORK/export-sql.log"
    grep -E 'kizuna_segmentation@.*duration: .* execute .*ORDER BY f.id LIMIT' "$WORK/export-sql.log" |
        sed -n 's/.*duration: \([0-9.]*\) ms.*/\1/p' >"$WORK/export-pages.txt" || true
    if [ -s "$WORK/export-pages.txt" ]; then
        read -r med best cnt < <(stats <"$WORK/export-pages.txt")
        report "   one page of $(awk '/define SEG_CSV_PAGE/ { print $3 }' "$ROOT/services/segmentation/csv_routes.h" 2>/dev/null || echo '?') friends on the server (the first $cnt pages, logged in a second export): median $med ms, best $best ms"
    fi
    python3 "$HERE/service_sql.py" "$WORK/export-sql.log" "order by f.id limit" 2 >"$WORK/export-explain.sql" 2>>"$DETAIL" || true
    if [ -s "$WORK/export-explain.sql" ]; then
        {
            echo "== EXPLAIN (ANALYZE, BUFFERS) of the export's first two page statements"
            sql -f "$WORK/export-explain.sql" 2>&1
        } >>"$DETAIL"
    fi
}

# --- import -------------------------------------------------------------------------
phase_import() {
    local file="$WORK/import.csv" points_id tag_id t0 st t n total=0 rows=0 ok=1 out="$WORK/answer.json"
    report ""
    report "-- CSV import: POST friends/import.csv, $IMPORT_ROWS rows of user_id,tag:tag30,field:points (existing friends, random order)"
    points_id="$(sql_value "SELECT id FROM fields WHERE channel_id = '$CHANNEL' AND name = 'points'")"
    tag_id="$(sql_value "SELECT id FROM tags WHERE channel_id = '$CHANNEL' AND name = 'tag30'")"
    sql -c "COPY (SELECT user_id AS \"user_id\", '1' AS \"tag:tag30\",
                         to_char(floor(random() * 100000) / 100, 'FM99990.00') AS \"field:points\"
                    FROM friends WHERE channel_id = '$CHANNEL' ORDER BY md5(user_id) LIMIT $IMPORT_ROWS)
             TO STDOUT WITH (FORMAT csv, HEADER)" >"$file"
    detail "== import: the first lines"
    head -3 "$file" >>"$DETAIL"
    local before_tags
    before_tags="$(sql_value "SELECT count(*) FROM friend_tags WHERE tag_id = $tag_id")"
    rm -rf "$WORK/import-chunks"
    mkdir -p "$WORK/import-chunks"
    if [ "$IMPORT_CHUNK" -gt 0 ]; then
        tail -n +2 "$file" | split -l "$IMPORT_CHUNK" -d -a 4 - "$WORK/import-chunks/part-"
        for part in "$WORK"/import-chunks/part-*; do
            { head -1 "$file"; cat "$part"; } >"$part.csv"
            rm -f "$part"
        done
    else
        cp "$file" "$WORK/import-chunks/part-0000.csv"
    fi
    t0="$(sql_value "SELECT now()")"
    # The import's statements are few (set-based, a batch of rows each):
    # logged with their durations, without their parameters (the batches),
    # to show where the time goes. Private stack only (a server setting).
    local pglog="$LOCAL/logs/postgres.log" from=0 logged=0
    if [ "${BENCH_STACK:-private}" = private ] && [ -f "$pglog" ]; then
        from="$(wc -c <"$pglog")"
        sql_admin -c "ALTER SYSTEM SET log_min_duration_statement = 0" \
            -c "ALTER SYSTEM SET log_parameter_max_length = 0" -c "SELECT pg_reload_conf()" >/dev/null
        logged=1
        sleep 0.5
    fi
    cpu_begin
    for part in "$WORK"/import-chunks/part-*.csv; do
        read -r st t n < <(call POST friends/import.csv "$out" -H 'Content-Type: text/csv' --data-binary "@$part")
        total="$(awk -v a="$total" -v b="$t" 'BEGIN { print a + b }')"
        if [ "$st" != 200 ]; then
            report "   $(basename "$part"): answered $st: $(head -c 300 "$out")"
            ok=0
            break
        fi
        rows=$((rows + $(json_get "$out" rows)))
    done
    cpu_end
    if [ "$logged" = 1 ]; then
        sql_admin -c "ALTER SYSTEM RESET log_min_duration_statement" \
            -c "ALTER SYSTEM RESET log_parameter_max_length" -c "SELECT pg_reload_conf()" >/dev/null
        tail -c +"$((from + 1))" "$pglog" >"$WORK/import-sql.log"
        # Server time by statement (its first 70 characters), largest first.
        grep -E 'kizuna_segmentation@.*duration: .* execute' "$WORK/import-sql.log" | grep -v '"outbox")$' |
            sed -n 's/.*duration: \([0-9.]*\) ms.*execute[^:]*: \(.\{0,70\}\).*/\1\t\2/p' |
            awk -F '\t' '{ ms[$2] += $1; n[$2]++; all += $1; total++ }
                END { for (k in ms) printf "%.0f\t%d\t%s\n", ms[k], n[k], k; printf "%.0f\t%d\t(all of them)\n", all, total }' |
            sort -rn | head -6 | awk -F '\t' '{ printf "      server: %6d ms in %d x  %s\n", $1, $2, $3 }' | tee -a "$SUMMARY" || true
    fi
    [ "$ok" = 1 ] || return 0
    report "   $rows rows in $(awk -v t="$total" 'BEGIN { printf "%.2f", t }') s over $(find "$WORK/import-chunks" -name 'part-*.csv' | wc -l) request(s), $(wc -c <"$file") bytes: $(awk -v r="$rows" -v t="$total" 'BEGIN { printf "%.0f", r / t }') rows/s; service CPU $CPU_SEG_S s"
    report "   stored: $(sql_value "SELECT count(*) FROM friend_fields WHERE field_id = $points_id AND updated_at >= '$t0'") points values written since the import began, tag30 on $(sql_value "SELECT count(*) FROM friend_tags WHERE tag_id = $tag_id") friends (was $before_tags)"
    report "   cpu: $CPU"
    report "   target: >= 10,000 rows/s: $(awk -v r="$rows" -v t="$total" 'BEGIN { print (t > 0 && r / t >= 10000) ? "MET" : "NOT MET" }')"
    rm -rf "$WORK/import-chunks"
}

for phase in $PHASES; do
    case "$phase" in
    count) phase_count ;;
    export) phase_export ;;
    import) phase_import ;;
    *)
        echo "bench: unknown phase '$phase' (count, export, import)" >&2
        exit 2
        ;;
    esac
done
report ""
report "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '"level":"(error|fatal)"' "$LOG" | head -5 | sed 's/^/service log: /' | tee -a "$SUMMARY" || true
say "summary in $SUMMARY, plans and raw timings in $DETAIL"
