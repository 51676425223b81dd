#!/usr/bin/env python3
"""The segmentation service's statements, from a PostgreSQL log
written with log_min_duration_statement = 0 (bench/segmentation/run.sh),
turned into a psql script that EXPLAIN ANALYZEs each one as the service sent
it: the same text, the same parameters (as untyped literals, which is how
libpq's PQexecParams sends them without types).

usage: service_sql.py POSTGRES_LOG [TEXT [N]] > explain.sql
    explains the first N (all) statements that contain TEXT (count(),
    case-insensitive.
"""
import re
import sys

PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] (\S*)@(\S*) ([A-Z]+):  (.*)$")
EXECUTE = re.compile(r"^duration: ([0-9.]+) ms  execute [^:]*: (.*)$", re.S)
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
ROLE = "kizuna_segmentation"


def entries(lines):
    """(user, level, message) per log entry, continuation lines joined."""
    cur = None
    for line in lines:
        m = PREFIX.match(line.rstrip("\n"))
        if m:
            if cur:
                yield cur
            cur = [m.group(1), m.group(3), m.group(4)]
        elif cur:
            cur[2] += "\n" + line.rstrip("\n")
    if cur:
        yield cur


def main():
    if len(sys.argv) < 2 or len(sys.argv) > 4:
        sys.exit(__doc__)
    want = (sys.argv[2] if len(sys.argv) > 2 else "count(").lower()
    most = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        log = list(entries(f))
    n = 0
    for i, (user, level, msg) in enumerate(log):
        m = EXECUTE.match(msg) if user == ROLE and level == "LOG" else None
        if not m or want not in m.group(2).lower():
            continue
        if most and n >= most:
            break
        stmt = m.group(2).strip().rstrip(";")
        params = {}
        if i + 1 < len(log) and log[i + 1][1] == "DETAIL" and log[i + 1][2].startswith("parameters:"):
            params = {int(k): v for k, v in PARAM.findall(log[i + 1][2])}
        args = [params.get(k, "NULL") for k in range(1, max(params, default=0) + 1)]
        n += 1
        print(f"\\echo '-- statement {n} ({m.group(1)} ms on the server when logged)'")
        print(f"PREPARE bench_svc_{n} AS {stmt};")
        call = f"EXECUTE bench_svc_{n}({', '.join(args)})" if args else f"EXECUTE bench_svc_{n}"
        print(f"\\echo '{call.replace(chr(39), chr(39) * 2)[:500]}'")
        print(f"EXPLAIN (ANALYZE, BUFFERS) {call};")
        print(f"DEALLOCATE bench_svc_{n};")
    if n == 0:
        print(f"no statement of the service with {want!r} in the log", file=sys.stderr)


if __name__ == "__main__":
    main()
