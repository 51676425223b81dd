/* Recurring schedules: the five-field cron form "MIN HOUR DOM MON DOW", read
 * once into bit sets, and the next fire instant in a channel's time zone.
 * Pure functions, safe from any thread.
 *
 * The form: each field a comma list of `*`, `N`, `A-B`, `*` / `A-B` / `A`
 * followed by `/STEP` (`A/STEP` runs A to the field's end); months may be
 * JAN..DEC and weekdays SUN..SAT (any case); weekday 0 and 7 are Sunday.
 * Day of month and day of week: when both are restricted a day matches
 * either (the standard OR); a field that begins with `*` (`*`, `*\/2`) counts
 * as unrestricted, so then a day must match both (as Vixie cron and cronie
 * do). An expression that can never fire (`0 0 31 2 *`, `0 0 30 2 *`) is
 * refused. No @-macros, no seconds field, no L/W/#.
 *
 * Fire times are wall-clock minutes in the zone (docs/internals/scheduler.md):
 * - a minute inside a spring-forward gap fires at the end of the gap, and
 *   several such minutes (e.g. `*\/15` across 02:00-03:00) fire once there;
 * - minutes that a fall-back repeats fire once, at their first occurrence. */
#ifndef KIZUNA_SCHEDULER_CRON_H
#define KIZUNA_SCHEDULER_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct civil_zone;

#define CRON_TEXT_MAX 128

/* A parsed expression: plain data, copyable. */
struct cron {
    uint64_t minutes; /* bit 0..59 */
    uint32_t hours;   /* bit 0..23 */
    uint32_t days;    /* bit 1..31 (day of month) */
    uint16_t months;  /* bit 1..12 */
    uint8_t weekdays; /* bit 0..6, 0 = Sunday */
    bool days_star;   /* day of month began with '*' */
    bool weekdays_star;
};

/* Parses text (NUL-terminated, at most CRON_TEXT_MAX bytes) into c. Returns
 * 0, or -1 with errstr naming the field: "day of month: 32 is out of range
 * 1-31", "expected 5 fields (MIN HOUR DOM MON DOW), got 6", "never fires:
 * no month has day 31 of February" (text-form reasons, for a 400). */
int cron_parse(const char *text, struct cron *c, char *errstr, size_t errcap);

/* Whether local day `day` (days since 1970-01-01) is a day c fires on. */
bool cron_day_matches(const struct cron *c, int64_t day);

/* The first fire instant strictly after after_ms (unix ms) in zone z, into
 * *next_ms (a whole second). Returns 0, or -1 if there is none within 400
 * years (not for an expression cron_parse accepted). */
int cron_next(const struct cron *c, const struct civil_zone *z, int64_t after_ms, int64_t *next_ms);

#endif
