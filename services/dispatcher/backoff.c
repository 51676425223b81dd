/* Retry timing for calls to LINE: full-jitter exponential backoff with a
 * Retry-After floor and a deadline, and the RFC 9110 parsers for
 * Retry-After. Dates are converted with our own civil-calendar arithmetic
 * (civil_time.c), not timegm/strptime, so nothing here depends on the locale or TZ. */
#include "backoff.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "civil_time.h"
#include "errstr.h"

/* RFC 9110 section 1.2.2: delta-seconds beyond this are read as this. */
#define DELTA_SECONDS_MAX 2147483648LL

struct backoff_policy backoff_policy_default(void)
{
    struct backoff_policy p = {BACKOFF_BASE_DEFAULT_NS, BACKOFF_CAP_DEFAULT_NS,
                               BACKOFF_DEADLINE_DEFAULT_NS};
    return p;
}

int backoff_policy_check(const struct backoff_policy *p, char *errstr, size_t errcap)
{
    if (!p) {
        errstr_set(errstr, errcap, "policy: missing");
        return -1;
    }
    if (p->base_ns <= 0) {
        errstr_set(errstr, errcap, "base: %lld ns, must be > 0", (long long)p->base_ns);
        return -1;
    }
    if (p->cap_ns < p->base_ns) {
        errstr_set(errstr, errcap, "cap: %lld ns, must be >= base (%lld ns)", (long long)p->cap_ns,
                   (long long)p->base_ns);
        return -1;
    }
    if (p->deadline_ns <= 0) {
        errstr_set(errstr, errcap, "deadline: %lld ns, must be > 0", (long long)p->deadline_ns);
        return -1;
    }
    return 0;
}

