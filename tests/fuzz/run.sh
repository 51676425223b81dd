#!/usr/bin/env bash
# `make fuzz` and `make fuzz-short`: builds every libFuzzer target in
# tests/fuzz (fuzz_<name>.c) with clang under ASan + UBSan (+ LeakSanitizer)
# into build/fuzz/, then runs each for FUZZ_RUNS inputs, seeded from
# tests/fuzz/corpus/<name>/ (and tests/fixtures/webhook for webhook_parse),
# with tests/fuzz/<name>.dict when there is one. Every target runs, even
# after one failed; the exit status is 1 if any crashed, leaked, timed out,
# hit a sanitizer report or broke its contract (the targets abort then).
# The input that did it is saved as build/fuzz/artifacts/<name>-crash-*
# (or -leak-*, -timeout-*); replay it with
#     build/fuzz/fuzz_<name> build/fuzz/artifacts/<name>-crash-<sha1>
# Each target's full output is in build/fuzz/logs/<name>.log.
#
#   FUZZ_RUNS=N        inputs per target (default 1000000)
#   FUZZ_MAX_TIME=S    also stop each target after S seconds (default: no cap)
#   FUZZ_TARGETS="a b" only these targets (names without fuzz_)
#   CC_FUZZ=clang      compiler (default: clang-14, else clang)
#
# The library code is built by the Makefile itself (BUILD=build/fuzz/make,
# CC=clang, SANITIZE=fuzzer-no-link,address,undefined, OPT=-O1), so the
# targets test the same sources with the same warnings as the services.
# Installs what it needs, and only what is missing, through
# deploy/local/deps.sh --packages (Debian 12: clang-14 and
# libclang-rt-14-dev, which holds libFuzzer; the C libraries the services
# link). New inputs libFuzzer finds go to build/fuzz/corpus/<name>, never
# into the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

OUT=build/fuzz
LIBS="$OUT/make"
RUNS="${FUZZ_RUNS:-1000000}"
MAX_TIME="${FUZZ_MAX_TIME:-0}"
ONLY="${FUZZ_TARGETS:-}"
PACKAGES=(clang-14 libclang-rt-14-dev build-essential pkg-config protobuf-c-compiler
    libprotobuf-c-dev librdkafka-dev libpq-dev libmicrohttpd-dev libcurl4-openssl-dev
    libjansson-dev libjwt-dev uuid-dev libssl-dev)

# name:max_len (bytes). Each cap is the largest input the code reads in
# production, or a little more: a webhook body may be 1 MiB, an admin token
# 8 KiB, a LINE answer is cut at 64 KiB; the server in fuzz_httpd has a
# 4 KiB body cap, so 16 KiB reach past it either way.
TARGETS=(
    webhook_parse:1048576
    jwt:9000
    base64:4096
    link_token:4096
    httpd:16384
    registry_input:17408
    limits:4096
    line_request:65536
    channel_config:8192
    line_result:65536
    quota_sync:4096
    pbjson:65536
    sched_input:65536
)

say() { printf 'fuzz: %s\n' "$*"; }
die() {
    printf 'fuzz: error: %s\n' "$*" >&2
    exit 2
}

pick_cc() {
    if [ -n "${CC_FUZZ:-}" ]; then
        printf '%s' "$CC_FUZZ"
    elif command -v clang-14 >/dev/null 2>&1; then
        printf 'clang-14'
    elif command -v clang >/dev/null 2>&1; then
        printf 'clang'
    else
        die "no clang found"
    fi
}

selected() {
    [ -z "$ONLY" ] && return 0
    local t
    for t in $ONLY; do [ "$t" = "$1" ] && return 0; done
    return 1
}

