/* The sender: one thread that owns every HTTP call to LINE. It holds the
 * deliveries taken from the intake (and recovered ones) in per-channel,
 * per-endpoint queues, asks the rate limiter (ratelimit.h) and the monthly
 * quota (quota.h) before each call, builds it (line_request.h), performs it
 * on a libcurl multi handle (connection reuse, HTTP/2 where offered, TLS >=
 * 1.2, explicit timeouts), classifies the answer (line_result.h), and hands
 * every outcome to the delivery log writer: retries with backoff.h's delay
 * (Retry-After honoured, 24 h at most), final outcomes with their
 * DeliveryResult. It also asks LINE for each channel's quota and usage now
 * and then, because the effective quota is the lower of the contract's and
 * LINE's.
 *
 * Threads: sender_submit and the limits/quota calls may come from any
 * thread; everything else runs on the sender's own thread. */
#ifndef KIZUNA_DISPATCHER_SENDER_H
#define KIZUNA_DISPATCHER_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "channels.h"
#include "delivery.h"
#include "ratelimit.h"

struct sender_config {
    const char *base_url;     /* DISPATCHER_LINE_API_BASE, no trailing slash needed */
    const char *dsn;          /* for reading quota usage */
    const char *instance;     /* this replica */
    long max_inflight;        /* concurrent calls to LINE */
    long max_queued;          /* deliveries held in memory before the intake waits */
    long tenant_max_inflight; /* one tenant's calls in flight; 0: no cap of its own */
    long tenant_max_queued;   /* one tenant's deliveries held; 0: no cap of its own */
    long connect_timeout_ms;
    long request_timeout_ms;
    long unknown_channel_grace_s; /* a channel not (yet) in the `channels` topic */
    long reply_max_age_ms;        /* older reply tokens are not tried */
    long quota_sync_s;            /* ask LINE for quota and usage this often; 0: never */
    int quota_warn_percent;
    long drain_ms;       /* at shutdown, wait this long for calls in flight */
    long rate_margin_ms; /* ratelimit.h's margin: arrivals stay within limits despite jitter */
    struct backoff_policy backoff;
};

struct deliveries_writer;
struct sender;

/* Creates the sender (not yet running). channels and writer are borrowed
 * and must outlive it. Returns NULL with errstr. */
struct sender *sender_new(const struct sender_config *cfg, struct channels *channels,
                          struct deliveries_writer *writer, char *errstr, size_t errcap);
/* Starts the thread. Returns 0, or -1 with errstr. */
int sender_start(struct sender *s, char *errstr, size_t errcap);
/* Hands d over (takes ownership); a request_id already held is dropped.
 * Any thread. */
void sender_submit(struct sender *s, struct delivery *d);
/* True while a delivery with request_id is held here. Any thread. */
bool sender_holds(struct sender *s, const char *request_id);
/* Deliveries held (queued, waiting or in flight); the intake pauses above
 * max_queued. Any thread. */
long sender_held(struct sender *s);
bool sender_full(struct sender *s);
/* The lease (decision 0010): the sender starts no call once the monotonic
 * clock (clock_mono_ms) reaches until_ms, until it is extended again. The
 * replica's heartbeat extends it; a replica whose heartbeat stopped (or
 * that was paused) stops sending on its own, whatever its other threads
 * do. Starts at 0: nothing is sent before the first extension. Any thread. */
void sender_lease_extend(struct sender *s, int64_t until_ms);
/* The end of the lease (monotonic ms; 0 before the first). Any thread. */
int64_t sender_lease_until(struct sender *s);
/* After the lease was lost: drops every delivery held (their rows stay
 * pending; recovery loads again those still this replica's), so that
 * nothing taken over meanwhile is sent. Only while the lease is out and no
 * call is in flight: returns the number dropped, or -1 while calls are
 * still in flight (try again). Any thread. */
long sender_release_all(struct sender *s);
/* How many more deliveries of tenant may be submitted before its share
 * (tenant_max_queued) is full; LONG_MAX without a cap. The intake leaves a
 * full tenant's requests in Kafka. Any thread. */
long sender_tenant_room(struct sender *s, const char *tenant);
/* Stops taking new calls, waits for those in flight up to drain_ms (then
 * abandons them: their rows stay pending and are resent with the same
 * retry key after a restart), and joins the thread. Safe to repeat. */
void sender_stop(struct sender *s);
/* Stops if needed, frees everything still held (its rows stay pending),
 * sets *s to NULL; accepts NULL. */
void sender_free(struct sender **s);

/* --- rate limits (the admin API and the channel_limits table) ------------- */

/* channel_id's effective rate for cls; *overridden says whether it is a
 * per-channel override. Returns 0 or -1 (bad argument). */
int sender_limit_get(struct sender *s, const char *channel_id, enum ratelimit_class cls,
                     struct ratelimit_rate *out, bool *overridden);
/* Overrides (rate) or resets (NULL) channel_id's rate for cls, as tenant_id
 * (the channel's owner) set it; a value equal to the current one changes
 * nothing (the bucket keeps its state). Returns 0, or -1 with errstr. */
int sender_limit_set(struct sender *s, const char *channel_id, const char *tenant_id,
                     enum ratelimit_class cls, const struct ratelimit_rate *rate, char *errstr,
                     size_t errcap);
/* Makes channel_id's limits and quota state tenant_id's, the channel's
 * owner as the `channels` topic says (decision 0011): when the owner
 * changed (a deleted channel id registered by another tenant), the former
 * owner's overrides are dropped (LINE's defaults apply until the new owner
 * sets its own) and the month's usage is read again for the new owner.
 * Cheap when nothing changed. The send path does it by itself; the admin
 * API calls it before it shows or changes limits. Any thread; takes mu. */
void sender_channel_owner(struct sender *s, const char *channel_id, const char *tenant_id);

/* One row of the channel_limits table: tenant_id's override. */
struct sender_limit_row {
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX];
    enum ratelimit_class cls;
    struct ratelimit_rate rate;
};
/* Makes the overrides equal to rows (the whole table): new and changed
 * rows are set, overrides without a row go back to the default. A row of
 * a tenant that does not own its channel (per the `channels` topic) counts
 * as no row; a row of a channel not in the topic yet is applied, and
 * dropped by sender_channel_owner if another tenant turns out to own it. */
void sender_limits_sync(struct sender *s, const struct sender_limit_row *rows, size_t n);

/* --- quota (the admin API) ------------------------------------------------ */

struct sender_quota_view {
    char timezone[QUOTA_ZONE_NAME_MAX];
    int64_t month_start, month_end; /* unix s */
    long long used;
    long long limit;    /* effective; QUOTA_NONE: unlimited */
    long long contract; /* QUOTA_NONE: none */
    long long line;     /* QUOTA_NONE: unknown or none */
    int warn_percent;
    bool exhausted; /* LINE said "monthly limit" this month */
};
/* This month's quota of channel_id (loading it if this replica has not
 * used the channel yet). Returns 0, -1 unknown channel, -2 database error. */
int sender_quota_get(struct sender *s, const char *channel_id, struct sender_quota_view *out);

#endif