uint64_t backoff_rng_splitmix64(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int backoff_next(const struct backoff_policy *p, int attempts, int64_t first_attempt_ns,
                 int64_t now_ns, int64_t retry_after_ns, const struct backoff_rng *rng,
                 int64_t *delay_ns)
{
    if (backoff_policy_check(p, NULL, 0) != 0 || attempts < 1 || !rng || !rng->next || !delay_ns)
        return BACKOFF_EINVAL;
    int64_t deadline_at = first_attempt_ns + p->deadline_ns;
    if (now_ns >= deadline_at)
        return BACKOFF_EXHAUSTED;

    /* ceiling = min(cap, base * 2^(attempts - 1)), without overflow. */
    int64_t ceiling = p->base_ns;
    for (int i = 1; i < attempts && ceiling < p->cap_ns; i++)
        ceiling = ceiling > p->cap_ns / 2 ? p->cap_ns : ceiling * 2;
    if (ceiling > p->cap_ns)
        ceiling = p->cap_ns;
    /* Uniform in [0, ceiling]; the modulo bias is below 2^-24 here. */
    int64_t delay = (int64_t)(rng->next(rng->ctx) % ((uint64_t)ceiling + 1));
    if (retry_after_ns > delay)
        delay = retry_after_ns;

    int64_t left = deadline_at - now_ns;
    if (delay > left) {
        if (retry_after_ns > left)
            return BACKOFF_EXHAUSTED;
        delay = left; /* one last attempt, at the deadline */
    }
    *delay_ns = delay;
    return 0;
}

/* --- HTTP-date -------------------------------------------------------------- */

/* A cursor over the date text; every matcher advances only on success. */
struct cur {
    const char *p;
};

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly n digits. */
static bool digits(struct cur *c, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

/* Case-sensitive, as RFC 9110 section 5.6.7 defines the names. */
static int month_name(struct cur *c)
{
    static const char *const names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (lit(c, names[i]))
            return i + 1;
    return 0;
}

static bool day_name(struct cur *c)
{
    static const char *const names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    for (int i = 0; i < 7; i++)
        if (lit(c, names[i]))
            return true;
    return false;
}

static bool day_name_long(struct cur *c)
{
    static const char *const names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < 7; i++)
        if (lit(c, names[i]))
            return true;
    return false;
}

/* time-of-day = hour ":" minute ":" second; second 60 is a leap second. */
static bool time_of_day(struct cur *c, int *h, int *mi, int *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") && digits(c, 2, s) &&
           *h <= 23 && *mi <= 59 && *s <= 60;
}

static int date_to_unix(int64_t y, int m, int d, int h, int mi, int s, int64_t *unix_s)
{
    if (m < 1 || m > 12 || d < 1 || d > civil_days_in_month(y, m))
        return -1;
    *unix_s = civil_days_from_date(y, m, d) * CIVIL_DAY_S + h * 3600 + mi * 60 + s;
    return 0;
}

int backoff_http_date_parse(const char *value, int64_t now_s, int64_t *unix_s)
{
    if (!value || !unix_s)
        return -1;
    int d = 0, m = 0, y = 0, h = 0, mi = 0, s = 0;
    struct cur c = {value};

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (day_name(&c) && lit(&c, ", ")) {
        if (digits(&c, 2, &d) && lit(&c, " ") && (m = month_name(&c)) && lit(&c, " ") &&
            digits(&c, 4, &y) && lit(&c, " ") && time_of_day(&c, &h, &mi, &s) && lit(&c, " GMT") &&
            *c.p == '\0')
            return date_to_unix(y, m, d, h, mi, s, unix_s);
        return -1;
    }

    /* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" */
    c.p = value;
    if (day_name_long(&c) && lit(&c, ", ")) {
        if (digits(&c, 2, &d) && lit(&c, "-") && (m = month_name(&c)) && lit(&c, "-") &&
            digits(&c, 2, &y) && lit(&c, " ") && time_of_day(&c, &h, &mi, &s) && lit(&c, " GMT") &&
            *c.p == '\0') {
            int64_t now_year;
            int now_month;
            civil_date_from_days(civil_day_of(now_s), &now_year, &now_month);
            int64_t full = now_year - now_year % 100 + y;
            if (full > now_year + 50)
                full -= 100;
            return date_to_unix(full, m, d, h, mi, s, unix_s);
        }
        return -1;
    }

    /* asctime-date: "Sun Nov  6 08:49:37 1994" */
    c.p = value;
    if (day_name(&c) && lit(&c, " ") && (m = month_name(&c)) && lit(&c, " ")) {
        if (*c.p == ' ') {
            c.p++;
            if (!digits(&c, 1, &d))
                return -1;
        } else if (!digits(&c, 2, &d)) {
            return -1;
        }
        if (lit(&c, " ") && time_of_day(&c, &h, &mi, &s) && lit(&c, " ") && digits(&c, 4, &y) &&
            *c.p == '\0')
            return date_to_unix(y, m, d, h, mi, s, unix_s);
    }
    return -1;
}

int backoff_retry_after_parse(const char *value, int64_t now_ns, int64_t *wait_ns)
{
    if (!value || !wait_ns)
        return -1;
    /* OWS around a field value is not part of it (RFC 9110 section 5.5). */
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len == 0 || len > 64)
        return -1;
    char buf[65];
    memcpy(buf, value, len);
    buf[len] = '\0';

    if (buf[0] >= '0' && buf[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < len; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return -1;
            if (secs < DELTA_SECONDS_MAX)
                secs = secs * 10 + (buf[i] - '0');
        }
        if (secs > DELTA_SECONDS_MAX)
            secs = DELTA_SECONDS_MAX;
        *wait_ns = secs * BACKOFF_NS_PER_S;
        return 0;
    }

    int64_t now_s = now_ns / BACKOFF_NS_PER_S - (now_ns % BACKOFF_NS_PER_S < 0);
    int64_t at_s;
    if (backoff_http_date_parse(buf, now_s, &at_s) != 0)
        return -1;
    /* Compare in seconds first: far-off dates must not overflow ns. */
    if (at_s <= now_s) {
        *wait_ns = 0;
        return 0;
    }
    if (at_s - now_s > DELTA_SECONDS_MAX) {
        *wait_ns = DELTA_SECONDS_MAX * BACKOFF_NS_PER_S;
        return 0;
    }
    int64_t wait = at_s * BACKOFF_NS_PER_S - now_ns;
    *wait_ns = wait > 0 ? wait : 0;
    return 0;
}
