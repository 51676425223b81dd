/* Cron expressions (see cron.h): parsing into bit sets, the never-fires
 * check, and the next fire instant through the zone's wall clock. */
#include "cron.h"

#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "errstr.h"
#include "timing.h"

/* 400 Gregorian years repeat every date and weekday. */
#define CRON_CYCLE_DAYS 146097

struct cron_field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[0] is value name_base */
    int name_base, n_names;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const weekday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct cron_field fields[5] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day of month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, month_names, 1, 12},
    {"day of week", 0, 7, weekday_names, 0, 7},
};

static int upper(int ch)
{
    return ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch;
}

/* A number or a name at s[0..len); -1 if neither. */
static int value_read(const struct cron_field *f, const char *s, size_t len, int *out)
{
    if (len == 0)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        if (len > 3)
            return -1; /* also keeps the value small */
        int v = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
    }
    if (len != 3)
        return -1;
    for (int i = 0; i < f->n_names; i++)
        if (upper(s[0]) == f->names[i][0] && upper(s[1]) == f->names[i][1] &&
            upper(s[2]) == f->names[i][2]) {
            *out = f->name_base + i;
            return 0;
        }
    return -1;
}

/* One list item s[0..len) ("*", "N", "A-B", each with an optional "/STEP")
 * into bits. */
