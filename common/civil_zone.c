/* Time zones from the system tz database (see civil_zone.h), moved here from
 * the dispatcher's quota.c so that the scheduler's timing, cron and quiet
 * hours share one reader. Calendar arithmetic is civil_time.c's; nothing
 * here reads the process's TZ. */
#include "civil_zone.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil_time.h"
#include "errstr.h"

#define TZIF_MAX_BYTES (512 * 1024)
#define TZIF_MAX_TIMES 20000
#define TZIF_MAX_TYPES 256
#define UTOFF_MAX (26 * 3600) /* every offset ever used is within +-26 h */

/* --- POSIX TZ rules (TZif footers) ---------------------------------------------------- */

struct tz_ruledate {
    char kind; /* 'J': Julian day 1..365 without Feb 29; 'D': day 0..365; 'M': m.w.d */
    int n, m, w, d;
    int32_t secs; /* local time of day of the change, -167 h .. 167 h */
};

struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct tz_ruledate start, end;
};

struct civil_zone {
    char name[CIVIL_ZONE_NAME_MAX + 1];
    size_t n;     /* transitions */
    int64_t *at;  /* unix s, strictly increasing */
    int32_t *off; /* offset from at[i] on */
    int32_t off_initial;
    bool has_rule; /* the footer rule governs times after at[n - 1] */
    struct tz_rule rule;
};

static bool tz_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *b = ++s;
        while (*s && *s != '>') {
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
                return false;
            s++;
        }
        if (*s != '>' || s - b < 3)
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

static bool tz_num(const char **p, int maxdigits, int *out)
{
    const char *s = *p;
    int v = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < maxdigits) {
        v = v * 10 + (*s - '0');
        s++;
        nd++;
    }
    if (nd == 0)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh. */
static bool tz_hms(const char **p, int maxh, int32_t *out)
{
    const char *s = *p;
    int sign = 1, h, mi = 0, sec = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!tz_num(&s, 3, &h) || h > maxh)
        return false;
    if (*s == ':') {
        s++;
        if (!tz_num(&s, 2, &mi) || mi > 59)
            return false;
        if (*s == ':') {
            s++;
            if (!tz_num(&s, 2, &sec) || sec > 59)
                return false;
        }
    }
    *p = s;
    *out = sign * (h * 3600 + mi * 60 + sec);
    return true;
}

static bool tz_ruledate(const char **p, struct tz_ruledate *r)
{
    const char *s = *p;
    memset(r, 0, sizeof *r);
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!tz_num(&s, 3, &r->n) || r->n < 1 || r->n > 365)
            return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!tz_num(&s, 2, &r->m) || r->m < 1 || r->m > 12 || *s++ != '.' ||
            !tz_num(&s, 1, &r->w) || r->w < 1 || r->w > 5 || *s++ != '.' || !tz_num(&s, 1, &r->d) ||
            r->d > 6)
            return false;
    } else {
        r->kind = 'D';
        if (!tz_num(&s, 3, &r->n) || r->n > 365)
            return false;
    }
    r->secs = 7200;
    if (*s == '/') {
        s++;
        if (!tz_hms(&s, 167, &r->secs))
            return false;
    }
    *p = s;
    return true;
}

static int tz_rule_parse(const char *s, struct tz_rule *r)
{
    memset(r, 0, sizeof *r);
    int32_t v;
    if (!tz_name(&s) || !tz_hms(&s, 24, &v))
        return -1;
    r->std_off = -v; /* POSIX counts west as positive */
    if (*s == '\0')
        return 0;
    if (!tz_name(&s))
        return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!tz_hms(&s, 24, &v))
            return -1;
        r->dst_off = -v;
    }
    if (*s == '\0') {
        /* POSIX leaves the default to the implementation; tzcode uses the
         * US rules. */
        const char *def = "M3.2.0,M11.1.0";
        tz_ruledate(&def, &r->start);
        def++;
        tz_ruledate(&def, &r->end);
        return 0;
    }
    if (*s++ != ',' || !tz_ruledate(&s, &r->start) || *s++ != ',' || !tz_ruledate(&s, &r->end) ||
        *s != '\0')
        return -1;
    return 0;
}

