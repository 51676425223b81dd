#!/usr/bin/env bash
# `make lint`: the checks a reviewer should not have to do by eye.
#   1. docker-compose.yml is valid (docker-compose config -q; no engine needed)
#      given the keys it requires, and refuses to start without them;
#   2. our C follows .clang-format (clang-format --dry-run --Werror);
#   3. no banned C function (sprintf strcpy strcat strtok gets atoi atol);
#   4. deploy/k8s/*.yaml parse, and their topics ConfigMap equals
#      deploy/topics.manifest (the one manifest every stack reads);
#   5. the broker's message.max.bytes in every deploy file is the number of
#      common/kafka_limits.h, and deploy/prometheus/*.yml parse.
# Every check runs; the exit status is 1 if any failed.
#   lint.sh --fix   rewrites our C files with clang-format -i instead of checking.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BANNED='sprintf|strcpy|strcat|strtok|gets|atoi|atol'
failed=0

say() { printf 'lint: %s\n' "$*"; }
fail() {
    printf 'lint: FAIL: %s\n' "$*" >&2
    failed=1
}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        printf 'lint: error: %s not found; run deploy/local/deps.sh\n' "$1" >&2
        exit 2
    }
}

# Our own C: everything under these folders, never build/ or generated code.
c_files() {
    local dirs=() d
    for d in common services tools tests bench; do [ -d "$d" ] && dirs+=("$d"); done
    [ "${#dirs[@]}" -gt 0 ] || return 0
    find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -not -path '*/build/*' -print0 |
        sort -z
}

# The compose file ships no keys (${VAR:?...}): it is checked with lint-only
# values, and must refuse to start when either is unset. An empty env file
# keeps a developer's .env out of both checks.
check_compose() {
    need docker-compose
    local jwt=KIZUNA_JWT_KEY=lint-only-not-a-key-0123456789abcdef0123456789
    local data=KIZUNA_DATA_KEY=0000000000000000000000000000000000000000000000000000000000000000
    local none
    none="$(mktemp)"
    compose_config() {
        env -u KIZUNA_JWT_KEY -u KIZUNA_DATA_KEY "$@" \
            docker-compose --env-file "$none" -f docker-compose.yml config -q
    }
    if compose_config "$jwt" "$data"; then
        say "docker-compose.yml ok"
    else
        fail "docker-compose.yml is not valid (docker-compose config)"
    fi
    if compose_config "$data" >/dev/null 2>&1; then
        fail "docker-compose.yml starts without KIZUNA_JWT_KEY (it must have no default)"
    elif compose_config "$jwt" >/dev/null 2>&1; then
        fail "docker-compose.yml starts without KIZUNA_DATA_KEY (it must have no default)"
    else
        say "docker-compose.yml refuses to start without its keys"
    fi
    rm -f "$none"
}

check_format() {
    need clang-format
    local files=()
    mapfile -d '' files < <(c_files)
    [ "${#files[@]}" -gt 0 ] || return 0
    local out
    out="$(mktemp)"
    if clang-format --dry-run --Werror "${files[@]}" 2>"$out"; then
        say "clang-format ok (${#files[@]} files)"
    else
        # One line per offending file; `clang-format FILE | diff FILE -` shows why.
        grep -oE '^[^:]+\.[ch]:' "$out" | sort -u | sed 's/:$//; s/^/  /' >&2
        fail "the files above differ from .clang-format; run 'deploy/local/lint.sh --fix' (or clang-format -i FILE)"
    fi
    rm -f "$out"
}

check_banned() {
    local hits
    hits="$(c_files | xargs -0 -r grep -nHE "\\b($BANNED)[[:space:]]*\\(" || true)"
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits" >&2
        fail "banned functions used (use snprintf, memcpy with bounds, strtol with checks)"
    else
        say "no banned functions"
    fi
}

check_k8s() {
    [ -d deploy/k8s ] || return 0
    need python3
    if python3 - deploy/k8s/*.yaml <<'PY'; then
import sys
import yaml

ok = True
for path in sys.argv[1:]:
    try:
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
    except yaml.YAMLError as e:
        print(f"{path}: {e}", file=sys.stderr)
        ok = False
        continue
    for d in docs:
        if d.get("kind") == "ConfigMap" and "topics.manifest" in d.get("data", {}):
            if d["data"]["topics.manifest"] != open("deploy/topics.manifest").read():
                print(f"{path}: topics.manifest differs from deploy/topics.manifest", file=sys.stderr)
                ok = False
sys.exit(0 if ok else 1)
PY
        say "deploy/k8s ok"
    else
        fail "deploy/k8s manifests are broken or out of date (see above)"
    fi
}

# The record limits agree end to end only if every broker the deploy files
# start (or expect) takes what common/kafka_limits.h says.
check_limits() {
    local want ok=1 f
    want="$(sed -n 's/^#define KAFKA_TOPIC_MAX_MESSAGE_BYTES \([0-9][0-9]*\)$/\1/p' common/kafka_limits.h)"
    if [ -z "$want" ]; then
        fail "common/kafka_limits.h does not define KAFKA_TOPIC_MAX_MESSAGE_BYTES"
        return
    fi
    grep -qx "message.max.bytes=$want" deploy/local/kafka.properties.in || {
        printf 'deploy/local/kafka.properties.in: want message.max.bytes=%s\n' "$want" >&2
        ok=0
    }
    grep -qE "^ +KAFKA_MESSAGE_MAX_BYTES: \"?$want\"?$" docker-compose.yml || {
        printf 'docker-compose.yml: want KAFKA_MESSAGE_MAX_BYTES: %s\n' "$want" >&2
        ok=0
    }
    grep -q "message.max.bytes=$want" deploy/k8s/namespace.yaml || {
        printf 'deploy/k8s/namespace.yaml: want the brokers'"'"' message.max.bytes=%s\n' "$want" >&2
        ok=0
    }
    for f in deploy/prometheus/*.yml; do
        [ -e "$f" ] || continue
        python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || ok=0
    done
    if [ "$ok" -eq 1 ]; then
        say "Kafka record limits agree ($want bytes at the broker); alert rules parse"
    else
        fail "deploy files disagree with common/kafka_limits.h (see above)"
    fi
}

fix_format() {
    need clang-format
    c_files | xargs -0 -r clang-format -i
    say "formatted our C files with clang-format -i"
}

main() {
    if [ "${1:-}" = "--fix" ]; then
        fix_format
        return 0
    fi
    check_compose
    check_format
    check_banned
    check_k8s
    check_limits
    if [ "$failed" -ne 0 ]; then
        exit 1
    fi
    say "all checks passed"
}

main "$@"