build() {
    local cc="$1" jobs pkg_cflags pkg_libs
    jobs="$(nproc 2>/dev/null || echo 2)"
    mkdir -p "$OUT/obj" "$OUT/artifacts" "$OUT/logs"
    say "building the libraries with $cc into $LIBS"
    make --no-print-directory -j"$jobs" BUILD="$LIBS" CC="$cc" OPT=-O1 \
        SANITIZE=fuzzer-no-link,address,undefined \
        "$LIBS/lib/libkizuna_dispatcher.a" "$LIBS/lib/libkizuna_ingest.a" \
        "$LIBS/lib/libkizuna_scheduler.a" \
        "$LIBS/lib/libkizuna_common.a" "$LIBS/lib/libkizuna_proto.a" >"$OUT/logs/build.log" 2>&1 ||
        {
            tail -n 40 "$OUT/logs/build.log" >&2
            die "library build failed; see $OUT/logs/build.log"
        }

    local pkgs=(rdkafka libpq libmicrohttpd libprotobuf-c libcurl jansson libjwt uuid libcrypto)
    read -ra pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
    read -ra pkg_libs <<<"$(pkg-config --libs "${pkgs[@]}")"
    # shellcheck disable=SC2054 # the commas belong to the flag
    local san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer)
    local cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -pthread "${san[@]}" -Icommon -Iservices
        -I"$LIBS/gen" -Itests/fuzz "${pkg_cflags[@]}" -Wall -Wextra -Werror -Wshadow -Wformat=2
        -Wno-missing-field-initializers)
    local entry name
    for entry in "${TARGETS[@]}"; do
        name="${entry%%:*}"
        selected "$name" || continue
        "$cc" "${cflags[@]}" -c "tests/fuzz/fuzz_$name.c" -o "$OUT/obj/fuzz_$name.o"
        "$cc" "${san[@]}" -pthread -o "$OUT/fuzz_$name" "$OUT/obj/fuzz_$name.o" \
            "$LIBS/lib/libkizuna_dispatcher.a" "$LIBS/lib/libkizuna_ingest.a" \
            "$LIBS/lib/libkizuna_scheduler.a" \
            "$LIBS/lib/libkizuna_common.a" "$LIBS/lib/libkizuna_proto.a" "${pkg_libs[@]}" -lm
    done
}

# Runs one target; prints one summary line. Returns its exit status.
run_target() {
    local name="$1" max_len="$2" rc=0 start=$SECONDS
    local log="$OUT/logs/$name.log"
    local seeds=("$OUT/corpus/$name" "tests/fuzz/corpus/$name")
    [ "$name" = webhook_parse ] && seeds+=(tests/fixtures/webhook)
    mkdir -p "$OUT/corpus/$name"
    local args=(-runs="$RUNS" -max_len="$max_len" -timeout=25 -rss_limit_mb=4096
        -artifact_prefix="$OUT/artifacts/$name-" -print_final_stats=1)
    [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
    [ "$MAX_TIME" -gt 0 ] && args+=(-max_total_time="$MAX_TIME")
    # LeakSanitizer runs after every input that grew coverage and at exit;
    # UBSan stops at the first report (-fno-sanitize-recover=all).
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "$OUT/fuzz_$name" "${args[@]}" "${seeds[@]}" >"$log" 2>&1 || rc=$?
    local took=$((SECONDS - start)) execs
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ "$rc" -ne 0 ]; then
        say "$name: FAILED after ${took}s (exit $rc); last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    /' >&2
        return 1
    fi
    say "$name: ok, ${execs:-?} inputs in ${took}s (max_len $max_len)"
    return 0
}

main() {
    deploy/local/deps.sh --packages "${PACKAGES[@]}"
    local cc
    cc="$(pick_cc)"
    build "$cc"
    local limit="$RUNS inputs"
    [ "$MAX_TIME" -gt 0 ] && limit="$limit or ${MAX_TIME}s"
    say "running each target for $limit"
    local entry failed=() start=$SECONDS
    for entry in "${TARGETS[@]}"; do
        selected "${entry%%:*}" || continue
        run_target "${entry%%:*}" "${entry##*:}" || failed+=("${entry%%:*}")
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        say "FAILED: ${failed[*]} (inputs in $OUT/artifacts/)"
        exit 1
    fi
    say "all clean in $((SECONDS - start))s: no crash, leak, timeout or sanitizer report"
}

main "$@"
