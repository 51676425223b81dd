/* Token buckets (GCRA) per channel and LINE endpoint. Why the interval is
 * derived from limit - burst + 1 rather than limit: see ratelimit.h. All
 * arithmetic is in integer nanoseconds, so the bound is exact, not "about".
 * Channels live in a sorted array of pointers: lookups are a binary search,
 * inserts (a new channel) are rare. */
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"

/* The times of the last `limit` "go"s of one bucket (a ring), so that a
 * request goes only if the go `limit` places back is at least period +
 * margin old: the window bound holds exactly, and the bucket's burst no
 * longer has to be paid for in sustained rate. Allocated on first use. */
struct rl_log {
    int64_t *t;
    long cap, n, head; /* head: the oldest */
    int64_t window_ns; /* period + margin */
};

struct rl_channel {
    char *id;
    struct ratelimit_rate rate[RATELIMIT_CLASS_COUNT];
    bool overridden[RATELIMIT_CLASS_COUNT];
    struct ratelimit_bucket bucket[RATELIMIT_CLASS_COUNT];
    struct rl_log log[RATELIMIT_CLASS_COUNT];
};

struct ratelimit {
    struct ratelimit_rate defaults[RATELIMIT_CLASS_COUNT];
    int64_t margin_ns;      /* every bucket's: see ratelimit_set_margin */
    struct rl_channel **ch; /* sorted by id */
    size_t n, cap;
};

static const char *const class_names[RATELIMIT_CLASS_COUNT] = {
    [RATELIMIT_REPLY] = "reply",
    [RATELIMIT_PUSH] = "push",
    [RATELIMIT_MULTICAST] = "multicast",
    [RATELIMIT_BROADCAST] = "broadcast",
    [RATELIMIT_NARROWCAST] = "narrowcast",
    [RATELIMIT_NARROWCAST_PROGRESS] = "narrowcast_progress",
    [RATELIMIT_QUOTA] = "quota",
    [RATELIMIT_QUOTA_CONSUMPTION] = "quota_consumption",
    [RATELIMIT_PROFILE] = "profile",
    [RATELIMIT_RICHMENU_LINK] = "richmenu_link",
    [RATELIMIT_RICHMENU_UNLINK] = "richmenu_unlink",
    [RATELIMIT_RICHMENU_BULK_LINK] = "richmenu_bulk_link",
    [RATELIMIT_RICHMENU_BULK_UNLINK] = "richmenu_bulk_unlink",
};

static bool class_valid(enum ratelimit_class cls)
{
    return (int)cls >= 0 && cls < RATELIMIT_CLASS_COUNT;
}

const char *ratelimit_class_name(enum ratelimit_class cls)
{
    return class_valid(cls) ? class_names[cls] : "?";
}

int ratelimit_class_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++)
        if (strcmp(name, class_names[i]) == 0)
            return i;
    return -1;
}

struct ratelimit_rate ratelimit_default(enum ratelimit_class cls)
{
    struct ratelimit_rate r = {2000, 1, 0};
    switch (cls) {
    case RATELIMIT_MULTICAST:
        r.limit = 200;
        break;
    case RATELIMIT_BROADCAST:
    case RATELIMIT_NARROWCAST:
        r.limit = 60;
        r.period_s = 3600;
        break;
    default:
        break;
    }
    return r;
}

int ratelimit_rate_check(const struct ratelimit_rate *rate, char *errstr, size_t errcap)
{
    if (!rate) {
        errstr_set(errstr, errcap, "rate: missing");
        return -1;
    }
    if (rate->limit < 0 || rate->limit > RATELIMIT_LIMIT_MAX) {
        errstr_set(errstr, errcap, "limit: %ld is outside 0..%ld (0 means unlimited)", rate->limit,
                   RATELIMIT_LIMIT_MAX);
        return -1;
    }
    if (rate->period_s < 1 || rate->period_s > RATELIMIT_PERIOD_MAX) {
        errstr_set(errstr, errcap, "period_s: %ld is outside 1..%ld", rate->period_s,
                   RATELIMIT_PERIOD_MAX);
        return -1;
    }
    if (rate->burst < 0 || (rate->limit > 0 && rate->burst > rate->limit)) {
        errstr_set(errstr, errcap, "burst: %ld is outside 0..limit (%ld); 0 means the default",
                   rate->burst, rate->limit);
        return -1;
    }
    return 0;
}

static long burst_of(const struct ratelimit_rate *rate)
{
    long burst = rate->burst ? rate->burst : rate->limit / 100;
    return burst < 1 ? 1 : burst;
}

/* T spreads `slots` requests over period + margin (rounded up: never
 * faster), and the tolerance lets burst - 1 go early. */
