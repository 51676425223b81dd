/* Per-channel, per-endpoint rate limits for calls to LINE, as pure functions
 * of a caller-given monotonic clock (nanoseconds), so tests need no sleeping.
 *
 * The guarantee: for a rate of `limit` requests per `period_s`, no window of
 * period_s seconds (half-open, sliding, not aligned slots) ever holds more
 * than `limit` requests that got "go". A classic token bucket with
 * burst = limit and refill = limit/period can let 2 x limit through a
 * window that straddles a refill; here the bucket is a GCRA (virtual
 * scheduling) whose refill is lowered by the burst: with burst B the
 * emission interval is T = ceil(period / (limit - B + 1)) and the tolerance
 * (B - 1) * T. Any limit + 1 consecutive "go"s are then at least
 * (limit - B + 1) * T >= period apart. The default burst is 1% of the limit
 * (at least 1), so the sustained rate is limit - B + 1, >= 99% of the limit
 * (60/hour: exactly 60/hour with burst 1). The burst lets a caller that woke
 * up late catch up without losing throughput.
 *
 * A margin M widens the window the guarantee covers: no window of
 * period_s + M holds more than `limit` "go"s (T is computed over period +
 * M). What LINE (or the simulator) measures is arrivals, and the time from
 * "go" to arrival varies (scheduling, the network); as long as it varies by
 * less than M, no window of period_s of *arrivals* holds more than `limit`
 * either. The cost is a sustained rate lower by the factor
 * period / (period + M): 0.5 % for 5 ms at one second, nothing measurable
 * at an hour. docs/decisions/0004-rate-limit-arrival-margin.md.
 *
 * The table (struct ratelimit) adds a window log for limits up to
 * RATELIMIT_WINDOW_LOG_MAX: the times of the last `limit` "go"s, and a
 * request goes only when the one `limit` places back is period + margin
 * old. The bound is then exact by construction, so the bucket no longer
 * has to pay for its burst: T = (period + margin) / limit, and the
 * sustained rate is limit per (period + margin) (2,000/s with 10 ms: 1,980)
 * instead of limit - burst + 1. The burst still lets a late caller catch
 * up, within the log's bound. Memory: 8 bytes per unit of limit per class
 * in use (16 KB for 2,000/s).
 *
 * Classes follow LINE's rule that each endpoint (path and method) has its own
 * per-channel limit. Defaults (LINE's Messaging API reference, "Rate
 * limits"): broadcast and narrowcast 60/hour; every endpoint used here that
 * the table does not list is "other endpoints", 2,000/s: reply, push,
 * profile, per-user and bulk rich-menu link/unlink, quota. Multicast is
 * 200/s: older editions of LINE's table listed it so, the current one falls
 * back to 2,000/s, and Kizuna keeps the conservative figure (issue 4).
 * Every rate can be overridden per channel.
 *
 * Not thread-safe: one owner per `struct ratelimit` (send.requests is keyed
 * by channel, so one partition owner holds a channel's limits), or the
 * caller's lock around every call. */
#ifndef KIZUNA_DISPATCHER_RATELIMIT_H
#define KIZUNA_DISPATCHER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_NS_PER_S 1000000000LL
#define RATELIMIT_LIMIT_MAX 10000000L        /* per period: far above LINE's */
#define RATELIMIT_PERIOD_MAX 86400L          /* one day */
#define RATELIMIT_MARGIN_MAX_NS 1000000000LL /* one second */
#define RATELIMIT_WINDOW_LOG_MAX 20000L      /* limits up to this keep a window log */

/* One LINE endpoint (path and method) the dispatcher calls. */
enum ratelimit_class {
    RATELIMIT_REPLY = 0,            /* POST /v2/bot/message/reply */
    RATELIMIT_PUSH,                 /* POST /v2/bot/message/push */
    RATELIMIT_MULTICAST,            /* POST /v2/bot/message/multicast */
    RATELIMIT_BROADCAST,            /* POST /v2/bot/message/broadcast */
    RATELIMIT_NARROWCAST,           /* POST /v2/bot/message/narrowcast */
    RATELIMIT_NARROWCAST_PROGRESS,  /* GET /v2/bot/message/progress/narrowcast */
    RATELIMIT_QUOTA,                /* GET /v2/bot/message/quota */
    RATELIMIT_QUOTA_CONSUMPTION,    /* GET /v2/bot/message/quota/consumption */
    RATELIMIT_PROFILE,              /* GET /v2/bot/profile/{userId} */
    RATELIMIT_RICHMENU_LINK,        /* POST /v2/bot/user/{userId}/richmenu/{richMenuId} */
    RATELIMIT_RICHMENU_UNLINK,      /* DELETE /v2/bot/user/{userId}/richmenu */
    RATELIMIT_RICHMENU_BULK_LINK,   /* POST /v2/bot/richmenu/bulk/link */
    RATELIMIT_RICHMENU_BULK_UNLINK, /* POST /v2/bot/richmenu/bulk/unlink */
    RATELIMIT_CLASS_COUNT
};

