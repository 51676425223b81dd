#!/usr/bin/env python3
"""Lines up ratebench's slow answers with the broker's stop-the-world pauses.

usage: gcslow.py TIMELINE GCLOG [SLOW_MS]

TIMELINE is ratebench -T output ("<due, Unix ms> <latency, us>" per answer).
GCLOG is the broker's JVM log written with
    -Xlog:gc*,safepoint:file=GCLOG:time,uptime,level,tags
(KIZUNA_KAFKA_HEAP, or BENCH_GC_LOG=1 in run.sh). Every safepoint line ends a
stop-the-world pause: it carries the wall-clock time it ended and its total
length. A request is "slow" above SLOW_MS (default 20). For the slow ones,
the report says how many were in flight during a pause, and how many would
still be slow with the pauses taken out of their latency: those are slowed
by something else (CPU contention, the broker's own request queue...).
It also prints the pauses by length and the seconds with the most slow
answers, so a stall can be looked up in the GC log by time."""
import bisect
import datetime
import re
import sys


def load_pauses(path):
    pat = re.compile(r'^\[([^\]]+)\].*Safepoint "([^"]+)".*Total: (\d+) ns')
    pauses = []
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            end = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000
            length = int(m.group(3)) / 1e6
            pauses.append((end - length, end, m.group(2)))
    pauses.sort()
    return pauses


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    slow_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    reqs = []
    with open(sys.argv[1]) as f:
        for line in f:
            due, lat = line.split()
            reqs.append((float(due), int(lat) / 1000.0))
    if not reqs:
        sys.exit("no answers in " + sys.argv[1])
    t0 = min(d for d, _ in reqs)
    t1 = max(d + l for d, l in reqs)
    pauses = [p for p in load_pauses(sys.argv[2]) if p[1] >= t0 and p[0] <= t1]
    starts = [p[0] for p in pauses]

    def overlap(a, b):
        """Milliseconds of [a, b] spent in pauses."""
        total = 0.0
        i = max(0, bisect.bisect_right(starts, a) - 1)
        while i < len(pauses) and pauses[i][0] <= b:
            s, e, _ = pauses[i]
            total += max(0.0, min(b, e) - max(a, s))
            i += 1
        return total

    slow = [(d, l) for d, l in reqs if l > slow_ms]
    in_pause = 0
    still_slow = 0
    for d, l in slow:
        o = overlap(d, d + l)
        if o > 0:
            in_pause += 1
        if l - o > slow_ms:
            still_slow += 1
    lats = sorted(l for _, l in reqs)
    p99 = lats[int(0.99 * (len(lats) - 1) + 0.5)]
    span = (t1 - t0) / 1000
    paused = sum(min(e, t1) - max(s, t0) for s, e, _ in pauses)
    print(f"{len(reqs)} answers over {span:.1f} s, p99 {p99:.2f} ms; "
          f"{len(slow)} slower than {slow_ms:g} ms ({100 * len(slow) / len(reqs):.2f}%)")
    print(f"broker safepoint pauses in that time: {len(pauses)}, {paused:.0f} ms in all "
          f"({100 * paused / (t1 - t0):.2f}% of the time), longest "
          f"{max((e - s for s, e, _ in pauses), default=0):.1f} ms")
    by_len = {}
    for s, e, name in pauses:
        k = "<5 ms" if e - s < 5 else "5-10 ms" if e - s < 10 else "10-20 ms" if e - s < 20 else ">=20 ms"
        by_len.setdefault(k, []).append(name)
    for k in ("<5 ms", "5-10 ms", "10-20 ms", ">=20 ms"):
        names = by_len.get(k, [])
        kinds = {}
        for n in names:
            kinds[n] = kinds.get(n, 0) + 1
        print(f"  pauses {k}: {len(names)} " + ", ".join(f"{n} x{c}" for n, c in sorted(kinds.items())))
    if slow:
        print(f"slow answers in flight during a pause: {in_pause} ({100 * in_pause / len(slow):.0f}%); "
              f"still slow with the pauses taken out: {still_slow} ({100 * still_slow / len(slow):.0f}%)")
        if len(slow) - still_slow > 0:
            print(f"  => the pauses explain {len(slow) - still_slow} slow answers "
                  f"({100 * (len(slow) - still_slow) / len(reqs):.2f}% of all)")
    per_sec = {}
    for d, l in slow:
        per_sec[int(d // 1000)] = per_sec.get(int(d // 1000), 0) + 1
    worst = sorted(per_sec.items(), key=lambda kv: -kv[1])[:8]
    if worst:
        print("seconds with the most slow answers (UTC, count):")
        for sec, n in sorted(worst):
            ps = [f"{name} {e - s:.0f}ms" for s, e, name in pauses if sec * 1000 <= e and s < sec * 1000 + 1000]
            t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%H:%M:%S")
            print(f"  {t} {n}" + (f"  pauses: {', '.join(ps)}" if ps else ""))


if __name__ == "__main__":
    main()
