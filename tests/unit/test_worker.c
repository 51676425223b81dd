/* A worker runs its body on a named thread; worker_wait returns on a wake, on
 * stop, or at its timeout, and a wake sent while the body was busy is kept for
 * the next wait; the round loop runs rounds at the pace round() asks, drains
 * while round() has more to do and budget lasts, and stop joins and clears
 * the caller's pointer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "worker.h"

struct probe {
    atomic_int rounds;
    atomic_int woken_waits;
    atomic_int timed_out_waits;
    atomic_bool done;
    char thread_name[16];
    long drain_left; /* rounds that still have work once stopping */
    long wait_ms;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool eventually(atomic_int *v, int want, long timeout_ms)
{
    int64_t until = clock_mono_ms() + timeout_ms;
    while (atomic_load(v) < want && clock_mono_ms() < until)
        sleep_ms(5);
    return atomic_load(v) >= want;
}

static void waiting_body(struct worker *w, void *ctx)
{
    struct probe *p = ctx;
    pthread_getname_np(pthread_self(), p->thread_name, sizeof p->thread_name);
    while (!worker_stopping(w)) {
        if (worker_wait(w, p->wait_ms))
            atomic_fetch_add(&p->woken_waits, 1);
        else
            atomic_fetch_add(&p->timed_out_waits, 1);
    }
    atomic_store(&p->done, true);
}

Test(worker, body_runs_on_a_thread_named_for_the_worker)
{
    struct probe p = {.wait_ms = 10000};
    char err[128] = "";
    struct worker *w =
        worker_start("outbox-relay-with-a-long-name", waiting_body, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_str_eq(worker_name(w), "outbox-relay-with-a-long-name");
    sleep_ms(50);
    worker_stop(&w, 1000);
    cr_assert_null(w);
    cr_assert(atomic_load(&p.done));
    cr_assert_str_eq(p.thread_name, "outbox-relay-wi"); /* 15 bytes, Linux's limit */
}

Test(worker, wake_cuts_a_long_wait_short)
{
    struct probe p = {.wait_ms = 60000};
    char err[128] = "";
    struct worker *w = worker_start("waker", waiting_body, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    sleep_ms(30);
    worker_wake(w);
    cr_assert(eventually(&p.woken_waits, 1, 2000), "a wake did not end a 60 s wait");
    cr_assert_eq(atomic_load(&p.timed_out_waits), 0);
    worker_stop(&w, 1000);
}

Test(worker, wait_times_out_on_its_own)
{
    struct probe p = {.wait_ms = 20};
    char err[128] = "";
    struct worker *w = worker_start("ticker", waiting_body, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(eventually(&p.timed_out_waits, 3, 3000));
    cr_assert_eq(atomic_load(&p.woken_waits), 0);
    worker_stop(&w, 1000);
}

Test(worker, stop_ends_a_long_wait_at_once)
{
    struct probe p = {.wait_ms = 60000};
    char err[128] = "";
    struct worker *w = worker_start("stopper", waiting_body, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    sleep_ms(20);
    int64_t t0 = clock_mono_ms();
    worker_stop(&w, 5000);
    cr_assert_lt(clock_mono_ms() - t0, 1000, "stop waited out the sleep");
    cr_assert(atomic_load(&p.done));
}

static void busy_then_wait_body(struct worker *w, void *ctx)
{
    struct probe *p = ctx;
    sleep_ms(100); /* busy: the wake arrives now */
    bool woken = worker_wait(w, 5000);
    atomic_store(&p->woken_waits, woken ? 1 : 0);
    atomic_store(&p->done, true);
    while (!worker_stopping(w))
        worker_wait(w, 1000);
}

Test(worker, a_wake_while_busy_is_kept_for_the_next_wait)
{
    struct probe p = {0};
    char err[128] = "";
    struct worker *w = worker_start("busy", busy_then_wait_body, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    worker_wake(w);
    int64_t t0 = clock_mono_ms();
    while (!atomic_load(&p.done) && clock_mono_ms() - t0 < 3000)
        sleep_ms(5);
    cr_assert(atomic_load(&p.done));
    cr_assert_eq(atomic_load(&p.woken_waits), 1);
    cr_assert_lt(clock_mono_ms() - t0, 1000, "the kept wake did not end the wait");
    worker_stop(&w, 1000);
}

static long counting_round(struct worker *w, void *ctx)
{
    struct probe *p = ctx;
    atomic_fetch_add(&p->rounds, 1);
    if (worker_stopping(w)) {
        if (p->drain_left <= 0)
            return 1000; /* nothing more to do: the loop ends */
        p->drain_left--;
        return 0; /* more to drain */
    }
    return p->wait_ms;
}

Test(worker, rounds_run_at_the_pace_round_asks)
{
    struct probe p = {.wait_ms = 10};
    char err[128] = "";
    struct worker *w = worker_start_rounds("rounds", counting_round, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(eventually(&p.rounds, 5, 3000));
    worker_stop(&w, 1000);
}

Test(worker, rounds_drain_while_round_has_more_then_end)
{
    struct probe p = {.wait_ms = 60000, .drain_left = 3};
    char err[128] = "";
    struct worker *w = worker_start_rounds("drainer", counting_round, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(eventually(&p.rounds, 1, 2000));
    int before = atomic_load(&p.rounds);
    worker_stop(&w, 5000);
    /* three rounds that each drain one more, then one that finds nothing */
    cr_assert_eq(atomic_load(&p.rounds) - before, 4);
}

static long endless_drain_round(struct worker *w, void *ctx)
{
    struct probe *p = ctx;
    atomic_fetch_add(&p->rounds, 1);
    if (!worker_stopping(w))
        return 60000;
    sleep_ms(20);
    return 0; /* always more to drain: only the budget ends it */
}

Test(worker, drain_ends_when_the_budget_runs_out)
{
    struct probe p = {0};
    char err[128] = "";
    struct worker *w = worker_start_rounds("budget", endless_drain_round, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(eventually(&p.rounds, 1, 2000));
    int64_t t0 = clock_mono_ms();
    worker_stop(&w, 200);
    int64_t took = clock_mono_ms() - t0;
    cr_assert(took >= 200 && took < 1000, "took %lld ms", (long long)took);
}

static long done_round(struct worker *w, void *ctx)
{
    (void)w;
    struct probe *p = ctx;
    atomic_fetch_add(&p->rounds, 1);
    return WORKER_DONE;
}

Test(worker, a_round_that_answers_done_ends_the_thread_and_stop_still_joins)
{
    struct probe p = {0};
    char err[128] = "";
    struct worker *w = worker_start_rounds("once", done_round, &p, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert(eventually(&p.rounds, 1, 2000));
    sleep_ms(20);
    cr_assert_eq(atomic_load(&p.rounds), 1);
    worker_stop(&w, 0);
    cr_assert_null(w);
}

Test(worker, stop_of_null_is_a_no_op)
{
    struct worker *w = NULL;
    worker_stop(&w, 100);
    worker_stop(NULL, 100);
    worker_wake(NULL);
}
