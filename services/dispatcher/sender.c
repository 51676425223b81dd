/* The dispatcher's send loop. One thread owns the curl multi handle, the
 * queues and the timers, so the order of decisions for a channel is simple:
 * credentials, then the request is built, then the quota is counted once,
 * then the rate limiter says "go" (or "wait N ns", and the queue's head
 * waits), then the call goes out. Decisions and completions run under one
 * mutex that the admin API also takes to read or change limits and quota;
 * the thread drops it while it waits in curl_multi_poll.
 *
 * Never twice: a push, multicast, broadcast or narrowcast carries its
 * request_id as X-Line-Retry-Key on every attempt, and LINE's 409 counts as
 * sent. A reply has no key, so once any attempt of it might have reached
 * LINE (an ambiguous failure, or a restart), it never falls back to a push.
 * Never lost: every delivery here also exists as a pending row, and a
 * delivery leaves memory only as a final record for the writer (or at
 * shutdown, when its row simply stays pending). */
#include "sender_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>

#include "crypto.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "strmap.h"
#include "worker.h"

/* --- the thread ------------------------------------------------------------------ */

static void take_mailbox(struct sender *s)
{
    pthread_mutex_lock(&s->mailbox_mu);
    struct delivery *d = s->mailbox_head;
    s->mailbox_head = s->mailbox_tail = NULL;
    pthread_mutex_unlock(&s->mailbox_mu);
    int64_t now = clock_wall_ms();
    while (d) {
        struct delivery *next = d->next;
        d->next = NULL;
        sender_place(s, d, now);
        d = next;
    }
}

static void gauges(struct sender *s)
{
    int64_t now = clock_wall_ms();
    if (now - s->gauges_at_ms < SENDER_GAUGE_MS)
        return;
    s->gauges_at_ms = now;
    metrics_set(s->m_inflight, (double)s->inflight);
    metrics_set(s->m_held, (double)atomic_load(&s->held));
}

/* The worker's body. Once stopping it starts nothing new and waits for the
 * calls in flight, up to the stop budget (drain_ms). */
static void sender_main(struct worker *wk, void *ctx)
{
    struct sender *s = ctx;
    for (;;) {
        bool stopping = atomic_load(&s->stop);
        long wait_ms = SENDER_IDLE_MS;
        pthread_mutex_lock(&s->mu);
        /* Without the lease nothing moves: what waits keeps waiting, and
         * only the calls already out complete (their outcomes are fenced
         * at the writer if the rows were taken over meanwhile). */
        bool leased = clock_mono_ms() < atomic_load(&s->lease_until_ms);
        if (!stopping && leased) {
            take_mailbox(s);
            long t = sender_fire_timers(s);
            if (t < wait_ms)
                wait_ms = t;
            if (channels_caught_up(s->channels)) {
                long dms = sender_dispatch(s);
                if (dms < wait_ms)
                    wait_ms = dms;
            }
        }
        gauges(s);
        long inflight = s->inflight;
        pthread_mutex_unlock(&s->mu);
        if (stopping && (inflight == 0 || worker_budget_left_ms(wk) == 0))
            break;
        if (wait_ms < 0)
            wait_ms = 0;
        curl_multi_poll(s->multi, NULL, 0, (int)wait_ms, NULL);
        int running = 0;
        pthread_mutex_lock(&s->mu);
        curl_multi_perform(s->multi, &running);
        sender_completions(s);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->inflight > 0) {
        char n[24];
        snprintf(n, sizeof n, "%ld", s->inflight);
        log_warn("calls still in flight at shutdown are abandoned; their rows stay pending and "
                 "are resent with the same retry key",
                 "calls", n);
    }
}

/* --- lifecycle ------------------------------------------------------------------- */