static int item_read(const struct cron_field *f, const char *s, size_t len, uint64_t *bits,
                     char *errstr, size_t errcap)
{
    const char *slash = memchr(s, '/', len);
    size_t rlen = slash ? (size_t)(slash - s) : len;
    int lo, hi, step = 1;
    if (slash) {
        size_t slen = len - rlen - 1;
        int v;
        if (slen == 0 || slen > 3 || !(slash[1] >= '0' && slash[1] <= '9') ||
            value_read(&(struct cron_field){0}, slash + 1, slen, &v) != 0 || v < 1 ||
            v > f->hi - f->lo + 1) {
            errstr_set(errstr, errcap, "%s: step '%.*s' must be 1-%d", f->name, (int)slen,
                       slash + 1, f->hi - f->lo + 1);
            return -1;
        }
        step = v;
    }
    if (rlen == 1 && s[0] == '*') {
        lo = f->lo;
        hi = f->hi == 7 ? 6 : f->hi; /* '*' weekdays: 0-6 (7 is 0 again) */
    } else {
        const char *dash = memchr(s, '-', rlen);
        size_t alen = dash ? (size_t)(dash - s) : rlen;
        if (value_read(f, s, alen, &lo) != 0) {
            errstr_set(errstr, errcap, "%s: '%.*s' is not a number%s", f->name, (int)alen, s,
                       f->names ? " or a name" : "");
            return -1;
        }
        hi = lo;
        if (dash) {
            size_t blen = rlen - alen - 1;
            if (value_read(f, dash + 1, blen, &hi) != 0) {
                errstr_set(errstr, errcap, "%s: '%.*s' is not a number%s", f->name, (int)blen,
                           dash + 1, f->names ? " or a name" : "");
                return -1;
            }
        } else if (slash) {
            hi = f->hi; /* "A/STEP": A to the end */
        }
        if (lo < f->lo || lo > f->hi || hi < f->lo || hi > f->hi) {
            errstr_set(errstr, errcap, "%s: %d is out of range %d-%d", f->name,
                       lo < f->lo || lo > f->hi ? lo : hi, f->lo, f->hi);
            return -1;
        }
        if (lo > hi) {
            errstr_set(errstr, errcap, "%s: range %d-%d runs backwards", f->name, lo, hi);
            return -1;
        }
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << (f->hi == 7 && v == 7 ? 0 : v);
    return 0;
}

static int field_read(const struct cron_field *f, const char *s, size_t len, uint64_t *bits,
                      bool *star, char *errstr, size_t errcap)
{
    *bits = 0;
    *star = len > 0 && s[0] == '*';
    size_t i = 0;
    while (i <= len) {
        const char *comma = memchr(s + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - s) : len;
        if (end == i) {
            errstr_set(errstr, errcap, "%s: empty list item", f->name);
            return -1;
        }
        if (item_read(f, s + i, end - i, bits, errstr, errcap) != 0)
            return -1;
        i = end + 1;
    }
    return 0;
}

static bool day_match(const struct cron *c, int64_t day, int m, int d)
{
    if (!(c->months >> m & 1))
        return false;
    bool dom = c->days >> d & 1, dow = c->weekdays >> civil_weekday(day) & 1;
    return c->days_star || c->weekdays_star ? dom && dow : dom || dow;
}

bool cron_day_matches(const struct cron *c, int64_t day)
{
    int64_t y;
    int m, d;
    civil_ymd_from_days(day, &y, &m, &d);
    return day_match(c, day, m, d);
}

int cron_parse(const char *text, struct cron *c, char *errstr, size_t errcap)
{
    if (!text || !c) {
        errstr_set(errstr, errcap, "missing");
        return -1;
    }
    size_t len = strnlen(text, CRON_TEXT_MAX + 1);
    if (len > CRON_TEXT_MAX) {
        errstr_set(errstr, errcap, "longer than %d characters", CRON_TEXT_MAX);
        return -1;
    }
    const char *start[6];
    size_t flen[6];
    int n = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == ' ' || text[i] == '\t') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && text[j] != ' ' && text[j] != '\t')
            j++;
        if (n < 6) {
            start[n] = text + i;
            flen[n] = j - i;
        }
        n++;
        i = j;
    }
    if (n != 5) {
        errstr_set(errstr, errcap, "expected 5 fields (MIN HOUR DOM MON DOW), got %d", n);
        return -1;
    }
    struct cron v = {0};
    uint64_t bits[5];
    bool star[5];
    for (int i = 0; i < 5; i++)
        if (field_read(&fields[i], start[i], flen[i], &bits[i], &star[i], errstr, errcap) != 0)
            return -1;
    v.minutes = bits[0];
    v.hours = (uint32_t)bits[1];
    v.days = (uint32_t)bits[2];
    v.months = (uint16_t)bits[3];
    v.weekdays = (uint8_t)bits[4];
    v.days_star = star[2];
    v.weekdays_star = star[4];
    /* Hours and minutes are never empty; only the days can miss: try one
     * whole 400-year cycle of dates (stops at the first match). */
    int64_t first = civil_days_from_date(2000, 1, 1);
    bool fires = false;
    for (int64_t day = first; day < first + CRON_CYCLE_DAYS && !fires; day++)
        fires = cron_day_matches(&v, day);
    if (!fires) {
        errstr_set(errstr, errcap, "day of month: never fires (no month given has that day%s)",
                   v.weekdays_star && !v.days_star ? " on those weekdays" : "");
        return -1;
    }
    *c = v;
    return 0;
}

int cron_next(const struct cron *c, const struct civil_zone *z, int64_t after_ms, int64_t *next_ms)
{
    int64_t day;
    int sec;
    /* A wall time on an earlier local day maps to an instant at or before
     * after_ms, so the search starts on after_ms's own local day. */
    timing_local_of(z, after_ms, &day, &sec);
    for (int64_t end = day + CRON_CYCLE_DAYS + 1; day < end; day++) {
        if (!cron_day_matches(c, day))
            continue;
        for (int h = 0; h < 24; h++) {
            if (!(c->hours >> h & 1))
                continue;
            for (int m = 0; m < 60; m++) {
                if (!(c->minutes >> m & 1))
                    continue;
                /* Wall times map to instants in order (a gap's minutes all
                 * to its end, a repeated minute to its first pass), so the
                 * first one past after_ms is the next fire. */
                int64_t t = timing_wall_instant_ms(z, day, h * 60 + m);
                if (t > after_ms) {
                    *next_ms = t;
                    return 0;
                }
            }
        }
    }
    return -1;
}
