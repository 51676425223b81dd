#!/usr/bin/env bash
# The local Kizuna stack without Docker: a private PostgreSQL 15 cluster and a
# single-node Kafka 4 (KRaft) under .local/, topics from deploy/topics.manifest,
# the LINE simulator and the four services from build/bin. `make up`, `make run`,
# `make down` and `make test-integration` all come through here.
#
#   stack.sh up                 infra + line-sim + services, detached; prints endpoints
#   stack.sh run                the same in the foreground; Ctrl-C stops everything
#   stack.sh down               stops whatever runs (services, line-sim, Kafka, PostgreSQL)
#   stack.sh status             kizunactl stack status, with .local/stack.env exported
#   stack.sh infra-up           PostgreSQL + Kafka + topics only, detached
#   stack.sh with-stack CMD...  runs CMD against the infra, starting (and then
#                               stopping) only the parts that were not running
#   stack.sh kafka-stop|kafka-start  stop or (re)start just the broker (outage tests)
#   stack.sh pg-stop|pg-start        stop or (re)start just PostgreSQL (outage tests)
#
# Every address can be overridden from the environment (see "Settings" below).
# Secrets are generated once and kept in .local/stack.env (mode 600).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# --- Settings (all overridable) ---------------------------------------------
LOCAL="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
BIN="${KIZUNA_BIN_DIR:-$ROOT/${BUILD:-build}/bin}"
MANIFEST="${KIZUNA_TOPICS_MANIFEST:-$ROOT/deploy/topics.manifest}"

PG_BIN="${KIZUNA_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_HOST="${KIZUNA_PG_HOST:-127.0.0.1}"
PG_PORT="${KIZUNA_PG_PORT:-54329}"
PG_DB="${KIZUNA_PG_DB:-kizuna}"
PG_ADMIN="kizuna_admin"
PG_OS_USER="${KIZUNA_PG_OS_USER:-postgres}" # only used when we run as root

KAFKA_HOST="${KIZUNA_KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KIZUNA_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KIZUNA_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${KIZUNA_KAFKA_HEAP:--Xms512m -Xmx768m}"
KAFKA_GC="${KIZUNA_KAFKA_GC:--XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
# More JVM options for the broker, e.g. GC logging (bench/ingest/run.sh).
KAFKA_JVM_EXTRA="${KIZUNA_KAFKA_JVM_OPTS:-}"

SIM_HOST="${KIZUNA_SIM_HOST:-127.0.0.1}"
SIM_PORT="${KIZUNA_SIM_PORT:-8090}"
INGEST_PUBLIC_PORT="${INGEST_PUBLIC_PORT:-8080}"
INGEST_ADMIN_PORT="${INGEST_ADMIN_PORT:-8081}"
SEGMENTATION_ADMIN_PORT="${SEGMENTATION_ADMIN_PORT:-8082}"
SCHEDULER_ADMIN_PORT="${SCHEDULER_ADMIN_PORT:-8083}"
DISPATCHER_ADMIN_PORT="${DISPATCHER_ADMIN_PORT:-8084}"

PG_TIMEOUT="${KIZUNA_PG_TIMEOUT:-60}"
KAFKA_TIMEOUT="${KIZUNA_KAFKA_TIMEOUT:-90}"
SERVICE_TIMEOUT="${KIZUNA_SERVICE_TIMEOUT:-60}"
STOP_TIMEOUT="${KIZUNA_STOP_TIMEOUT:-10}"

DEMO_CHANNEL="${KIZUNA_DEMO_CHANNEL:-1660000000}"
DEMO_TOKEN="${KIZUNA_DEMO_ACCESS_TOKEN:-demo-access-token}"
DEMO_SECRET="${KIZUNA_DEMO_CHANNEL_SECRET:-0123456789abcdef0123456789abcdef}"
DEMO_BOT_USER="${KIZUNA_DEMO_BOT_USER_ID:-U0123456789abcdef0123456789abcdef}"

SERVICES=(ingest segmentation scheduler dispatcher)

