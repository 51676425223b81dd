/* The one clock reads the system clocks by default, follows an installed
 * source for either half, and returns to the system clock when the source is
 * removed; a deadline for a condition wait lies ms ahead on CLOCK_MONOTONIC. */
#include <criterion/criterion.h>
#include <time.h>

#include "clock.h"

static int64_t fake_mono(void *ctx)
{
    return *(int64_t *)ctx;
}

static int64_t fake_wall(void *ctx)
{
    return *(int64_t *)ctx + 1;
}

static int64_t system_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

Test(clock, reads_the_system_clocks_by_default)
{
    int64_t before = system_ns(CLOCK_MONOTONIC);
    int64_t mono = clock_mono_ns();
    int64_t after = system_ns(CLOCK_MONOTONIC);
    cr_assert(mono >= before && mono <= after);
    int64_t wall_before = system_ns(CLOCK_REALTIME) / 1000000;
    int64_t wall = clock_wall_ms();
    cr_assert(wall >= wall_before && wall <= wall_before + 1000);
}

Test(clock, follows_an_installed_source_and_returns_to_the_system)
{
    int64_t now = 5000000000; /* 5 s */
    struct clock_source src = {.mono_ns = fake_mono, .wall_ns = fake_wall, .ctx = &now};
    clock_source_set(&src);
    cr_assert_eq(clock_mono_ns(), 5000000000);
    cr_assert_eq(clock_mono_ms(), 5000);
    cr_assert_eq(clock_wall_ns(), 5000000001);
    now += 250000000;
    cr_assert_eq(clock_mono_ms(), 5250);
    clock_source_set(NULL);
    cr_assert_gt(clock_wall_ms(), 1700000000000); /* after 2023: the real wall clock */
}

Test(clock, a_source_with_one_half_keeps_the_system_clock_for_the_other)
{
    int64_t now = 42000000;
    struct clock_source src = {.mono_ns = fake_mono, .ctx = &now};
    clock_source_set(&src);
    cr_assert_eq(clock_mono_ms(), 42);
    cr_assert_gt(clock_wall_ms(), 1700000000000);
    clock_source_set(NULL);
}

Test(clock, deadline_lies_ms_ahead_on_the_monotonic_clock)
{
    int64_t before = system_ns(CLOCK_MONOTONIC);
    struct timespec d = clock_mono_deadline(1500);
    int64_t at = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
    cr_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
    cr_assert(at - before >= 1500000000 && at - before < 1600000000);
    struct timespec z = clock_mono_deadline(-5); /* negative: now */
    cr_assert((int64_t)z.tv_sec * 1000000000 + z.tv_nsec - before < 100000000);
}
