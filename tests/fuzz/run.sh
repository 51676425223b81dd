#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer target for the webhook body parser with
# clang under ASan + UBSan (+ LeakSanitizer) into build/fuzz/, then runs it
# for FUZZ_RUNS inputs (default 1,000,000) seeded from tests/fuzz/corpus/webhook
# and tests/fixtures/webhook. Exits non-zero on any crash, sanitizer report,
# leak, timeout or broken contract (the target traps); the input that did it is
# saved as build/fuzz/artifacts/crash-* (or leak-*, timeout-*). Replay one
# with: build/fuzz/fuzz_webhook_parse build/fuzz/artifacts/<file>
#
#   FUZZ_RUNS=N     inputs to run (default 1000000)
#   CC_FUZZ=clang   compiler (default: clang-14, else clang)
#
# Installs what it needs, and only what is missing, through
# deploy/local/deps.sh --packages (Debian 12: clang-14 and libclang-rt-14-dev,
# which holds libFuzzer; the C libraries the parser links). New inputs
# libFuzzer finds go to build/fuzz/corpus/webhook, never into the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

OUT=build/fuzz
RUNS="${FUZZ_RUNS:-1000000}"
PACKAGES=(clang-14 libclang-rt-14-dev protobuf-c-compiler libprotobuf-c-dev libjansson-dev
    uuid-dev pkg-config)

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

build() {
    local cc="$1" pkg_cflags pkg_libs
    mkdir -p "$OUT/gen" "$OUT/obj" "$OUT/corpus/webhook" "$OUT/artifacts"
    protoc-c --proto_path=proto --c_out="$OUT/gen" \
        proto/kizuna/v1/envelope.proto proto/kizuna/v1/webhook.proto

    # shellcheck disable=SC2054 # the commas belong to the flag
    local san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer)
    local base=(-std=c11 -D_GNU_SOURCE -g -O1 "${san[@]}" -Icommon -Iservices -I"$OUT/gen")
    read -ra pkg_cflags <<<"$(pkg-config --cflags jansson libprotobuf-c uuid)"
    read -ra pkg_libs <<<"$(pkg-config --libs jansson libprotobuf-c uuid)"

    # Generated code is not ours: no warnings. Ours: the project's -Werror set.
    "$cc" "${base[@]}" "${pkg_cflags[@]}" -w -c "$OUT/gen/kizuna/v1/envelope.pb-c.c" \
        -o "$OUT/obj/envelope.pb-c.o"
    "$cc" "${base[@]}" "${pkg_cflags[@]}" -w -c "$OUT/gen/kizuna/v1/webhook.pb-c.c" \
        -o "$OUT/obj/webhook.pb-c.o"
    local warn=(-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers)
    "$cc" "${base[@]}" "${pkg_cflags[@]}" "${warn[@]}" -c services/ingest/webhook_parse.c \
        -o "$OUT/obj/webhook_parse.o"
    "$cc" "${base[@]}" "${pkg_cflags[@]}" "${warn[@]}" -c tests/fuzz/fuzz_webhook_parse.c \
        -o "$OUT/obj/fuzz_webhook_parse.o"
    "$cc" "${san[@]}" -o "$OUT/fuzz_webhook_parse" "$OUT/obj/fuzz_webhook_parse.o" \
        "$OUT/obj/webhook_parse.o" "$OUT/obj/webhook.pb-c.o" "$OUT/obj/envelope.pb-c.o" \
        "${pkg_libs[@]}"
}

main() {
    deploy/local/deps.sh --packages "${PACKAGES[@]}"
    local cc
    cc="$(pick_cc)"
    say "building $OUT/fuzz_webhook_parse with $cc (ASan, UBSan, libFuzzer)"
    build "$cc"

    say "running $RUNS inputs (max_len 65536)"
    local start=$SECONDS rc=0
    # LeakSanitizer runs after every input that grew coverage and at exit;
    # UBSan stops at the first report (-fno-sanitize-recover=all).
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "$OUT/fuzz_webhook_parse" -runs="$RUNS" -max_len=65536 -timeout=10 \
        -dict=tests/fuzz/webhook.dict -artifact_prefix="$OUT/artifacts/" \
        -print_final_stats=1 \
        "$OUT/corpus/webhook" tests/fuzz/corpus/webhook tests/fixtures/webhook || rc=$?
    local took=$((SECONDS - start))
    if [ "$rc" -ne 0 ]; then
        say "FAILED after ${took}s (exit $rc); see $OUT/artifacts/"
        exit 1
    fi
    say "ok: $RUNS inputs in ${took}s, no crash, leak or sanitizer report"
}

main "$@"