PG_DIR="$LOCAL/pg"
PG_DATA="$PG_DIR/data"
KAFKA_DIR="$LOCAL/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
LOGS="$LOCAL/logs"
RUN="$LOCAL/run"
ENV_FILE="$LOCAL/stack.env"

# A Unix socket path is limited to ~107 bytes; deep clones get a short one.
PG_SOCK="$PG_DIR/sock"
if [ "${#PG_SOCK}" -gt 90 ]; then
    PG_SOCK="/tmp/kizuna-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
fi

# --- Small helpers -----------------------------------------------------------
say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: warning: %s\n' "$*" >&2; }
die() {
    printf 'stack: error: %s\n' "$*" >&2
    exit 1
}
rel() { printf '%s' "${1#"$ROOT"/}"; } # shorter paths in messages

is_root() { [ "$(id -u)" -eq 0 ]; }

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# True when something accepts TCP connections on host:port.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

require_port_free() {
    if port_open "$1" "$2"; then
        die "$3: port $1:$2 is already taken by another process (override with $4)"
    fi
}

# Alive and not a zombie (children of `run` linger as zombies until reaped).
pid_alive() {
    local pid="$1" state
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [ -n "$state" ] && [ "$state" != "Z" ]
}

# True when process $1's command line contains $2 (no forks: /proc is
# scanned with it).
cmdline_has() {
    local -a argv
    mapfile -d '' argv 2>/dev/null <"/proc/$1/cmdline" || return 1
    [[ " ${argv[*]} " == *"$2"* ]]
}

# The pid recorded for a process we started, if that process is still ours.
running_pid() {
    local name="$1" match="$2" pid
    pid="$(cat "$RUN/$name.pid" 2>/dev/null || true)"
    if pid_alive "$pid" && cmdline_has "$pid" "$match"; then
        printf '%s' "$pid"
        return 0
    fi
    return 1
}

# Starts a command detached (own session, so Ctrl-C in a terminal does not
# reach it), appending to its log, and records its pid.
spawn() {
    local name="$1" log="$2"
    shift 2
    mkdir -p "$RUN" "$LOGS"
    (cd "$ROOT" && exec setsid "$@" >>"$log" 2>&1 </dev/null) &
    printf '%s\n' "$!" >"$RUN/$name.pid"
}

# SIGTERM, up to $2 seconds of grace, then SIGKILL.
stop_pid() {
    local pid="$1" grace="$2" name="$3" i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) did not stop within ${grace} s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
}

# Pids of processes whose command line contains $1, for when a pid file was
# lost. Only used with a path unique to this checkout (Kafka's properties).
pids_matching() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [ "$pid" = "$$" ] && continue
        if cmdline_has "$pid" "$1" && pid_alive "$pid"; then
            printf '%s\n' "$pid"
        fi
    done
    return 0
}

# Stops the process recorded in $RUN/<name>.pid if its command line still
# contains <match> (so a recycled pid is never signalled); with "scan", also
# any process whose command line contains <match>.
stop_named() {
    local name="$1" match="$2" grace="$3" scan="${4:-}" pid
    if pid="$(running_pid "$name" "$match")"; then
        say "stopping $name (pid $pid)"
        stop_pid "$pid" "$grace" "$name"
    fi
    rm -f "$RUN/$name.pid"
    [ "$scan" = scan ] || return 0
    for pid in $(pids_matching "$match"); do
        say "stopping $name (pid $pid, no pid file)"
        stop_pid "$pid" "$grace" "$name"
    done
}

log_tail() {
    [ -f "$1" ] || return 0
    printf -- '--- last lines of %s ---\n' "$(rel "$1")" >&2
    tail -n 15 "$1" >&2 || true
}

