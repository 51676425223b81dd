# What every bench/*/run.sh does the same way; sourced after it sets ROOT,
# BUILD (absolute), BIN and HERE.

# Re-runs "$HERE/run.sh --inner" inside a stack and exits with its status.
# BENCH_STACK=private (the default): a PostgreSQL and a Kafka of the bench's
# own under $BUILD/bench/<name>/stack (the broker's jars are the main
# stack's), on BENCH_PG_PORT / BENCH_KAFKA_PORT / BENCH_KAFKA_CONTROLLER_PORT
# (defaults: the arguments), so that their CPU is the bench's doing and the
# generated data goes with them. BENCH_STACK=shared: the local stack
# (deploy/local/stack.sh with-stack starts it if it is down).
bench_with_stack() { # name pg_port kafka_port controller_port
    export BUILD
    if [ "${BENCH_STACK:-private}" = private ]; then
        local private="$BUILD/bench/$1/stack" rc=0
        rm -rf "$private"
        mkdir -p "$private/kafka"
        [ -d "$ROOT/.local/kafka/libs" ] || "$ROOT/deploy/local/deps.sh"
        ln -s "$ROOT/.local/kafka/libs" "$private/kafka/libs"
        export KIZUNA_LOCAL_DIR="$private"
        export KIZUNA_PG_PORT="${BENCH_PG_PORT:-$2}"
        export KIZUNA_KAFKA_PORT="${BENCH_KAFKA_PORT:-$3}"
        export KIZUNA_KAFKA_CONTROLLER_PORT="${BENCH_KAFKA_CONTROLLER_PORT:-$4}"
        env KIZUNA_BIN_DIR="$BIN" "$ROOT/deploy/local/stack.sh" with-stack "$HERE/run.sh" --inner || rc=$?
        rm -rf "$private" # with-stack stopped them; their data goes too
        exit "$rc"
    fi
    exec env KIZUNA_BIN_DIR="$BIN" "$ROOT/deploy/local/stack.sh" with-stack "$HERE/run.sh" --inner
}

# SIGTERM to pid, then SIGKILL after 30 s; reaps it. Nothing for "" or a
# pid that is gone.
bench_stop() { # pid
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

# The pid listening on a local TCP port (PostgreSQL's postmaster, Kafka), or 0.
bench_listener_pid() { # port
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1 | grep . || echo 0
}
