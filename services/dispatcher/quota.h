/* Monthly message quota per channel: how many messages a request costs, the
 * month window in the channel's IANA time zone, and the decision "allowed",
 * "allowed, and the warning threshold was just crossed", or "quota
 * exceeded" (the request is then not attempted).
 *
 * Time zones come from the system tz database through common/civil_zone.h
 * (never the process's TZ: see there why); struct quota_zone wraps one
 * under the dispatcher's name, immutable once loaded and safe from any
 * thread. A month starts at the first instant whose local time is on or
 * after 00:00 on the 1st: if DST skips midnight, that is the first instant
 * after the gap; if a clock falls back over midnight, the first occurrence.
 *
 * Counting (quota_cost). LINE counts messages per recipient:
 *   reply: free (0); push: 1; multicast: its recipients;
 *   broadcast: every friend who has not blocked the account, which only LINE
 *     knows exactly: the caller passes an estimate (`audience`, e.g. LINE's
 *     follower insight, followers - blocks, or segmentation's count of
 *     unblocked friends). Refused when unknown: guessing could pass the quota;
 *   narrowcast: min(audience, limit.max) (the audience estimate is the upper
 *     bound, a filter can only narrow it); with limit.upToRemainingQuota LINE
 *     itself stops at the quota, so it is allowed up to what is left;
 *   profile and rich-menu calls: 0 (not messages).
 * Estimates are corrected from LINE's own count (quota_sync_usage, from GET
 * /v2/bot/message/quota/consumption), never downwards.
 *
 * The effective limit is min(contract quota, LINE's quota endpoint value)
 * over the ones that are known. Limits and usage are plain data in struct
 * quota_state; it is not locked: one owner, or the caller's lock. */
#ifndef KIZUNA_DISPATCHER_QUOTA_H
#define KIZUNA_DISPATCHER_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna/v1/send.pb-c.h"

#define QUOTA_ZONE_NAME_MAX 64
#define QUOTA_TZDIR_DEFAULT "/usr/share/zoneinfo"
#define QUOTA_WARN_PERCENT_DEFAULT 80
#define QUOTA_NONE (-1LL) /* a limit that is not set, or unlimited */

/* A time zone: immutable once loaded, shareable between threads. */
struct quota_zone;

/* Loads an IANA zone ("Asia/Tokyo") from tzdir (NULL: /usr/share/zoneinfo).
 * "UTC" and "Etc/UTC" work without the database. Returns NULL with the reason
 * in errstr for a malformed name, an unknown zone or a damaged file. */
struct quota_zone *quota_zone_load(const char *name, const char *tzdir, char *errstr,
                                   size_t errcap);
/* A zone from TZif bytes (what quota_zone_load reads); name is copied. */
struct quota_zone *quota_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                                        char *errstr, size_t errcap);
/* A zone from a POSIX TZ rule string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3". */
struct quota_zone *quota_zone_from_posix(const char *tz, char *errstr, size_t errcap);
/* Frees the zone and sets *z to NULL; accepts NULL and *z == NULL. */
void quota_zone_free(struct quota_zone **z);
const char *quota_zone_name(const struct quota_zone *z);

/* The UTC offset (seconds east) in effect at unix time t. */
int32_t quota_zone_offset(const struct quota_zone *z, int64_t t);
/* The local month holding unix time now: [*start, *end) in unix seconds. */
void quota_month_window(const struct quota_zone *z, int64_t now, int64_t *start, int64_t *end);

/* How many messages `req` costs if sent as `sent_kind` (a reply that falls
 * back is costed as PUSH). audience: the estimate for broadcast and
 * narrowcast, < 0 if unknown. *up_to_remaining (may be NULL) is set for a
 * narrowcast with limit.upToRemainingQuota. Returns 0, or -1 with errstr. */
int quota_cost(const Kizuna__V1__SendRequest *req, Kizuna__V1__SendKind sent_kind,
               long long audience, long long *cost, bool *up_to_remaining, char *errstr,
               size_t errcap);

struct quota_limits {
    long long contract; /* the plan's monthly messages; QUOTA_NONE: no cap */
    long long line;     /* LINE's GET /v2/bot/message/quota; QUOTA_NONE: unknown or "none" */
    int warn_percent;   /* 1..100; 0 means QUOTA_WARN_PERCENT_DEFAULT */
};

/* 0 if usable, else -1 with the reason (negative limits, percent range). */
int quota_limits_check(const struct quota_limits *lim, char *errstr, size_t errcap);

/* One channel's month. Plain data; fields are read-only to callers. */
struct quota_state {
    const struct quota_zone *zone; /* borrowed: must outlive the state */
    struct quota_limits limits;
    int64_t month_start, month_end; /* unix s, [start, end) */
    long long used;                 /* messages counted this month */
    bool warned;                    /* the threshold warning fired this month */
    bool line_exhausted;            /* LINE said "monthly limit" this month */
};

enum quota_decision {
    QUOTA_ALLOWED = 0,  /* go; the cost is counted */
    QUOTA_WARN = 1,     /* go, counted, and usage just crossed the threshold */
    QUOTA_EXCEEDED = 2, /* do not send: nothing is counted */
};

/* Starts a channel's month at now (unix s) with `used` already counted (e.g.
 * from the database). Returns 0, or -1 with errstr. */
int quota_state_init(struct quota_state *q, const struct quota_zone *zone,
                     const struct quota_limits *lim, long long used, int64_t now, char *errstr,
                     size_t errcap);
/* Replaces the limits (a plan change, or LINE's quota endpoint answered).
 * A raised limit lifts line_exhausted. Returns 0, or -1 with errstr. */
int quota_set_limits(struct quota_state *q, const struct quota_limits *lim, char *errstr,
                     size_t errcap);
/* min(contract, line) over the known ones; QUOTA_NONE for no limit. */
long long quota_effective_limit(const struct quota_state *q);

/* Decides a send of `cost` messages at now (unix s), turning the month over
 * first if it ended. With up_to_remaining (narrowcast upToRemainingQuota) a
 * cost above what is left is cut to what is left. *reserved (may be NULL)
 * gets what was counted, *month (may be NULL) the month it was counted in,
 * for quota_release. A cost of 0 is always QUOTA_ALLOWED. Returns the
 * decision, or -1 for a bad argument (negative cost). */
int quota_reserve(struct quota_state *q, long long cost, bool up_to_remaining, int64_t now,
                  long long *reserved, int64_t *month);
/* Gives back a reservation that LINE certainly did not deliver (a final 4xx,
 * a request refused before sending). Not for timeouts: those may have been
 * delivered. Ignored if `month` is no longer the current month. */
void quota_release(struct quota_state *q, long long reserved, int64_t month);
/* LINE's count of this month's messages (quota/consumption): usage becomes
 * at least that. Returns QUOTA_WARN if that crossed the threshold, else
 * QUOTA_ALLOWED; -1 for a negative count. */
int quota_sync_usage(struct quota_state *q, long long line_total, int64_t now);
/* LINE answered 429 "You have reached your monthly limit.": refuse every
 * costed send until the month turns or the limits are raised. */
void quota_mark_exhausted(struct quota_state *q, int64_t now);

#endif
