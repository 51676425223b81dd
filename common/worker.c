/* Named background threads (see worker.h). The stop flag and the wake flag
 * live under one mutex with a monotonic condition variable, so a wake can
 * never slip between a check and a wait, and a wall-clock jump never
 * stretches a sleep. */
#include "worker.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define WORKER_NAME_MAX 32
/* How long past its budget a body may run before the overrun is logged. */
#define WORKER_OVERRUN_GRACE_MS 1000

struct worker {
    char name[WORKER_NAME_MAX];
    worker_main_fn main_fn;
    worker_round_fn round_fn;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool woken;
    bool stopping;
    int64_t stop_deadline_ms; /* monotonic; valid once stopping */
};

static void worker_run_rounds(struct worker *w, void *ctx)
{
    for (;;) {
        long wait_ms = w->round_fn(w, ctx);
        if (wait_ms == WORKER_DONE)
            return;
        if (worker_stopping(w)) {
            /* Draining: go on only while there is more to do right now and
             * budget to do it in. */
            if (wait_ms != 0 || worker_budget_left_ms(w) == 0)
                return;
            continue;
        }
        if (wait_ms > 0)
            worker_wait(w, wait_ms);
    }
}

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    /* Linux limits thread names to 15 bytes plus NUL. */
    char short_name[16];
    memcpy(short_name, w->name, sizeof short_name - 1);
    short_name[sizeof short_name - 1] = '\0';
    pthread_setname_np(pthread_self(), short_name);
    if (w->round_fn)
        worker_run_rounds(w, w->ctx);
    else
        w->main_fn(w, w->ctx);
    return NULL;
}

static struct worker *worker_spawn(const char *name, worker_main_fn main_fn,
                                   worker_round_fn round_fn, void *ctx, char *errstr, size_t errcap)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    snprintf(w->name, sizeof w->name, "%s", name ? name : "worker");
    w->main_fn = main_fn;
    w->round_fn = round_fn;
    w->ctx = ctx;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    int rc = pthread_create(&w->thread, NULL, worker_thread, w);
    if (rc != 0) {
        snprintf(errstr, errcap, "cannot start thread %s: %s", w->name, strerror(rc));
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    log_debug("worker started", "worker", w->name);
    return w;
}

struct worker *worker_start(const char *name, worker_main_fn fn, void *ctx, char *errstr,
                            size_t errcap)
{
    return worker_spawn(name, fn, NULL, ctx, errstr, errcap);
}

struct worker *worker_start_rounds(const char *name, worker_round_fn round, void *ctx, char *errstr,
                                   size_t errcap)
{
    return worker_spawn(name, NULL, round, ctx, errstr, errcap);
}

void worker_wake(struct worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->woken = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

bool worker_wait(struct worker *w, long timeout_ms)
{
    struct timespec until = clock_mono_deadline(timeout_ms);
    bool cut_short = false;
    pthread_mutex_lock(&w->mu);
    while (!w->woken && !w->stopping)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &until) != 0)
            break;
    cut_short = w->woken || w->stopping;
    w->woken = false;
    pthread_mutex_unlock(&w->mu);
    return cut_short;
}

bool worker_stopping(struct worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return stopping;
}

long worker_budget_left_ms(struct worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool stopping = w->stopping;
    int64_t deadline = w->stop_deadline_ms;
    pthread_mutex_unlock(&w->mu);
    if (!stopping)
        return LONG_MAX;
    int64_t left = deadline - clock_mono_ms();
    return left > 0 ? (long)left : 0;
}

const char *worker_name(const struct worker *w)
{
    return w->name;
}

void worker_stop(struct worker **wp, long budget_ms)
{
    if (!wp || !*wp)
        return;
    struct worker *w = *wp;
    int64_t started = clock_mono_ms();
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    w->stop_deadline_ms = started + (budget_ms > 0 ? budget_ms : 0);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_timedjoin_np takes CLOCK_REALTIME */
    long wait_ms = (budget_ms > 0 ? budget_ms : 0) + WORKER_OVERRUN_GRACE_MS;
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(w->thread, NULL, &until) != 0) {
        char budget[24];
        snprintf(budget, sizeof budget, "%ld", budget_ms);
        log_warn("worker overran its stop budget; still waiting for it", "worker", w->name,
                 "budget_ms", budget);
        pthread_join(w->thread, NULL);
    }
    char took[24];
    snprintf(took, sizeof took, "%lld", (long long)(clock_mono_ms() - started));
    log_debug("worker stopped", "worker", w->name, "took_ms", took);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
    *wp = NULL;
}