struct sender *sender_new(const struct sender_config *cfg, struct channels *channels,
                          struct deliveries_writer *writer, char *errstr, size_t errcap)
{
    if (backoff_policy_check(&cfg->backoff, errstr, errcap) != 0)
        return NULL;
    struct sender *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (s->cfg.max_inflight < 1)
        s->cfg.max_inflight = 1;
    size_t bl = strlen(cfg->base_url);
    while (bl > 0 && cfg->base_url[bl - 1] == '/')
        bl--;
    if (bl >= sizeof s->base_url) {
        snprintf(errstr, errcap, "LINE API base URL too long");
        free(s);
        return NULL;
    }
    memcpy(s->base_url, cfg->base_url, bl);
    s->base_url[bl] = '\0';
    snprintf(s->instance, sizeof s->instance, "%s", cfg->instance);
    s->channels = channels;
    s->writer = writer;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->mailbox_mu, NULL);
    pthread_mutex_init(&s->loads_mu, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->loads_done, &cattr);
    pthread_condattr_destroy(&cattr);
    atomic_init(&s->stop, false);
    atomic_init(&s->held, 0);
    atomic_init(&s->lease_until_ms, 0);
    if (crypto_random(&s->rng_state, sizeof s->rng_state) != 0)
        s->rng_state = (uint64_t)clock_mono_ns();
    s->rng.next = backoff_rng_splitmix64;
    s->rng.ctx = &s->rng_state;
    s->idle_cap = (size_t)s->cfg.max_inflight + 8;
    s->idle = calloc(s->idle_cap, sizeof *s->idle);
    s->chans = strmap_new();
    s->zones = strmap_new();
    s->held_ids = strmap_new();
    s->tenant_held = sender_counts_new();
    s->tenant_inflight = sender_counts_new();
    s->rl = ratelimit_new(NULL, errstr, errcap);
    if (s->rl &&
        ratelimit_set_margin(s->rl, s->cfg.rate_margin_ms * NS_PER_MS, errstr, errcap) != 0) {
        sender_free(&s);
        return NULL;
    }
    s->multi = curl_multi_init();
    if (!s->idle || !s->chans || !s->zones || !s->held_ids || !s->tenant_held ||
        !s->tenant_inflight || !s->rl || !s->multi) {
        if (!errstr[0])
            snprintf(errstr, errcap, "out of memory");
        sender_free(&s);
        return NULL;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, s->cfg.max_inflight);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    s->db = db_connect(cfg->dsn, errstr, errcap);
    if (!s->db) {
        sender_free(&s);
        return NULL;
    }
    static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1,    2.5,   10};
    s->m_calls = metrics_counter("kizuna_dispatcher_line_calls_total",
                                 "calls to LINE by endpoint and outcome", "endpoint,outcome");
    s->m_latency = metrics_histogram("kizuna_dispatcher_line_call_seconds",
                                     "duration of calls to LINE", "endpoint", latency_buckets,
                                     sizeof latency_buckets / sizeof latency_buckets[0]);
    s->m_results = metrics_counter("kizuna_dispatcher_results_total",
                                   "final outcomes of send requests", "status");
    s->m_quota_exceeded =
        metrics_counter("kizuna_dispatcher_quota_exceeded_total",
                        "sends refused because the monthly quota is used up", "channel");
    s->m_quota_warn =
        metrics_counter("kizuna_dispatcher_quota_warnings_total",
                        "monthly quota usage crossed the warning threshold", "channel");
    s->m_inflight =
        metrics_gauge("kizuna_dispatcher_calls_in_flight", "calls to LINE in flight", NULL);
    s->m_held = metrics_gauge("kizuna_dispatcher_deliveries_held",
                              "deliveries held in memory (queued, waiting or in flight)", NULL);
    s->m_refused =
        metrics_counter("kizuna_dispatcher_requests_refused_total",
                        "send requests refused before any call to LINE, by reason", "reason");
    return s;
}

int sender_start(struct sender *s, char *errstr, size_t errcap)
{
    if (s->worker)
        return 0;
    if (!s->loader) {
        s->loader = worker_start_rounds("quota-loader", sender_quota_load_round, s, errstr, errcap);
        if (!s->loader)
            return -1;
    }
    s->worker = worker_start("sender", sender_main, s, errstr, errcap);
    return s->worker ? 0 : -1;
}

void sender_submit(struct sender *s, struct delivery *d)
{
    d->next = NULL;
    pthread_mutex_lock(&s->mailbox_mu);
    if (strmap_get(s->held_ids, d->request_id)) {
        /* Already here (a takeover or a reload raced): one copy is enough. */
        pthread_mutex_unlock(&s->mailbox_mu);
        log_debug("delivery already held", "request_id", d->request_id);
        delivery_move(d, DELIVERY_DROPPED);
        delivery_free(d);
        return;
    }
    if (strmap_put(s->held_ids, d->request_id, s) != 0)
        log_warn("out of memory tracking a delivery", "request_id", d->request_id);
    /* Out of memory here only leaves it uncounted against its tenant's
     * share (a count never drops below 0). */
    if (sender_counts_add(s->tenant_held, d->tenant_id, 1) != 0)
        log_warn("out of memory counting a tenant's deliveries", "tenant", d->tenant_id);
    atomic_fetch_add(&s->held, 1);
    delivery_move(d, DELIVERY_MAILBOX);
    if (s->mailbox_tail)
        s->mailbox_tail->next = d;
    else
        s->mailbox_head = d;
    s->mailbox_tail = d;
    pthread_mutex_unlock(&s->mailbox_mu);
    curl_multi_wakeup(s->multi);
}

void sender_lease_extend(struct sender *s, int64_t until_ms)
{
    atomic_store(&s->lease_until_ms, until_ms);
    curl_multi_wakeup(s->multi);
}

int64_t sender_lease_until(struct sender *s)
{
    return atomic_load(&s->lease_until_ms);
}

/* One delivery that was waiting leaves memory without an outcome, and
 * the quota it had counted goes back (recovery counts it again). */