/* The day (days since the epoch) a rule date falls on in year y. */
static int64_t ruledate_day(const struct tz_ruledate *r, int64_t y)
{
    int64_t jan1 = civil_days_from_date(y, 1, 1);
    switch (r->kind) {
    case 'J':
        return jan1 + r->n - 1 + (civil_is_leap(y) && r->n >= 60);
    case 'D':
        return jan1 + r->n;
    default: {
        int64_t first = civil_days_from_date(y, r->m, 1);
        int day = (r->d - civil_weekday(first) + 7) % 7 + (r->w - 1) * 7;
        while (day >= civil_days_in_month(y, r->m))
            day -= 7;
        return first + day;
    }
    }
}

/* DST start (to dst_off) and end (to std_off) in year y, unix s. The start
 * time is in standard time, the end time in daylight time. */
static void rule_changes(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = ruledate_day(&r->start, y) * CIVIL_DAY_S + r->start.secs - r->std_off;
    *end = ruledate_day(&r->end, y) * CIVIL_DAY_S + r->end.secs - r->dst_off;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m;
    civil_date_from_days(civil_day_of(t), &y, &m);
    return y;
}

static int32_t rule_offset(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y = year_of(t), best = INT64_MIN;
    int32_t off = r->std_off;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s, e;
        rule_changes(r, yy, &s, &e);
        /* On a tie (all-year DST written as "J1/0,J365/25"), the start wins. */
        if (e <= t && e > best) {
            best = e;
            off = r->std_off;
        }
        if (s <= t && s >= best) {
            best = s;
            off = r->dst_off;
        }
    }
    return off;
}

/* --- zones ------------------------------------------------------------------------------ */

static struct civil_zone *zone_alloc(const char *name, size_t n)
{
    struct civil_zone *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    if (n > 0) {
        z->at = calloc(n, sizeof *z->at);
        z->off = calloc(n, sizeof *z->off);
        if (!z->at || !z->off) {
            free(z->at);
            free(z->off);
            free(z);
            return NULL;
        }
    }
    z->n = n;
    snprintf(z->name, sizeof z->name, "%s", name);
    return z;
}

void civil_zone_free(struct civil_zone **z)
{
    if (!z || !*z)
        return;
    free((*z)->at);
    free((*z)->off);
    free(*z);
    *z = NULL;
}

const char *civil_zone_name(const struct civil_zone *z)
{
    return z ? z->name : "";
}

struct civil_zone *civil_zone_from_posix(const char *tz, char *errstr, size_t errcap)
{
    struct tz_rule rule;
    if (!tz || strlen(tz) > CIVIL_ZONE_NAME_MAX || tz_rule_parse(tz, &rule) != 0 ||
        rule.std_off < -UTOFF_MAX || rule.std_off > UTOFF_MAX || rule.dst_off < -UTOFF_MAX ||
        rule.dst_off > UTOFF_MAX) {
        errstr_set(errstr, errcap, "time zone: '%s' is not a POSIX TZ rule", tz ? tz : "(null)");
        return NULL;
    }
    struct civil_zone *z = zone_alloc(tz, 0);
    if (!z) {
        errstr_set(errstr, errcap, "out of memory");
        return NULL;
    }
    z->has_rule = true;
    z->rule = rule;
    z->off_initial = rule.std_off;
    return z;
}