# --- stack.env ---------------------------------------------------------------
# Secrets survive across runs: they are read back from the previous file.
saved_value() {
    [ -f "$ENV_FILE" ] || return 0
    sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

saved_password() { # from a postgresql://user:pw@host URL line
    saved_value "$1" | sed -n 's|^postgresql://[^:/@]*:\([^@]*\)@.*$|\1|p'
}

write_env() {
    local admin_pw jwt data pw svc up url tmp
    admin_pw="$(saved_password KIZUNA_PG_ADMIN_URL)"
    jwt="$(saved_value KIZUNA_JWT_KEY)"
    data="$(saved_value KIZUNA_DATA_KEY)"
    [ -n "$admin_pw" ] || admin_pw="$(random_hex 24)"
    # 32 random bytes as 64 hex characters: the services refuse a JWT key
    # under 32 bytes (common/auth.h), so a shorter saved one is replaced.
    [ "${#jwt}" -ge 32 ] || jwt="$(random_hex 32)"
    [ -n "$data" ] || data="$(random_hex 32)"

    mkdir -p "$LOCAL"
    tmp="$(mktemp "$LOCAL/.stack.env.XXXXXX")"
    chmod 600 "$tmp"
    {
        printf '# Written by deploy/local/stack.sh; secrets are kept across runs.\n'
        printf '# Load with: set -a; . %s; set +a\n' "$(rel "$ENV_FILE")"
        printf 'KAFKA_BROKERS=%s:%s\n' "$KAFKA_HOST" "$KAFKA_PORT"
        printf 'KIZUNA_PG_ADMIN_URL=postgresql://%s:%s@%s:%s/%s\n' \
            "$PG_ADMIN" "$admin_pw" "$PG_HOST" "$PG_PORT" "$PG_DB"
        for svc in "${SERVICES[@]}"; do
            up="${svc^^}"
            pw="$(saved_password "${up}_DATABASE_URL")"
            [ -n "$pw" ] || pw="$(random_hex 24)"
            url="postgresql://kizuna_$svc:$pw@$PG_HOST:$PG_PORT/$PG_DB"
            printf '%s_DATABASE_URL=%s\n' "$up" "$url"
            printf '%s_MIGRATIONS_DIR=%s\n' "$up" "$ROOT/services/$svc/migrations"
        done
        printf 'KIZUNA_JWT_KEY=%s\n' "$jwt"
        printf 'KIZUNA_DATA_KEY=%s\n' "$data"
        printf 'DISPATCHER_LINE_API_BASE=http://%s:%s\n' "$SIM_HOST" "$SIM_PORT"
        printf 'INGEST_LINE_API_BASE=http://%s:%s\n' "$SIM_HOST" "$SIM_PORT"
        printf 'KIZUNA_TOPICS_MANIFEST=%s\n' "$MANIFEST"
        printf 'INGEST_PUBLIC_PORT=%s\n' "$INGEST_PUBLIC_PORT"
        printf 'INGEST_ADMIN_PORT=%s\n' "$INGEST_ADMIN_PORT"
        printf 'SEGMENTATION_ADMIN_PORT=%s\n' "$SEGMENTATION_ADMIN_PORT"
        printf 'SCHEDULER_ADMIN_PORT=%s\n' "$SCHEDULER_ADMIN_PORT"
        printf 'DISPATCHER_ADMIN_PORT=%s\n' "$DISPATCHER_ADMIN_PORT"
        printf 'LINESIM_PORT=%s\n' "$SIM_PORT"
        printf 'KIZUNA_SIM_URL=http://%s:%s\n' "$SIM_HOST" "$SIM_PORT"
    } >"$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

# Exports every KEY=value line (values may hold any character but newline).
load_env() {
    local key value
    [ -f "$ENV_FILE" ] || return 1
    while IFS='=' read -r key value; do
        case "$key" in '' | '#'*) continue ;; esac
        export "$key=$value"
    done <"$ENV_FILE"
}

kizunactl_path() {
    local ctl="$BIN/kizunactl"
    [ -x "$ctl" ] || die "$(rel "$ctl") is missing; build it first with 'make all' (or use 'make up')"
    printf '%s' "$ctl"
}

# --- PostgreSQL --------------------------------------------------------------
# As root the private cluster runs as an unprivileged user (PostgreSQL refuses
# root anyway); otherwise as whoever calls us.
as_pg() {
    if is_root; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

# The unprivileged user must be able to walk down to .local/pg (CI clones
# under /root, which is 0700): add search-only permission where missing.
pg_make_traversable() {
    is_root || return 0
    as_pg test -x "$PG_DIR" 2>/dev/null && return 0
    local d="" part
    local -a parts
    IFS='/' read -r -a parts <<<"${PG_DIR#/}"
    for part in "${parts[@]}"; do
        d="$d/$part"
        if ! as_pg test -x "$d" 2>/dev/null; then
            chmod o+x "$d"
            say "gave $PG_OS_USER search permission (o+x) on $d"
        fi
    done
}

pg_prepare_dirs() {
    mkdir -p "$PG_DIR" "$LOGS" "$PG_SOCK"
    touch "$LOGS/postgres.log"
    chmod 700 "$PG_SOCK"
    if is_root; then
        id "$PG_OS_USER" >/dev/null 2>&1 ||
            die "user '$PG_OS_USER' (from the postgresql package) is missing; set KIZUNA_PG_OS_USER"
        chown "$PG_OS_USER:" "$PG_DIR" "$PG_SOCK" "$LOGS/postgres.log"
        if [ -d "$PG_DATA" ] && [ "$(stat -c %U "$PG_DATA")" != "$PG_OS_USER" ]; then
            chown -R "$PG_OS_USER:" "$PG_DATA"
        fi
        pg_make_traversable
    fi
}

pg_init() {
    [ -f "$PG_DATA/PG_VERSION" ] && return 0
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is not installed ($PG_BIN/initdb); run deploy/local/deps.sh"
    say "creating the private PostgreSQL cluster in $(rel "$PG_DATA")"
    local pwfile="$PG_DIR/.pwfile"
    (umask 077 && printf '%s\n' "$(saved_password KIZUNA_PG_ADMIN_URL)" >"$pwfile")
    is_root && chown "$PG_OS_USER:" "$pwfile"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_ADMIN" --pwfile="$pwfile" \
        -A scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 \
        >"$LOGS/initdb.log" 2>&1; then
        rm -f "$pwfile"
        log_tail "$LOGS/initdb.log"
        rm -rf "$PG_DATA"
        die "initdb failed; see $(rel "$LOGS/initdb.log")"
    fi
    rm -f "$pwfile"
    printf "\n# Kizuna's local settings (rewritten by stack.sh on every start)\ninclude_if_exists = 'kizuna.conf'\n" |
        as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_write_conf() {
    # Only TCP on PG_HOST; the socket sits in a 0700 directory, so the local
    # `trust` line of pg_hba.conf admits only its owner (and root).
    as_pg tee "$PG_DATA/kizuna.conf" >/dev/null <<EOF
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
max_connections = 200
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

psql_admin() { # via the socket: works even if stack.env was lost
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U "$PG_ADMIN" "$@"
}

# Database, roles and schemas, then passwords: stack.env's are the truth.
pg_apply_roles() {
    local svc
    if [ "$(psql_admin -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
        psql_admin -d postgres -c "CREATE DATABASE \"$PG_DB\" OWNER $PG_ADMIN"
    fi
    {
        printf '\\set admin_password %s\n' "'$(saved_password KIZUNA_PG_ADMIN_URL)'"
        for svc in "${SERVICES[@]}"; do
            printf '\\set %s_password %s\n' "$svc" "'$(saved_password "${svc^^}_DATABASE_URL")'"
        done
        printf "ALTER ROLE %s WITH PASSWORD :'admin_password';\n" "$PG_ADMIN"
        printf '\\i %s\n' "$ROOT/deploy/postgres/roles.psql"
    } | psql_admin -d "$PG_DB" -f - >/dev/null
}

pg_start() {
    if pg_running; then
        say "postgres already running on $PG_HOST:$PG_PORT"
        return 1
    fi
    [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL 15 is not installed ($PG_BIN); run deploy/local/deps.sh"
    require_port_free "$PG_HOST" "$PG_PORT" postgres KIZUNA_PG_PORT
    pg_prepare_dirs
    pg_init
    pg_write_conf
    say "starting postgres on $PG_HOST:$PG_PORT"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t "$PG_TIMEOUT" start >/dev/null; then
        log_tail "$LOGS/postgres.log"
        die "postgres did not become ready within $PG_TIMEOUT s; see $(rel "$LOGS/postgres.log")"
    fi
    return 0
}

pg_stop() {
    pg_running || return 0
    say "stopping postgres"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null; then
        local pid
        pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        warn "pg_ctl stop failed; sending SIGQUIT to postmaster $pid"
        if [ -n "$pid" ]; then kill -QUIT "$pid" 2>/dev/null || true; fi
    fi
}

# --- Kafka -------------------------------------------------------------------
kafka_pid() { running_pid kafka "$KAFKA_PROPS"; }

# The JVM's command line, shared by the storage tool and the broker.
kafka_java_argv() {
    local -a heap gc extra
    read -r -a heap <<<"$KAFKA_HEAP"
    read -r -a gc <<<"$KAFKA_GC"
    read -r -a extra <<<"$KAFKA_JVM_EXTRA"
    KAFKA_JAVA=(java "${heap[@]}" "${gc[@]}" "${extra[@]}" -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka-log4j2.properties"
        -Dkizuna.kafka.log="$LOGS/kafka.log"
        -cp "$KAFKA_LIBS/*")
}

kafka_java() {
    kafka_java_argv
    "${KAFKA_JAVA[@]}" "$@"
}

kafka_write_props() {
    mkdir -p "$KAFKA_DATA" "$LOGS"
    sed -e "s|@KAFKA_HOST@|$KAFKA_HOST|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
        "$ROOT/deploy/local/kafka.properties.in" >"$KAFKA_PROPS"
}

# Formats the data directory once, with a cluster id kept next to it.
kafka_format() {
    [ -f "$KAFKA_DATA/meta.properties" ] && return 0
    local id_file="$KAFKA_DIR/cluster.id" id
    id="$(cat "$id_file" 2>/dev/null || true)"
    if [ -z "$id" ]; then
        id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka.log" | tail -n 1)"
        [ -n "$id" ] || die "could not generate a Kafka cluster id; see $(rel "$LOGS/kafka.log")"
        printf '%s\n' "$id" >"$id_file"
    fi
    say "formatting Kafka storage (cluster $id)"
    if ! kafka_java kafka.tools.StorageTool format --standalone -t "$id" -c "$KAFKA_PROPS" \
        >>"$LOGS/kafka.log" 2>&1; then
        log_tail "$LOGS/kafka.log"
        die "formatting Kafka storage failed; see $(rel "$LOGS/kafka.log")"
    fi
}

kafka_start() {
    if kafka_pid >/dev/null; then
        say "kafka already running on $KAFKA_HOST:$KAFKA_PORT"
        return 1
    fi
    ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 ||
        die "the Kafka broker jars are missing from $(rel "$KAFKA_LIBS"); run deploy/local/deps.sh"
    command -v java >/dev/null 2>&1 || die "java not found; run deploy/local/deps.sh"
    require_port_free "$KAFKA_HOST" "$KAFKA_PORT" kafka KIZUNA_KAFKA_PORT
    require_port_free "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT" "kafka controller" KIZUNA_KAFKA_CONTROLLER_PORT
    kafka_write_props
    kafka_format
    say "starting kafka on $KAFKA_HOST:$KAFKA_PORT"
    kafka_java_argv
    spawn kafka "$LOGS/kafka.log" "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_PROPS"
    return 0
}

# Readiness is a metadata round trip plus every manifest topic, not an open
# port; kizunactl does both. First wait for the port so its timeout is spent
# on the broker, not the JVM's start-up.
kafka_wait_and_topics() {
    local ctl deadline
    ctl="$(kizunactl_path)"
    deadline=$((SECONDS + KAFKA_TIMEOUT))
    while ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; do
        if ! kafka_pid >/dev/null; then
            log_tail "$LOGS/kafka.log"
            die "kafka exited during start-up; see $(rel "$LOGS/kafka.log")"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "kafka did not become ready within $KAFKA_TIMEOUT s; see $(rel "$LOGS/kafka.log")"
        fi
        sleep 0.5
    done
    local left=$((deadline - SECONDS))
    [ "$left" -ge 10 ] || left=10
    if ! "$ctl" topics apply --manifest "$MANIFEST" --brokers "$KAFKA_HOST:$KAFKA_PORT" \
        --timeout "$left" >>"$LOGS/topics.log" 2>&1; then
        tail -n 5 "$LOGS/topics.log" >&2
        die "kafka did not accept the topics from $(rel "$MANIFEST") within $left s; see $(rel "$LOGS/kafka.log") and $(rel "$LOGS/topics.log")"
    fi
    if ! "$ctl" topics check --manifest "$MANIFEST" --brokers "$KAFKA_HOST:$KAFKA_PORT" \
        --timeout 30 >>"$LOGS/topics.log" 2>&1; then
        tail -n 5 "$LOGS/topics.log" >&2
        die "kafka topics are not ready (kizunactl topics check failed); see $(rel "$LOGS/topics.log")"
    fi
    say "kafka ready on $KAFKA_HOST:$KAFKA_PORT with the topics of $(rel "$MANIFEST")"
}

kafka_stop() {
    stop_named kafka "$KAFKA_PROPS" 30 scan
}

# --- Infrastructure ----------------------------------------------------------
STARTED=() # what this invocation started, in start order

infra_up() {
    kizunactl_path >/dev/null # fail before starting anything
    mkdir -p "$LOCAL" "$LOGS" "$RUN"
    write_env
    if pg_start; then STARTED+=(postgres); fi
    pg_apply_roles
    say "postgres ready on $PG_HOST:$PG_PORT (database $PG_DB, one role and schema per service)"
    if kafka_start; then STARTED+=(kafka); fi
    kafka_wait_and_topics
    load_env
}

stop_started() {
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        case "${STARTED[$i]}" in
            postgres) pg_stop ;;
            kafka) kafka_stop ;;
            line-sim) stop_named line-sim /line-sim "$STOP_TIMEOUT" ;;
            kizuna-*) stop_named "${STARTED[$i]}" "/${STARTED[$i]}" "$STOP_TIMEOUT" ;;
        esac
    done
    STARTED=()
}

# --- Simulator and services --------------------------------------------------
admin_port() {
    local var="${1^^}_ADMIN_PORT"
    printf '%s' "${!var}"
}

sim_start() {
    local bin="$BIN/line-sim" i
    if [ ! -x "$bin" ]; then
        warn "$(rel "$bin") is missing; running without the LINE simulator"
        return 1
    fi
    if running_pid line-sim /line-sim >/dev/null; then
        say "line-sim already running on $SIM_HOST:$SIM_PORT"
        return 1
    fi
    require_port_free "$SIM_HOST" "$SIM_PORT" line-sim KIZUNA_SIM_PORT
    say "starting line-sim on $SIM_HOST:$SIM_PORT"
    LINESIM_PORT="$SIM_PORT" LINESIM_BIND="$SIM_HOST" spawn line-sim "$LOGS/line-sim.log" "$bin"
    STARTED+=(line-sim)
    for ((i = 0; i < SERVICE_TIMEOUT * 5; i++)); do
        port_open "$SIM_HOST" "$SIM_PORT" && return 0
        if ! running_pid line-sim /line-sim >/dev/null; then
            log_tail "$LOGS/line-sim.log"
            die "line-sim exited during start-up; see $(rel "$LOGS/line-sim.log")"
        fi
        sleep 0.2
    done
    die "line-sim did not become ready within $SERVICE_TIMEOUT s; see $(rel "$LOGS/line-sim.log")"
}

# The demo channel on the simulator, with its bot: ingest asks the simulator
# (INGEST_LINE_API_BASE) whose bot the token is before it registers the
# channel (ingest_register_demo, after this).
sim_register_demo() {
    [ -x "$BIN/line-sim" ] || return 0
    if ! curl -fsS -o /dev/null --max-time 5 -X POST -H 'Content-Type: application/json' \
        -d "{\"channel_id\":\"$DEMO_CHANNEL\",\"access_token\":\"$DEMO_TOKEN\",\"bot_user_id\":\"$DEMO_BOT_USER\"}" \
        "http://$SIM_HOST:$SIM_PORT/_sim/channels"; then
        warn "could not register demo channel $DEMO_CHANNEL on line-sim"
    fi
}

# The same demo channel in ingest's registry (tenant demo), so the printed
# webhook URL answers signed requests at once. 409 means it is there already.
ingest_register_demo() {
    local token code
    token="$(KIZUNA_JWT_KEY="$KIZUNA_JWT_KEY" "$(kizunactl_path)" token issue --tenant demo --role admin --ttl 5m 2>/dev/null)" || {
        warn "could not issue a token to register the demo channel in ingest"
        return 0
    }
    code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"channel_id\":\"$DEMO_CHANNEL\",\"name\":\"Demo channel\",\"channel_secret\":\"$DEMO_SECRET\",\"access_token\":\"$DEMO_TOKEN\",\"bot_user_id\":\"$DEMO_BOT_USER\",\"timezone\":\"Asia/Tokyo\",\"monthly_quota\":1000}" \
        "http://127.0.0.1:$INGEST_ADMIN_PORT/v1/channels" 2>/dev/null)" || code=000
    case "$code" in
    201 | 409) ;;
    *) warn "could not register demo channel $DEMO_CHANNEL in ingest (HTTP $code)" ;;
    esac
}

