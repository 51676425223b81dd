/* Step and reminder timing in a channel's zone (see timing.h): the one place
 * that turns "day 2 at 09:00" or "3 days before at 18:00" into an instant. */
#include "timing.h"

#include <stdbool.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "clock.h"
#include "errstr.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int timing_hhmm_parse(const char *s, size_t len, int *minutes)
{
    if (!s || len != 5 || s[2] != ':')
        return -1;
    int d[4];
    const int at[4] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++) {
        char c = s[at[i]];
        if (c < '0' || c > '9')
            return -1;
        d[i] = c - '0';
    }
    int h = d[0] * 10 + d[1], m = d[2] * 10 + d[3];
    if (h > 23 || m > 59)
        return -1;
    *minutes = h * 60 + m;
    return 0;
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

int timing_rfc3339_parse(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec, ms_part = 0;
    if (!s || len < 20 || len > 40 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > civil_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t f = ++i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            ms_part += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == f || i - f > 9)
            return -1;
    }
    int off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;
    int64_t t = civil_days_from_date(y, mo, d) * CIVIL_DAY_S + h * 3600 + mi * 60 + sec - off;
    *ms = t * 1000 + ms_part;
    return 0;
}

int timing_check(const struct timing *t, char *errstr, size_t errcap)
{
    if (!t) {
        errstr_set(errstr, errcap, "timing: missing");
        return -1;
    }
    switch (t->kind) {
    case TIMING_AFTER:
        if (t->after_s < 0 || t->after_s > TIMING_AFTER_S_MAX) {
            errstr_set(errstr, errcap, "after_s: must be 0..%lld seconds",
                       (long long)TIMING_AFTER_S_MAX);
            return -1;
        }
        if (t->from != TIMING_FROM_PREVIOUS && t->from != TIMING_FROM_START) {
            errstr_set(errstr, errcap, "from: must be start or previous");
            return -1;
        }
        return 0;
    case TIMING_DAY_AT:
        if (t->day < 0 || t->day > TIMING_DAY_MAX) {
            errstr_set(errstr, errcap, "day: must be 0..%d", TIMING_DAY_MAX);
            return -1;
        }
        if (t->at_min < 0 || t->at_min >= 24 * 60) {
            errstr_set(errstr, errcap, "at: must be HH:MM, 00:00..23:59");
            return -1;
        }
        return 0;
    }
    errstr_set(errstr, errcap, "timing: unknown form");
    return -1;
}

int timing_reminder_check(const struct reminder_timing *r, char *errstr, size_t errcap)
{
    if (!r) {
        errstr_set(errstr, errcap, "timing: missing");
        return -1;
    }
    switch (r->kind) {
    case REMINDER_BEFORE_S:
        if (r->before_s < 0 || r->before_s > TIMING_AFTER_S_MAX) {
            errstr_set(errstr, errcap, "before_s: must be 0..%lld seconds",
                       (long long)TIMING_AFTER_S_MAX);
            return -1;
        }
        return 0;
    case REMINDER_BEFORE_DAYS_AT:
        if (r->days < 0 || r->days > TIMING_REMINDER_DAYS_MAX) {
            errstr_set(errstr, errcap, "before.days: must be 0..%d", TIMING_REMINDER_DAYS_MAX);
            return -1;
        }
        if (r->at_min < 0 || r->at_min >= 24 * 60) {
            errstr_set(errstr, errcap, "before.at: must be HH:MM, 00:00..23:59");
            return -1;
        }
        return 0;
    }
    errstr_set(errstr, errcap, "timing: unknown form");
    return -1;
}

int64_t timing_wall_instant_ms(const struct civil_zone *z, int64_t day, int at_min)
{
    return civil_zone_first_instant(z, day * CIVIL_DAY_S + (int64_t)at_min * 60) * 1000;
}

void timing_local_of(const struct civil_zone *z, int64_t t_ms, int64_t *day, int *sec_of_day)
{
    int64_t t = floor_div(t_ms, 1000);
    int64_t local = t + civil_zone_offset(z, t);
    *day = civil_day_of(local);
    *sec_of_day = (int)(local - *day * CIVIL_DAY_S);
}

int timing_step_due(const struct timing *t, int64_t start_ms, int64_t prev_ms,
                    const struct civil_zone *z, int64_t *due_ms)
{
    if (timing_check(t, NULL, 0) != 0 || !z || !due_ms)
        return -1;
    int64_t due;
    if (t->kind == TIMING_AFTER) {
        due = (t->from == TIMING_FROM_START ? start_ms : prev_ms) + t->after_s * 1000;
    } else {
        int64_t day0;
        int sec;
        timing_local_of(z, start_ms, &day0, &sec);
        due = timing_wall_instant_ms(z, day0 + t->day, t->at_min);
    }
    /* Never before the previous step: order is kept, and a passed wall time
     * (earlier on day 0, or before a long previous delay) is due at once. */
    *due_ms = due < prev_ms ? prev_ms : due;
    return 0;
}

int timing_reminder_due(const struct reminder_timing *r, int64_t goal_ms, int64_t now_ms,
                        const struct civil_zone *z, int64_t *due_ms)
{
    if (timing_reminder_check(r, NULL, 0) != 0 || !z || !due_ms)
        return -1;
    int64_t due;
    if (r->kind == REMINDER_BEFORE_S) {
        due = goal_ms - r->before_s * 1000;
    } else {
        int64_t day;
        int sec;
        timing_local_of(z, goal_ms, &day, &sec);
        due = timing_wall_instant_ms(z, day - r->days, r->at_min);
    }
    if (due < now_ms)
        return TIMING_SKIPPED;
    *due_ms = due;
    return TIMING_DUE;
}

int timing_reminder_due_now(const struct reminder_timing *r, int64_t goal_ms,
                            const struct civil_zone *z, int64_t *due_ms)
{
    return timing_reminder_due(r, goal_ms, clock_wall_ms(), z, due_ms);
}
