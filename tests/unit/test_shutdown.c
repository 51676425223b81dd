/* The drain runs registered steps in the documented stage order (registration
 * order within a stage) whatever order they were registered in, exactly
 * once; a signal only sets the flag; sleeps wake early on shutdown. Each
 * Criterion test runs in its own process, so the global state starts empty. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shutdown.h"

static char trace[64];

static void record(void *ctx)
{
    size_t n = strlen(trace);
    if (n + 1 < sizeof trace) {
        trace[n] = *(const char *)ctx;
        trace[n + 1] = '\0';
    }
}

Test(shutdown, drain_runs_steps_in_stage_order_then_registration_order)
{
    static const char f = 'f', c = 'c', a = 'a', d = 'd', b = 'b';
    shutdown_register(SHUTDOWN_FREE, "free", record, (void *)&f);
    shutdown_register(SHUTDOWN_CLOSE_DB, "db", record, (void *)&c);
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "listener", record, (void *)&a);
    shutdown_register(SHUTDOWN_FLUSH_PRODUCER, "producer", record, (void *)&d);
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "consumer poll", record, (void *)&b);
    shutdown_drain();
    cr_assert_str_eq(trace, "abdcf");
}

Test(shutdown, drain_forgets_steps_so_they_run_once)
{
    static const char x = 'x';
    shutdown_register(SHUTDOWN_CLOSE_DB, "db", record, (void *)&x);
    shutdown_drain();
    shutdown_drain();
    cr_assert_str_eq(trace, "x");
}

Test(shutdown, sigterm_only_sets_the_flag)
{
    cr_assert_eq(shutdown_install(), 0);
    cr_assert_not(shutdown_requested());
    raise(SIGTERM);
    cr_assert(shutdown_requested());
}

Test(shutdown, sigint_sets_the_flag_and_sigpipe_is_ignored)
{
    cr_assert_eq(shutdown_install(), 0);
    raise(SIGPIPE); /* would kill the process if not ignored */
    raise(SIGINT);
    cr_assert(shutdown_requested());
}

Test(shutdown, sleep_returns_at_once_when_shutdown_was_requested)
{
    struct timespec t0, t1;
    shutdown_request();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    shutdown_sleep_ms(5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 1);
}

struct bad_registration {
    const char *name;
    int stage;
};

static const struct bad_registration bad_registrations[] = {
    {"stage past the last", SHUTDOWN_STAGES},
    {"stage far out of range", 1000},
};

static void nothing(void *ctx)
{
    (void)ctx;
}

Test(shutdown, bad_registrations_are_refused)
{
    for (size_t i = 0; i < sizeof bad_registrations / sizeof bad_registrations[0]; i++)
        cr_expect_eq(shutdown_register((enum shutdown_stage)bad_registrations[i].stage, "bad",
                                       nothing, NULL),
                     -1, "%s", bad_registrations[i].name);
    int accepted = 0;
    for (int i = 0; i < 40; i++)
        accepted += shutdown_register(SHUTDOWN_FREE, "many", nothing, NULL) == 0;
    cr_expect_eq(accepted, 32, "at most 32 steps are kept");
}
