/* Monthly quota: per-channel month windows in the channel's zone (read by
 * common/civil_zone.c, once the dispatcher's own code; why not localtime_r:
 * see civil_zone.h), message costs, and the allowed / warn / exceeded
 * decision. Nothing here reads the process's TZ. */
#include "quota.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "errstr.h"

/* --- zones: common/civil_zone.h behind the dispatcher's own name ------------------------- */

/* A wrapper, so the dispatcher's callers and tests keep quota_zone_*. */
struct quota_zone {
    struct civil_zone *zone;
};

static struct quota_zone *zone_wrap(struct civil_zone *cz, char *errstr, size_t errcap)
{
    if (!cz)
        return NULL;
    struct quota_zone *z = calloc(1, sizeof *z);
    if (!z) {
        civil_zone_free(&cz);
        errstr_set(errstr, errcap, "out of memory");
        return NULL;
    }
    z->zone = cz;
    return z;
}

struct quota_zone *quota_zone_load(const char *name, const char *tzdir, char *errstr, size_t errcap)
{
    return zone_wrap(civil_zone_load(name, tzdir, errstr, errcap), errstr, errcap);
}

struct quota_zone *quota_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                                        char *errstr, size_t errcap)
{
    return zone_wrap(civil_zone_from_tzif(name, data, len, errstr, errcap), errstr, errcap);
}

struct quota_zone *quota_zone_from_posix(const char *tz, char *errstr, size_t errcap)
{
    return zone_wrap(civil_zone_from_posix(tz, errstr, errcap), errstr, errcap);
}

void quota_zone_free(struct quota_zone **z)
{
    if (!z || !*z)
        return;
    civil_zone_free(&(*z)->zone);
    free(*z);
    *z = NULL;
}

const char *quota_zone_name(const struct quota_zone *z)
{
    return z ? civil_zone_name(z->zone) : "";
}

int32_t quota_zone_offset(const struct quota_zone *z, int64_t t)
{
    return civil_zone_offset(z->zone, t);
}

/* --- month windows -------------------------------------------------------------------- */

static int64_t month_begin(const struct quota_zone *z, int64_t y, int m)
{
    while (m > 12) {
        m -= 12;
        y++;
    }
    while (m < 1) {
        m += 12;
        y--;
    }
    return civil_zone_first_instant(z->zone, civil_days_from_date(y, m, 1) * CIVIL_DAY_S);
}

void quota_month_window(const struct quota_zone *z, int64_t now, int64_t *start, int64_t *end)
{
    int64_t y;
    int m;
    civil_date_from_days(civil_day_of(now + quota_zone_offset(z, now)), &y, &m);
    int64_t s = month_begin(z, y, m), e = month_begin(z, y, m + 1);
    /* Membership is by the boundaries: a clock that fell back over midnight
     * can show last month's date after this month began. */
    if (now >= e) {
        s = e;
        e = month_begin(z, y, m + 2);
    } else if (now < s) {
        e = s;
        s = month_begin(z, y, m - 1);
    }
    *start = s;
    *end = e;
}

/* --- costs ------------------------------------------------------------------------------ */

int quota_cost(const Kizuna__V1__SendRequest *req, Kizuna__V1__SendKind sent_kind,
               long long audience, long long *cost, bool *up_to_remaining, char *errstr,
               size_t errcap)
{
    if (!req || !cost) {
        errstr_set(errstr, errcap, "bad argument");
        return -1;
    }
    if (up_to_remaining)
        *up_to_remaining = false;
    switch (sent_kind) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        *cost = 0;
        return 0;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH:
        *cost = 1;
        return 0;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
        *cost = (long long)req->n_recipients;
        return 0;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
        if (audience < 0) {
            errstr_set(errstr, errcap,
                       "broadcast: audience size unknown; pass an estimate rather than guess");
            return -1;
        }
        *cost = audience;
        return 0;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        break;
    default:
        errstr_set(errstr, errcap, "kind: %d has no quota cost", (int)sent_kind);
        return -1;
    }

    long long max = -1;
    bool upto = false;
    const char *lj = req->narrowcast_limit_json;
    if (lj && *lj) {
        json_error_t jerr;
        json_t *limit = json_loads(lj, 0, &jerr);
        if (!json_is_object(limit)) {
            json_decref(limit);
            errstr_set(errstr, errcap, "narrowcast_limit_json: not a JSON object");
            return -1;
        }
        json_t *jm = json_object_get(limit, "max");
        json_t *ju = json_object_get(limit, "upToRemainingQuota");
        if (jm && (!json_is_integer(jm) || json_integer_value(jm) < 1)) {
            json_decref(limit);
            errstr_set(errstr, errcap, "narrowcast_limit_json: max must be an integer >= 1");
            return -1;
        }
        if (ju && !json_is_boolean(ju)) {
            json_decref(limit);
            errstr_set(errstr, errcap,
                       "narrowcast_limit_json: upToRemainingQuota must be a boolean");
            return -1;
        }
        if (jm)
            max = (long long)json_integer_value(jm);
        upto = ju && json_is_true(ju);
        json_decref(limit);
    }
    if (audience < 0 && max < 0) {
        errstr_set(errstr, errcap,
                   "narrowcast: audience size unknown and no limit.max; pass an estimate");
        return -1;
    }
    *cost = audience < 0 ? max : (max >= 0 && max < audience ? max : audience);
    if (up_to_remaining)
        *up_to_remaining = upto;
    return 0;
}