static int bucket_init(struct ratelimit_bucket *b, const struct ratelimit_rate *rate,
                       int64_t margin_ns, bool windowed, char *errstr, size_t errcap)
{
    if (!b || ratelimit_rate_check(rate, errstr, errcap) != 0)
        return -1;
    if (margin_ns < 0 || margin_ns > RATELIMIT_MARGIN_MAX_NS) {
        errstr_set(errstr, errcap, "margin: %lld ns is outside 0..%lld", (long long)margin_ns,
                   (long long)RATELIMIT_MARGIN_MAX_NS);
        return -1;
    }
    memset(b, 0, sizeof *b);
    if (rate->limit == 0)
        return 0;
    long burst = burst_of(rate);
    /* Alone, limit + 1 "go"s must span >= (limit - burst + 1) * T >= period
     * + margin. With the window log enforcing that bound, T only sets the
     * pace: limit per period + margin. */
    int64_t span_ns = (int64_t)rate->period_s * RATELIMIT_NS_PER_S + margin_ns;
    int64_t slots = windowed ? (int64_t)rate->limit : (int64_t)(rate->limit - burst + 1);
    b->interval_ns = (span_ns + slots - 1) / slots;
    b->tolerance_ns = (int64_t)(burst - 1) * b->interval_ns;
    return 0;
}

int ratelimit_bucket_init_margin(struct ratelimit_bucket *b, const struct ratelimit_rate *rate,
                                 int64_t margin_ns, char *errstr, size_t errcap)
{
    return bucket_init(b, rate, margin_ns, false, errstr, errcap);
}

int ratelimit_bucket_init(struct ratelimit_bucket *b, const struct ratelimit_rate *rate,
                          char *errstr, size_t errcap)
{
    return ratelimit_bucket_init_margin(b, rate, 0, errstr, errcap);
}

int64_t ratelimit_bucket_take(struct ratelimit_bucket *b, int64_t now_ns)
{
    if (b->interval_ns == 0)
        return 0;
    int64_t tat = b->started && b->tat_ns > now_ns ? b->tat_ns : now_ns;
    int64_t allow_at = tat - b->tolerance_ns;
    if (now_ns < allow_at)
        return allow_at - now_ns;
    b->tat_ns = tat + b->interval_ns;
    b->started = true;
    return 0;
}

/* --- the channel table ----------------------------------------------------- */

struct ratelimit *ratelimit_new(const struct ratelimit_rate *defaults, char *errstr, size_t errcap)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) {
        errstr_set(errstr, errcap, "out of memory");
        return NULL;
    }
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++) {
        rl->defaults[i] = defaults ? defaults[i] : ratelimit_default((enum ratelimit_class)i);
        char why[160];
        if (ratelimit_rate_check(&rl->defaults[i], why, sizeof why) != 0) {
            if (errstr && errcap > 0)
                snprintf(errstr, errcap, "default rate for %s: %s", class_names[i], why);
            free(rl);
            return NULL;
        }
    }
    return rl;
}

static void channel_free(struct rl_channel *c)
{
    if (c) {
        for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++)
            free(c->log[i].t);
        free(c->id);
        free(c);
    }
}

static bool windowed(const struct ratelimit_rate *rate)
{
    return rate->limit > 0 && rate->limit <= RATELIMIT_WINDOW_LOG_MAX;
}

/* Sizes a log for rate, keeping the most recent go's that fit. Returns 0,
 * or -2 when memory runs out (the log is then left as it was). */
static int log_resize(struct rl_log *lg, const struct ratelimit_rate *rate, int64_t margin_ns)
{
    long cap = windowed(rate) ? rate->limit : 0;
    int64_t *t = NULL;
    if (cap > 0 && lg->t) {
        t = malloc((size_t)cap * sizeof *t);
        if (!t)
            return -2;
    }
    long keep = lg->n < cap ? lg->n : cap, n = 0;
    for (long i = lg->n - keep; t && i < lg->n; i++)
        t[n++] = lg->t[(lg->head + i) % lg->cap];
    free(lg->t);
    lg->t = t; /* NULL until first use when there was no log yet */
    lg->cap = cap;
    lg->n = t ? n : 0;
    lg->head = 0;
    lg->window_ns = (int64_t)rate->period_s * RATELIMIT_NS_PER_S + margin_ns;
    return 0;
}

/* 0 if the log lets a request go at now_ns, else ns to wait. */
static int64_t log_wait(const struct rl_log *lg, int64_t now_ns)
{
    if (lg->cap == 0 || lg->n < lg->cap)
        return 0;
    int64_t free_at = lg->t[lg->head] + lg->window_ns;
    return now_ns >= free_at ? 0 : free_at - now_ns;
}

static int log_record(struct rl_log *lg, int64_t now_ns)
{
    if (lg->cap == 0)
        return 0;
    if (!lg->t) {
        lg->t = malloc((size_t)lg->cap * sizeof *lg->t);
        if (!lg->t)
            return -2;
        lg->n = lg->head = 0;
    }
    if (lg->n < lg->cap) {
        lg->t[(lg->head + lg->n) % lg->cap] = now_ns;
        lg->n++;
    } else {
        lg->t[lg->head] = now_ns;
        lg->head = (lg->head + 1) % lg->cap;
    }
    return 0;
}

void ratelimit_free(struct ratelimit **rl)
{
    if (!rl || !*rl)
        return;
    for (size_t i = 0; i < (*rl)->n; i++)
        channel_free((*rl)->ch[i]);
    free((*rl)->ch);
    free(*rl);
    *rl = NULL;
}

