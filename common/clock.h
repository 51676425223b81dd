/* One clock for the process: the monotonic clock for timeouts, durations and
 * deadlines, the wall clock for timestamps that leave the process (rows,
 * events, logs). Every module reads time here instead of keeping a private
 * *_now_ms, so a test can drive time by installing its own source. See
 * docs/internals/time.md for which clock each kind of time uses. */
#ifndef KIZUNA_CLOCK_H
#define KIZUNA_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds / milliseconds of the monotonic clock (CLOCK_MONOTONIC, or the
 * installed source's). Only differences mean anything. Any thread. */
int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);

/* Nanoseconds / milliseconds since the Unix epoch (CLOCK_REALTIME, or the
 * installed source's). May jump; never use it to measure a duration. */
int64_t clock_wall_ns(void);
int64_t clock_wall_ms(void);

/* A replacement clock for tests. Either function may be NULL, which keeps
 * the system clock for that half. ctx is passed to both. */
struct clock_source {
    int64_t (*mono_ns)(void *ctx);
    int64_t (*wall_ns)(void *ctx);
    void *ctx;
};

/* Installs src (borrowed: it must outlive its use), or NULL to return to the
 * system clocks. Tests only; call it before starting threads that read time. */
void clock_source_set(const struct clock_source *src);

/* The absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait
 * on a condition variable created with the monotonic clock. Always the real
 * clock: a fake source cannot make a kernel wait shorter. */
struct timespec clock_mono_deadline(long ms);

#endif