/* --- decisions --------------------------------------------------------------------------- */

int quota_limits_check(const struct quota_limits *lim, char *errstr, size_t errcap)
{
    if (!lim) {
        errstr_set(errstr, errcap, "limits: missing");
        return -1;
    }
    if (lim->contract < QUOTA_NONE) {
        errstr_set(errstr, errcap, "contract: %lld, must be >= 0 (or -1 for none)", lim->contract);
        return -1;
    }
    if (lim->line < QUOTA_NONE) {
        errstr_set(errstr, errcap, "line: %lld, must be >= 0 (or -1 for unknown)", lim->line);
        return -1;
    }
    if (lim->warn_percent < 0 || lim->warn_percent > 100) {
        errstr_set(errstr, errcap, "warn_percent: %d, must be 1..100 (0: default %d)",
                   lim->warn_percent, QUOTA_WARN_PERCENT_DEFAULT);
        return -1;
    }
    return 0;
}

long long quota_effective_limit(const struct quota_state *q)
{
    long long c = q->limits.contract, l = q->limits.line;
    if (c < 0)
        return l;
    if (l < 0)
        return c;
    return c < l ? c : l;
}

static void quota_roll(struct quota_state *q, int64_t now)
{
    if (now >= q->month_start && now < q->month_end)
        return;
    quota_month_window(q->zone, now, &q->month_start, &q->month_end);
    q->used = 0;
    q->warned = false;
    q->line_exhausted = false;
}

int quota_state_init(struct quota_state *q, const struct quota_zone *zone,
                     const struct quota_limits *lim, long long used, int64_t now, char *errstr,
                     size_t errcap)
{
    if (!q || !zone) {
        errstr_set(errstr, errcap, "bad argument: state or zone missing");
        return -1;
    }
    if (quota_limits_check(lim, errstr, errcap) != 0)
        return -1;
    if (used < 0) {
        errstr_set(errstr, errcap, "used: %lld, must be >= 0", used);
        return -1;
    }
    memset(q, 0, sizeof *q);
    q->zone = zone;
    q->limits = *lim;
    quota_month_window(zone, now, &q->month_start, &q->month_end);
    q->used = used;
    return 0;
}

int quota_set_limits(struct quota_state *q, const struct quota_limits *lim, char *errstr,
                     size_t errcap)
{
    if (!q) {
        errstr_set(errstr, errcap, "bad argument: state missing");
        return -1;
    }
    if (quota_limits_check(lim, errstr, errcap) != 0)
        return -1;
    long long before = quota_effective_limit(q);
    q->limits = *lim;
    long long after = quota_effective_limit(q);
    if (after < 0 || (before >= 0 && after > before))
        q->line_exhausted = false;
    return 0;
}

/* True when usage reached the warning threshold and it has not fired yet. */
static bool warn_due(struct quota_state *q)
{
    long long limit = quota_effective_limit(q);
    if (q->warned || limit < 0)
        return false;
    int pct = q->limits.warn_percent ? q->limits.warn_percent : QUOTA_WARN_PERCENT_DEFAULT;
    /* used / limit >= pct / 100, i.e. used >= ceil(limit * pct / 100), with
     * no product that can overflow: LINE's answers set limit and used, and
     * may hold any integer up to 2^63 - 1. */
    long long threshold = limit / 100 * pct + (limit % 100 * pct + 99) / 100;
    if (q->used < threshold)
        return false;
    q->warned = true;
    return true;
}

int quota_reserve(struct quota_state *q, long long cost, bool up_to_remaining, int64_t now,
                  long long *reserved, int64_t *month)
{
    if (!q || cost < 0)
        return -1;
    quota_roll(q, now);
    if (reserved)
        *reserved = 0;
    if (month)
        *month = q->month_start;
    if (cost == 0)
        return QUOTA_ALLOWED;
    if (q->line_exhausted)
        return QUOTA_EXCEEDED;
    long long limit = quota_effective_limit(q);
    if (limit >= 0) {
        long long left = limit > q->used ? limit - q->used : 0;
        if (cost > left) {
            if (!up_to_remaining || left == 0)
                return QUOTA_EXCEEDED;
            cost = left;
        }
    }
    /* Without a limit, LINE's count may have left no room: the count stops
     * at its largest value and only what fits is reserved. */
    if (cost > LLONG_MAX - q->used)
        cost = LLONG_MAX - q->used;
    q->used += cost;
    if (reserved)
        *reserved = cost;
    return warn_due(q) ? QUOTA_WARN : QUOTA_ALLOWED;
}

void quota_release(struct quota_state *q, long long reserved, int64_t month)
{
    if (!q || reserved <= 0 || month != q->month_start)
        return;
    q->used = reserved < q->used ? q->used - reserved : 0;
}

int quota_sync_usage(struct quota_state *q, long long line_total, int64_t now)
{
    if (!q || line_total < 0)
        return -1;
    quota_roll(q, now);
    if (line_total > q->used)
        q->used = line_total;
    return warn_due(q) ? QUOTA_WARN : QUOTA_ALLOWED;
}

void quota_mark_exhausted(struct quota_state *q, int64_t now)
{
    if (!q)
        return;
    quota_roll(q, now);
    q->line_exhausted = true;
}
