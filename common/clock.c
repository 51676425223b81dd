/* The process's one clock (see clock.h). The source pointer is atomic so a
 * test may swap it while threads read it; in production it stays NULL and
 * each call is one clock_gettime. */
#include "clock.h"

#include <stdatomic.h>
#include <stddef.h>

static _Atomic(const struct clock_source *) source;

static int64_t clock_system_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ns(void)
{
    const struct clock_source *src = atomic_load_explicit(&source, memory_order_acquire);
    if (src && src->mono_ns)
        return src->mono_ns(src->ctx);
    return clock_system_ns(CLOCK_MONOTONIC);
}

int64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

int64_t clock_wall_ns(void)
{
    const struct clock_source *src = atomic_load_explicit(&source, memory_order_acquire);
    if (src && src->wall_ns)
        return src->wall_ns(src->ctx);
    return clock_system_ns(CLOCK_REALTIME);
}

int64_t clock_wall_ms(void)
{
    return clock_wall_ns() / 1000000;
}

void clock_source_set(const struct clock_source *src)
{
    atomic_store_explicit(&source, src, memory_order_release);
}

struct timespec clock_mono_deadline(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