static int64_t be_int(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    if (bytes == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

struct tzif_header {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int tzif_header_read(const unsigned char *p, size_t left, struct tzif_header *h)
{
    if (left < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    uint32_t *f[6] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                      &h->timecnt, &h->typecnt,  &h->charcnt};
    for (int i = 0; i < 6; i++)
        *f[i] = (uint32_t)be_int(p + 20 + 4 * i, 4);
    return 0;
}

static size_t tzif_block_len(const struct tzif_header *h, int tsize)
{
    return (size_t)h->timecnt * (size_t)tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (size_t)(tsize + 4) + h->isstdcnt + h->isutcnt;
}

struct civil_zone *civil_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                                        char *errstr, size_t errcap)
{
    struct tzif_header h;
    const char *nm = name ? name : "";
    if (!data || tzif_header_read(data, len, &h) != 0) {
        errstr_set(errstr, errcap, "time zone %s: not a TZif file", nm);
        return NULL;
    }
    char version = (char)data[4];
    if (version != '\0' && (version < '2' || version > '9')) {
        errstr_set(errstr, errcap, "time zone %s: unknown TZif version", nm);
        return NULL;
    }
    int tsize = 4;
    size_t pos = 44;
    if (version != '\0') {
        /* Skip the 32-bit data; the 64-bit block after it is complete. */
        if (h.timecnt > TZIF_MAX_TIMES || h.typecnt > TZIF_MAX_TYPES || h.leapcnt > 1000 ||
            h.charcnt > 1000 || h.isstdcnt > TZIF_MAX_TYPES || h.isutcnt > TZIF_MAX_TYPES ||
            tzif_block_len(&h, 4) > len - pos) {
            errstr_set(errstr, errcap, "time zone %s: truncated TZif file", nm);
            return NULL;
        }
        pos += tzif_block_len(&h, 4);
        if (tzif_header_read(data + pos, len - pos, &h) != 0) {
            errstr_set(errstr, errcap, "time zone %s: bad second TZif header", nm);
            return NULL;
        }
        pos += 44;
        tsize = 8;
    }
    if (h.timecnt > TZIF_MAX_TIMES || h.typecnt < 1 || h.typecnt > TZIF_MAX_TYPES ||
        h.charcnt > 1000 || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) ||
        (h.isutcnt != 0 && h.isutcnt != h.typecnt) || h.leapcnt > 1000) {
        errstr_set(errstr, errcap, "time zone %s: inconsistent TZif counts", nm);
        return NULL;
    }
    if (h.leapcnt > 0) {
        errstr_set(errstr, errcap, "time zone %s: leap-second (\"right/\") zones are not supported",
                   nm);
        return NULL;
    }
    if (tzif_block_len(&h, tsize) > len - pos) {
        errstr_set(errstr, errcap, "time zone %s: truncated TZif file", nm);
        return NULL;
    }
    const unsigned char *times = data + pos;
    const unsigned char *idx = times + (size_t)h.timecnt * (size_t)tsize;
    const unsigned char *types = idx + h.timecnt;
    size_t end = pos + tzif_block_len(&h, tsize);

    int32_t utoff[TZIF_MAX_TYPES];
    for (uint32_t i = 0; i < h.typecnt; i++) {
        int64_t u = be_int(types + 6 * i, 4);
        if (u < -UTOFF_MAX || u > UTOFF_MAX || types[6 * i + 4] > 1) {
            errstr_set(errstr, errcap, "time zone %s: bad local time type", nm);
            return NULL;
        }
        utoff[i] = (int32_t)u;
    }

    struct tz_rule rule;
    bool has_rule = false;
    if (version != '\0') {
        /* Footer: "\n" POSIX-TZ "\n"; empty means no rule. */
        if (end >= len || data[end] != '\n') {
            errstr_set(errstr, errcap, "time zone %s: missing TZif footer", nm);
            return NULL;
        }
        const unsigned char *fs = data + end + 1;
        const unsigned char *fe = memchr(fs, '\n', len - end - 1);
        if (!fe || fe - fs > 128) {
            errstr_set(errstr, errcap, "time zone %s: bad TZif footer", nm);
            return NULL;
        }
        if (fe > fs) {
            char tz[129];
            memcpy(tz, fs, (size_t)(fe - fs));
            tz[fe - fs] = '\0';
            if (tz_rule_parse(tz, &rule) != 0) {
                errstr_set(errstr, errcap, "time zone %s: footer rule '%s' not understood", nm, tz);
                return NULL;
            }
            has_rule = true;
        }
    }

    struct civil_zone *z = zone_alloc(nm, h.timecnt);
    if (!z) {
        errstr_set(errstr, errcap, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < h.timecnt; i++) {
        z->at[i] = be_int(times + (size_t)i * (size_t)tsize, tsize);
        if (idx[i] >= h.typecnt || (i > 0 && z->at[i] <= z->at[i - 1])) {
            errstr_set(errstr, errcap, "time zone %s: bad transition table", nm);
            civil_zone_free(&z);
            return NULL;
        }
        z->off[i] = utoff[idx[i]];
    }
    /* RFC 8536 section 3.2: type 0 holds before the first transition. */
    z->off_initial = utoff[0];
    z->has_rule = has_rule;
    if (has_rule)
        z->rule = rule;
    return z;
}

/* Letters, digits, '_', '-', '+', '.'; '/'-separated; no "." or ".."
 * components, nothing absolute: the name stays inside tzdir. */
static bool zone_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > CIVIL_ZONE_NAME_MAX)
        return false;
    const char *comp = name;
    for (const char *s = name;; s++) {
        if (*s == '/' || *s == '\0') {
            size_t cl = (size_t)(s - comp);
            if (cl == 0 || (cl == 1 && comp[0] == '.') ||
                (cl == 2 && comp[0] == '.' && comp[1] == '.'))
                return false;
            if (*s == '\0')
                return true;
            comp = s + 1;
            continue;
        }
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '+' || *s == '.'))
            return false;
    }
}