service_start() {
    local svc="$1" name="kizuna-$1" bin="$BIN/kizuna-$1" port
    port="$(admin_port "$svc")"
    [ -x "$bin" ] || die "$(rel "$bin") is missing; build it first with 'make all'"
    if running_pid "$name" "/$name" >/dev/null; then
        say "$name already running (admin :$port)"
        return 0
    fi
    require_port_free 127.0.0.1 "$port" "$name" "${svc^^}_ADMIN_PORT"
    if [ "$svc" = ingest ]; then
        require_port_free 127.0.0.1 "$INGEST_PUBLIC_PORT" "$name" INGEST_PUBLIC_PORT
    fi
    say "starting $name (admin :$port)"
    spawn "$name" "$LOGS/$name.log" "$bin"
    STARTED+=("$name")
}

service_wait_ready() {
    local svc="$1" name="kizuna-$1" bin="$BIN/kizuna-$1" port url deadline
    port="$(admin_port "$svc")"
    url="http://127.0.0.1:$port/readyz"
    deadline=$((SECONDS + SERVICE_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! running_pid "$name" "/$name" >/dev/null; then
            log_tail "$LOGS/$name.log"
            die "$name exited during start-up; see $(rel "$LOGS/$name.log")"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail "$LOGS/$name.log"
            die "$name did not become ready within $SERVICE_TIMEOUT s ($url); see $(rel "$LOGS/$name.log")"
        fi
        sleep 0.3
    done
}

apps_up() {
    local svc
    if sim_start; then sim_register_demo; fi
    for svc in "${SERVICES[@]}"; do service_start "$svc"; done
    for svc in "${SERVICES[@]}"; do service_wait_ready "$svc"; done
    say "all services ready"
    ingest_register_demo
}

print_endpoints() {
    local token
    token="$(KIZUNA_JWT_KEY="$KIZUNA_JWT_KEY" "$(kizunactl_path)" token issue --tenant demo --role admin --ttl 24h 2>/dev/null)" ||
        token="(kizunactl token issue failed)"
    cat <<EOF

  Kizuna is running.
  LINE webhook      http://127.0.0.1:$INGEST_PUBLIC_PORT/line/webhook/$DEMO_CHANNEL  (channel secret $DEMO_SECRET)
  admin APIs        ingest http://127.0.0.1:$INGEST_ADMIN_PORT   segmentation http://127.0.0.1:$SEGMENTATION_ADMIN_PORT
                    scheduler http://127.0.0.1:$SCHEDULER_ADMIN_PORT   dispatcher http://127.0.0.1:$DISPATCHER_ADMIN_PORT
                    (each serves /healthz /readyz /metrics and /v1/...)
  LINE simulator    http://$SIM_HOST:$SIM_PORT  (demo channel $DEMO_CHANNEL, token $DEMO_TOKEN)
  PostgreSQL        $PG_HOST:$PG_PORT  database $PG_DB  (URLs in $(rel "$ENV_FILE"))
  Kafka             $KAFKA_HOST:$KAFKA_PORT
  logs              $(rel "$LOGS")/
  admin token (tenant demo, 24 h):
    $token
  try:  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$INGEST_ADMIN_PORT/v1/channels
  a signed webhook (LINE's "Verify"):
    body='{"destination":"$DEMO_BOT_USER","events":[]}'
    sig=\$(printf %s "\$body" | openssl dgst -sha256 -hmac $DEMO_SECRET -binary | base64)
    curl -i -H "x-line-signature: \$sig" -H 'Content-Type: application/json' -d "\$body" http://127.0.0.1:$INGEST_PUBLIC_PORT/line/webhook/$DEMO_CHANNEL

EOF
}

stop_apps() {
    local i svc
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        svc="${SERVICES[$i]}"
        stop_named "kizuna-$svc" "/kizuna-$svc" "$STOP_TIMEOUT"
    done
    stop_named line-sim /line-sim "$STOP_TIMEOUT"
}

stop_all() {
    stop_apps
    kafka_stop
    pg_stop
    STARTED=()
}

# --- Subcommands -------------------------------------------------------------
cmd_infra_up() {
    infra_up
}

cmd_up() {
    trap 'up_failed $?' EXIT
    infra_up
    apps_up
    print_endpoints
    trap - EXIT
}

up_failed() {
    [ "$1" -eq 0 ] && return 0
    warn "whatever started is left running for a look at the logs; 'make down' (stack.sh down) stops it"
}

cmd_down() {
    stop_all
    say "stopped"
}

cmd_run() {
    local interrupted=0 svc
    # Anything that fails or is interrupted during start-up takes the rest down.
    trap 'stop_all' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    infra_up
    apps_up
    print_endpoints
    trap 'interrupted=1' INT TERM
    say "running in the foreground; Ctrl-C stops everything"
    # Follow the services' logs here unless asked not to.
    local tail_pid=""
    if [ -z "${KIZUNA_RUN_QUIET:-}" ]; then
        tail -n 0 -q -F "$LOGS"/kizuna-*.log 2>/dev/null &
        tail_pid=$!
    fi
    local -A reported=()
    while [ "$interrupted" -eq 0 ]; do
        sleep 1 &
        wait $! 2>/dev/null || true
        for svc in "${SERVICES[@]}"; do
            if [ -z "${reported[$svc]:-}" ] && ! running_pid "kizuna-$svc" "/kizuna-$svc" >/dev/null; then
                warn "kizuna-$svc has exited; see $(rel "$LOGS/kizuna-$svc.log")"
                reported[$svc]=1
            fi
        done
    done
    trap - INT TERM
    if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
    say "stopping everything"
    stop_all
    trap - EXIT
    say "stopped"
}

cmd_with_stack() {
    [ "$#" -gt 0 ] || die "usage: stack.sh with-stack CMD [ARGS...]"
    local rc=0
    trap 'stop_started' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    infra_up
    set +e
    "$@"
    rc=$?
    set -e
    stop_started
    trap - EXIT
    exit "$rc"
}

# Outage tests take one part of a running infra away and bring it back; the
# start commands return once the part serves again (Kafka: with its topics).
cmd_kafka_stop() {
    kafka_stop
}

cmd_kafka_start() {
    mkdir -p "$LOCAL" "$LOGS" "$RUN"
    kafka_start || true
    kafka_wait_and_topics
}

cmd_pg_stop() {
    pg_stop
}

cmd_pg_start() {
    pg_start || true
}

cmd_status() {
    local ctl
    ctl="$(kizunactl_path)"
    load_env || warn "no $(rel "$ENV_FILE") yet (the stack was never started)"
    exec "$ctl" stack status
}

usage() {
    sed -n '7,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    [ "$#" -gt 0 ] && shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        run) cmd_run ;;
        status) cmd_status ;;
        infra-up) cmd_infra_up ;;
        with-stack) cmd_with_stack "$@" ;;
        kafka-stop) cmd_kafka_stop ;;
        kafka-start) cmd_kafka_start ;;
        pg-stop) cmd_pg_stop ;;
        pg-start) cmd_pg_start ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