static void release(struct sender *s, struct delivery *d)
{
    sender_quota_release(d, strmap_get(s->chans, d->channel_id));
    delivery_move(d, DELIVERY_DROPPED);
    sender_forget(s, d);
    delivery_free(d);
}

struct release_ctx {
    struct sender *s;
    long n;
};

/* Every queue of one channel (listed as active or not: a channel whose
 * listing failed keeps its queue); the next dispatch unlists an active
 * channel with nothing queued. */
static void release_chan(void *ctx, const char *key, void *value)
{
    (void)key;
    struct release_ctx *rc = ctx;
    struct chan *c = value;
    for (int cls = 0; cls < RATELIMIT_CLASS_COUNT; cls++) {
        struct delivery *d;
        while ((d = sender_dq_pop(&c->q[cls])) != NULL) {
            release(rc->s, d);
            rc->n++;
        }
    }
    c->queued = 0;
}

long sender_release_all(struct sender *s)
{
    long n = 0;
    pthread_mutex_lock(&s->mu);
    if (s->inflight > 0 || clock_mono_ms() < atomic_load(&s->lease_until_ms)) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    pthread_mutex_lock(&s->mailbox_mu);
    struct delivery *d = s->mailbox_head;
    s->mailbox_head = s->mailbox_tail = NULL;
    pthread_mutex_unlock(&s->mailbox_mu);
    while (d) {
        struct delivery *next = d->next;
        d->next = NULL;
        release(s, d);
        n++;
        d = next;
    }
    for (size_t i = 0; i < s->nheap; i++) {
        release(s, s->heap[i]);
        n++;
    }
    s->nheap = 0;
    struct release_ctx rc = {s, n};
    strmap_each(s->chans, release_chan, &rc);
    pthread_mutex_unlock(&s->mu);
    return rc.n;
}

bool sender_holds(struct sender *s, const char *request_id)
{
    pthread_mutex_lock(&s->mailbox_mu);
    bool held = strmap_get(s->held_ids, request_id) != NULL;
    pthread_mutex_unlock(&s->mailbox_mu);
    return held;
}

long sender_held(struct sender *s)
{
    return atomic_load(&s->held);
}

bool sender_full(struct sender *s)
{
    return atomic_load(&s->held) >= s->cfg.max_queued;
}

long sender_tenant_room(struct sender *s, const char *tenant)
{
    if (s->cfg.tenant_max_queued <= 0)
        return LONG_MAX;
    pthread_mutex_lock(&s->mailbox_mu);
    long room = sender_counts_room(s->tenant_held, tenant, s->cfg.tenant_max_queued);
    pthread_mutex_unlock(&s->mailbox_mu);
    return room;
}

void sender_stop(struct sender *s)
{
    if (!s)
        return;
    if (s->worker) {
        atomic_store(&s->stop, true);
        curl_multi_wakeup(s->multi);
        worker_stop(&s->worker, s->cfg.drain_ms);
    }
    /* After the sender: nothing asks for a read any more. A read in
     * progress ends within the statement timeout. */
    worker_stop(&s->loader, 0);
}

/* At shutdown: d leaves memory without an outcome (its row stays pending). */
static void drop(struct delivery *d)
{
    if (!d)
        return;
    delivery_move(d, DELIVERY_DROPPED);
    delivery_free(d);
}

static void chan_free(void *p)
{
    struct chan *c = p;
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++) {
        struct delivery *d;
        while ((d = sender_dq_pop(&c->q[i])))
            drop(d);
    }
    free(c);
}

static void zone_free(void *p)
{
    struct quota_zone *z = p;
    quota_zone_free(&z);
}

static void abandon_transfers(struct sender *s)
{
    if (!s->multi)
        return;
    /* Every call still in flight: its row stays pending. */
    while (s->transfers) {
        struct transfer *t = s->transfers;
        drop(t->d);
        sender_transfer_free(s, t);
    }
}

void sender_free(struct sender **sp)
{
    if (!sp || !*sp)
        return;
    struct sender *s = *sp;
    sender_stop(s);
    abandon_transfers(s);
    struct delivery *d = s->mailbox_head;
    while (d) {
        struct delivery *next = d->next;
        drop(d);
        d = next;
    }
    for (size_t i = 0; i < s->nheap; i++)
        drop(s->heap[i]);
    free(s->heap);
    strmap_free(&s->chans, chan_free);
    strmap_free(&s->zones, zone_free);
    strmap_free(&s->held_ids, NULL);
    sender_counts_free(&s->tenant_held);
    sender_counts_free(&s->tenant_inflight);
    free(s->active);
    ratelimit_free(&s->rl);
    for (size_t i = 0; i < s->nidle; i++)
        curl_easy_cleanup(s->idle[i]);
    free(s->idle);
    free(s->overrides);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    db_free(&s->db);
    sender_quota_loads_free(s);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->mailbox_mu);
    pthread_mutex_destroy(&s->loads_mu);
    pthread_cond_destroy(&s->loads_done);
    free(s);
    *sp = NULL;
}
