/* What the sender's files share: sender.c (the thread, the mailbox and the
 * lifecycle), sender_schedule.c (queues, timers, the decision to call, the
 * outcome of a call), sender_transfer.c (the HTTP calls on the curl multi
 * handle), sender_quota.c (the monthly quota and LINE's count of it) and
 * sender_overrides.c (per-channel rate-limit overrides). Not for the rest
 * of the dispatcher: they use sender.h.
 *
 * Threads: everything here runs under sender.mu, on the sender's thread or
 * (quota views, overrides) on the admin API's, unless it says otherwise. */
#ifndef KIZUNA_DISPATCHER_SENDER_PRIVATE_H
#define KIZUNA_DISPATCHER_SENDER_PRIVATE_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "clock.h"
#include "quota.h"
#include "sender.h"
#include "sender_fair.h"

struct line_result;

#define SENDER_BODY_CAP (64 * 1024) /* LINE's answers are small; more is cut */
#define SENDER_HEADER_MAX 128
#define SENDER_IDLE_MS 100
#define SENDER_PARK_MS 1000            /* re-check a delivery waiting for its channel */
#define SENDER_QUOTA_RETRY_MS 60000    /* after a failed quota sync */
#define SENDER_QUOTA_VIEW_WAIT_MS 5000 /* the admin API waits this long for a usage read */
#define SENDER_QUOTA_LOAD_WAIT_MS 20   /* the send path waits this long, then parks */
#define SENDER_GAUGE_MS 500
#define NS_PER_MS 1000000LL

struct dq {
    struct delivery *head, *tail;
};

/* One channel's queues, limits state and quota. */
struct chan {
    char id[CHANNEL_ID_MAX + 1];
    char owner[AUTH_FIELD_MAX]; /* the tenant the limits and quota below are of; "": not seen */
    struct dq q[RATELIMIT_CLASS_COUNT];
    int64_t blocked_until_ns[RATELIMIT_CLASS_COUNT]; /* monotonic */
    size_t queued;
    bool active;          /* listed in sender.active */
    int next_cls;         /* the queue a visit tries first (round-robin over endpoints) */
    uint64_t idle_in_run; /* sender.run in which a visit found nothing to start */
    /* quota */
    bool quota_ready;
    long long quota_version; /* of the ChannelConfig the limits came from */
    char timezone[QUOTA_ZONE_NAME_MAX];
    struct quota_state quota;
    long long line_limit; /* LINE's quota endpoint; QUOTA_NONE: unknown or none */
    int64_t sync_due_ms;  /* unix ms */
    int sync_inflight;
    bool sync_failed;
};

enum transfer_kind { TRANSFER_SEND, TRANSFER_QUOTA, TRANSFER_CONSUMPTION };

struct transfer {
    struct transfer *prev, *next; /* the sender's list of calls in flight */
    CURL *easy;
    enum transfer_kind kind;
    struct delivery *d; /* TRANSFER_SEND */
    struct chan *chan;
    enum ratelimit_class cls;
    struct curl_slist *headers;
    char *url;
    char line_request_id[SENDER_HEADER_MAX];
    char accepted_request_id[SENDER_HEADER_MAX];
    char retry_after[SENDER_HEADER_MAX];
    char *body;
    size_t body_len, body_cap;
    int64_t started_ns;
};

/* A read of one channel's month of quota usage, asked for by the send
 * path and done by the quota loader (sender_quota.c) on its own connection,
 * so that a database that stops answering never holds sender.mu. */
enum quota_load_state { QUOTA_LOAD_WANTED, QUOTA_LOAD_RUNNING, QUOTA_LOAD_DONE, QUOTA_LOAD_FAILED };
struct quota_load {
    struct quota_load *next;
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX]; /* whose usage of the channel */
    int64_t month_start;            /* unix s */
    enum quota_load_state state;
    long long used; /* DONE */
};

struct override {
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX]; /* who set it: only the channel's owner's apply */
    enum ratelimit_class cls;
    struct ratelimit_rate rate;
    bool seen; /* sync bookkeeping */
};

struct sender {
    struct sender_config cfg;
    char base_url[512];
    char instance[DELIVERY_INSTANCE_MAX + 1];
    struct channels *channels;
    struct deliveries_writer *writer;
    /* Quota usage reads: the loader thread queries db without mu; the
     * send path asks and collects through loads, under loads_mu (never
     * taken with loads_mu held: mu; loads_mu may be taken under mu). */
    struct db *db; /* the loader's thread only */
    struct worker *loader;
    pthread_mutex_t loads_mu;
    pthread_cond_t loads_done; /* a load ended (monotonic clock) */
    struct quota_load *loads;

    struct worker *worker; /* the sender's thread; NULL when not running */
    /* Set by sender_stop before it wakes curl_multi_poll, so that the thread
     * sees it as soon as the poll returns (the worker's own stop flag would
     * come only after the wake). */
    atomic_bool stop;
    atomic_long held;
    _Atomic int64_t lease_until_ms; /* monotonic; no call starts at or after it */