/* Index of channel_id, or -(insertion point) - 1 when absent. */
static long channel_find(const struct ratelimit *rl, const char *channel_id)
{
    size_t lo = 0, hi = rl->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rl->ch[mid]->id, channel_id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* The channel, created with the defaults if new; NULL when out of memory. */
static struct rl_channel *channel_get(struct ratelimit *rl, const char *channel_id)
{
    long at = channel_find(rl, channel_id);
    if (at >= 0)
        return rl->ch[at];
    size_t pos = (size_t)(-at - 1);
    if (rl->n == rl->cap) {
        size_t ncap = rl->cap ? rl->cap * 2 : 16;
        struct rl_channel **nch = realloc(rl->ch, ncap * sizeof *nch);
        if (!nch)
            return NULL;
        rl->ch = nch;
        rl->cap = ncap;
    }
    struct rl_channel *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t idlen = strlen(channel_id);
    c->id = malloc(idlen + 1);
    if (!c->id) {
        free(c);
        return NULL;
    }
    memcpy(c->id, channel_id, idlen + 1);
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++) {
        c->rate[i] = rl->defaults[i];
        /* The defaults and the margin were checked: this cannot fail. */
        bucket_init(&c->bucket[i], &c->rate[i], rl->margin_ns, windowed(&c->rate[i]), NULL, 0);
        log_resize(&c->log[i], &c->rate[i], rl->margin_ns); /* no log yet: cannot fail */
    }
    memmove(rl->ch + pos + 1, rl->ch + pos, (rl->n - pos) * sizeof *rl->ch);
    rl->ch[pos] = c;
    rl->n++;
    return c;
}

int64_t ratelimit_take(struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                       int64_t now_ns)
{
    if (!rl || !channel_id || !class_valid(cls))
        return -1;
    struct rl_channel *c = channel_get(rl, channel_id);
    if (!c)
        return -2;
    struct rl_log *lg = &c->log[cls];
    int64_t w = log_wait(lg, now_ns);
    if (w > 0)
        return w;
    struct ratelimit_bucket saved = c->bucket[cls];
    w = ratelimit_bucket_take(&c->bucket[cls], now_ns);
    if (w == 0 && log_record(lg, now_ns) != 0) {
        c->bucket[cls] = saved; /* not counted: nothing went */
        return -2;
    }
    return w;
}

int ratelimit_set(struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                  const struct ratelimit_rate *rate, int64_t now_ns, char *errstr, size_t errcap)
{
    if (!rl || !channel_id || !class_valid(cls)) {
        errstr_set(errstr, errcap, "bad argument: channel or class (%d)", (int)cls);
        return -1;
    }
    const struct ratelimit_rate *want = rate ? rate : &rl->defaults[cls];
    struct ratelimit_bucket fresh;
    if (bucket_init(&fresh, want, rl->margin_ns, windowed(want), errstr, errcap) != 0)
        return -1;
    struct rl_channel *c = channel_get(rl, channel_id);
    if (!c || log_resize(&c->log[cls], want, rl->margin_ns) != 0) {
        errstr_set(errstr, errcap, "out of memory");
        return -2;
    }
    struct ratelimit_bucket *old = &c->bucket[cls];
    if (old->started && fresh.interval_ns > 0) {
        /* Empty: the next "go" comes no sooner than now and the old TAT. */
        int64_t base = old->tat_ns > now_ns ? old->tat_ns : now_ns;
        fresh.tat_ns = base + fresh.tolerance_ns;
        fresh.started = true;
    }
    c->bucket[cls] = fresh;
    c->rate[cls] = *want;
    c->overridden[cls] = rate != NULL;
    return 0;
}

int ratelimit_set_margin(struct ratelimit *rl, int64_t margin_ns, char *errstr, size_t errcap)
{
    if (!rl) {
        errstr_set(errstr, errcap, "bad argument");
        return -1;
    }
    struct ratelimit_rate probe = {1, 1, 1};
    struct ratelimit_bucket b;
    if (ratelimit_bucket_init_margin(&b, &probe, margin_ns, errstr, errcap) != 0)
        return -1;
    rl->margin_ns = margin_ns;
    return 0;
}

int ratelimit_get(const struct ratelimit *rl, const char *channel_id, enum ratelimit_class cls,
                  struct ratelimit_rate *out, bool *overridden)
{
    if (!rl || !channel_id || !class_valid(cls) || !out)
        return -1;
    long at = channel_find(rl, channel_id);
    *out = at >= 0 ? rl->ch[at]->rate[cls] : rl->defaults[cls];
    if (overridden)
        *overridden = at >= 0 && rl->ch[at]->overridden[cls];
    return 0;
}

int ratelimit_remove(struct ratelimit *rl, const char *channel_id)
{
    if (!rl || !channel_id)
        return -1;
    long at = channel_find(rl, channel_id);
    if (at < 0)
        return -1;
    channel_free(rl->ch[at]);
    memmove(rl->ch + at, rl->ch + at + 1, (rl->n - (size_t)at - 1) * sizeof *rl->ch);
    rl->n--;
    return 0;
}