/* `limit` requests per `period_s` seconds; limit 0 means unlimited. burst 0
 * means the default (1% of limit, at least 1); otherwise 1..limit, and the
 * sustained rate is limit - burst + 1 per period. */
struct ratelimit_rate {
    long limit;
    long period_s;
    long burst;
};

/* Name as used in config and the admin API ("push", "richmenu_bulk_link"...);
 * "?" for an out-of-range class. */
const char *ratelimit_class_name(enum ratelimit_class cls);
/* The class for a name, or -1 if unknown. */
int ratelimit_class_parse(const char *name);
/* LINE's default rate for a class (burst 0: the default burst). */
struct ratelimit_rate ratelimit_default(enum ratelimit_class cls);
/* 0 if the rate is usable, else -1 with the reason in errstr. */
int ratelimit_rate_check(const struct ratelimit_rate *rate, char *errstr, size_t errcap);

/* One GCRA bucket. Plain data: embed it, copy it, zero it. */
struct ratelimit_bucket {
    int64_t interval_ns;  /* T; 0 means unlimited */
    int64_t tolerance_ns; /* (burst - 1) * T */
    int64_t tat_ns;       /* theoretical arrival time of the next request */
    bool started;         /* false: full (no request seen yet) */
};

/* Sets a bucket to a (checked) rate, full. Returns 0, or -1 with errstr. */
int ratelimit_bucket_init(struct ratelimit_bucket *b, const struct ratelimit_rate *rate,
                          char *errstr, size_t errcap);
/* The same with a margin (0..RATELIMIT_MARGIN_MAX_NS): no window of
 * period_s + margin_ns holds more than limit "go"s. */
int ratelimit_bucket_init_margin(struct ratelimit_bucket *b, const struct ratelimit_rate *rate,
                                 int64_t margin_ns, char *errstr, size_t errcap);
/* Asks to send one request at now_ns. Returns 0 ("go": the request is
 * counted), or the number of nanoseconds (> 0) to wait before asking again
 * (nothing is counted). */
int64_t ratelimit_bucket_take(struct ratelimit_bucket *b, int64_t now_ns);

/* The per-channel table. Channels appear on first use with the defaults. */
struct ratelimit;

/* A new table. defaults: RATELIMIT_CLASS_COUNT rates replacing LINE's
 * defaults for every channel, or NULL for LINE's. Returns NULL with errstr if
 * a default is invalid or memory runs out. */
struct ratelimit *ratelimit_new(const struct ratelimit_rate *defaults, char *errstr, size_t errcap);
/* Frees the table and sets *rl to NULL; accepts NULL and *rl == NULL. */
void ratelimit_free(struct ratelimit **rl);

/* Asks to send one request on (channel_id, cls) at now_ns: 0 is "go" (the
 * request is counted), > 0 is "wait that many ns and ask again", < 0 an
 * error (-1 bad argument, -2 out of memory). channel_id is copied. */
int64_t ratelimit_take(struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                       int64_t now_ns);

/* Overrides a channel's rate for one class (rate NULL: back to the table's
 * default). The bucket restarts empty: no burst credit, and no request goes
 * before the old schedule allowed, so a lowered limit holds at once.
 * Returns 0, or -1 with errstr (bad rate or argument), -2 out of memory. */
int ratelimit_set(struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                  const struct ratelimit_rate *rate, int64_t now_ns, char *errstr, size_t errcap);

/* Sets the margin (see above; 0 at first) of the buckets made from now on:
 * channels seen for the first time and every ratelimit_set. Call it before
 * the first take. Returns 0, or -1 with errstr when margin_ns is outside
 * 0..RATELIMIT_MARGIN_MAX_NS. */
int ratelimit_set_margin(struct ratelimit *rl, int64_t margin_ns, char *errstr, size_t errcap);

/* The effective rate of (channel_id, cls) into *out; *overridden (may be
 * NULL) says whether it is a per-channel override. Returns 0, or -1 for a
 * bad argument. A channel never seen reads as the defaults. */
int ratelimit_get(const struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                  struct ratelimit_rate *out, bool *overridden);

/* Forgets a channel (overrides and buckets). Returns 0, or -1 if unknown. */
int ratelimit_remove(struct ratelimit *rl, const char *channel_id);

#endif