struct civil_zone *civil_zone_load(const char *name, const char *tzdir, char *errstr, size_t errcap)
{
    if (!name || !zone_name_valid(name)) {
        errstr_set(errstr, errcap, "time zone: '%s' is not an IANA zone name",
                   name ? name : "(null)");
        return NULL;
    }
    char path[512];
    int pl = snprintf(path, sizeof path, "%s/%s", tzdir ? tzdir : CIVIL_TZDIR_DEFAULT, name);
    if (pl < 0 || (size_t)pl >= sizeof path) {
        errstr_set(errstr, errcap, "time zone %s: path too long", name);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
            struct civil_zone *z = zone_alloc(name, 0);
            if (!z)
                errstr_set(errstr, errcap, "out of memory");
            return z;
        }
        errstr_set(errstr, errcap, "time zone %s: unknown (%s)", name,
                   e == ENOENT ? "no such zone in the tz database" : strerror(e));
        return NULL;
    }
    unsigned char *buf = malloc(TZIF_MAX_BYTES);
    size_t len = buf ? fread(buf, 1, TZIF_MAX_BYTES, f) : 0;
    bool too_big = buf && len == TZIF_MAX_BYTES && fgetc(f) != EOF;
    bool failed = !buf || ferror(f);
    fclose(f);
    struct civil_zone *z = NULL;
    if (failed)
        errstr_set(errstr, errcap, "time zone %s: cannot read %s", name, path);
    else if (too_big)
        errstr_set(errstr, errcap, "time zone %s: file too large", name);
    else
        z = civil_zone_from_tzif(name, buf, len, errstr, errcap);
    free(buf);
    return z;
}

int32_t civil_zone_offset(const struct civil_zone *z, int64_t t)
{
    if (z->n == 0)
        return z->has_rule ? rule_offset(&z->rule, t) : z->off_initial;
    if (t < z->at[0])
        return z->off_initial;
    if (z->has_rule && t > z->at[z->n - 1])
        return rule_offset(&z->rule, t);
    size_t lo = 0, hi = z->n; /* last at[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

/* --- local time to instants ------------------------------------------------------- */

#define MAX_BREAKS 64

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every offset change in (a, b], sorted. */
static size_t zone_changes(const struct civil_zone *z, int64_t a, int64_t b, int64_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < z->n && n < MAX_BREAKS; i++)
        if (z->at[i] > a && z->at[i] <= b)
            out[n++] = z->at[i];
    if (z->has_rule && z->rule.has_dst) {
        int64_t after = z->n ? z->at[z->n - 1] : INT64_MIN;
        for (int64_t y = year_of(a) - 1; y <= year_of(b) + 1 && n + 2 <= MAX_BREAKS; y++) {
            int64_t s, e;
            rule_changes(&z->rule, y, &s, &e);
            if (s > a && s <= b && s > after)
                out[n++] = s;
            if (e > a && e <= b && e > after)
                out[n++] = e;
        }
    }
    qsort(out, n, sizeof *out, cmp_i64);
    return n;
}

/* The first instant whose local time is >= local_target (local seconds
 * since the epoch). Between changes the offset is constant, so local time
 * rises with t; walk the segments around the target in order. */
int64_t civil_zone_first_instant(const struct civil_zone *z, int64_t local_target)
{
    int64_t a = local_target - 3 * CIVIL_DAY_S, b = local_target + 3 * CIVIL_DAY_S;
    int64_t brk[MAX_BREAKS + 2];
    size_t n = zone_changes(z, a, b, brk + 1);
    brk[0] = a;
    brk[n + 1] = b + 1;
    for (size_t i = 0; i <= n; i++) {
        int64_t cand = local_target - civil_zone_offset(z, brk[i]);
        if (cand < brk[i])
            cand = brk[i];
        if (cand < brk[i + 1])
            return cand;
    }
    return local_target - civil_zone_offset(z, local_target);
}