    /* the mailbox: submitted deliveries, and the request ids of every
     * delivery held, under mailbox_mu */
    pthread_mutex_t mailbox_mu;
    struct delivery *mailbox_head, *mailbox_tail;
    struct strmap *held_ids;
    struct sender_counts *tenant_held; /* deliveries held, by tenant */

    /* everything below: under mu */
    pthread_mutex_t mu;
    CURLM *multi;
    struct strmap *chans; /* channel id -> struct chan */
    struct chan **active; /* channels with queued deliveries, in order of arrival */
    size_t nactive, active_cap;
    struct sender_rr rr;                   /* the channel served first by the next dispatch */
    uint64_t run;                          /* dispatches so far */
    struct sender_counts *tenant_inflight; /* calls to LINE in flight, by tenant */
    struct delivery **heap;                /* waiting deliveries, by not_before_ms */
    size_t nheap, heap_cap;
    struct strmap *zones; /* name -> struct quota_zone */
    struct ratelimit *rl;
    struct override *overrides;
    size_t noverrides, overrides_cap;
    CURL **idle; /* reusable easy handles */
    size_t nidle, idle_cap;
    long inflight;
    struct transfer *transfers; /* in flight */
    uint64_t rng_state;
    struct backoff_rng rng;
    int64_t gauges_at_ms;

    struct metric *m_calls;   /* endpoint, outcome */
    struct metric *m_latency; /* endpoint */
    struct metric *m_results; /* status */
    struct metric *m_quota_exceeded;
    struct metric *m_quota_warn;
    struct metric *m_inflight;
    struct metric *m_held;
    struct metric *m_refused; /* reason: requests refused before any call */
};

/* --- sender_schedule.c ------------------------------------------------------ */

/* Appends d to q / takes q's head (NULL when empty). */
void sender_dq_push(struct dq *q, struct delivery *d);
struct delivery *sender_dq_pop(struct dq *q);
/* channel id's state, created on first use. Returns NULL when out of memory. */
struct chan *sender_chan_get(struct sender *s, const char *id);
/* Puts d where it waits: a channel queue, or the timer heap (takes ownership). */
void sender_place(struct sender *s, struct delivery *d, int64_t now_ms);
/* d waits on the timer heap until until_ms (unix ms). */
void sender_park(struct sender *s, struct delivery *d, int64_t until_ms);
/* d's final outcome goes to the writer, and d is freed. */
void sender_finish(struct sender *s, struct delivery *d, Kizuna__V1__DeliveryStatus status,
                   const struct line_result *res, const char *reason);
/* d leaves memory (final, or dropped): it is no longer held. */
void sender_forget(struct sender *s, struct delivery *d);
/* Walks the active channels and starts what the limits allow. Returns the
 * time (ms) until something may change without a completion. */
long sender_dispatch(struct sender *s);
/* Moves due timers into their queues. Returns ms until the next one. */
long sender_fire_timers(struct sender *s);
/* A send's call ended (rc, HTTP status): classify it and decide. */
void sender_send_done(struct sender *s, struct transfer *t, CURLcode rc, long status);

/* --- sender_transfer.c ------------------------------------------------------ */

/* Starts one HTTP call. headers are "Name: value" lines (borrowed). Returns
 * the transfer (in the multi handle, counted in flight), or NULL. */
struct transfer *sender_transfer_start(struct sender *s, enum line_method method, const char *path,
                                       const char *body, size_t body_len, char *const *headers,
                                       size_t nheaders);
/* Takes t out of the multi handle, keeps its easy handle for reuse, frees
 * t (not t->d); accepts NULL. */
void sender_transfer_free(struct sender *s, struct transfer *t);
/* Hands every finished call to send_done or quota_sync_done, then frees it. */
void sender_completions(struct sender *s);

/* --- sender_overrides.c ----------------------------------------------------- */

/* c's state becomes tenant's (see sender_channel_owner). Under mu. */
void sender_chan_owner_locked(struct sender *s, struct chan *c, const char *tenant);

/* --- sender_quota.c --------------------------------------------------------- */

/* Makes c's quota state current for cr. Returns 0; 1 while the month's
 * usage is being read by the loader (nothing waits: try again later); or
 * -1 when it could not be read (try again later). */
int sender_quota_ensure(struct sender *s, struct chan *c, const struct channel_creds *cr,
                        int64_t now_ms);
/* The loader thread's round (worker_start_rounds): one read per round.
 * ctx is the sender. */
long sender_quota_load_round(struct worker *w, void *ctx);
/* Frees what the loader left (at sender_free). */
void sender_quota_loads_free(struct sender *s);
/* Gives d's counted quota back to c (c may be NULL). */
void sender_quota_release(struct delivery *d, struct chan *c);
/* Asks LINE for c's quota and usage (two calls), when slots and limits allow. */
void sender_quota_sync_start(struct sender *s, struct chan *c, int64_t now_ns, int64_t now_ms);
/* One of those calls ended with HTTP status (0: no answer). */
void sender_quota_sync_done(struct sender *s, struct transfer *t, long status);

#endif
