/* Unit tests for services/scheduler/cron: the five-field form (lists,
 * ranges, steps, names, 0 and 7 as Sunday, the DOM/DOW OR rule), next fire
 * instants in a zone across month ends, the 2028 leap day, year ends and
 * the 2026/2027 DST changes of New York and Berlin (a gap's minutes fire
 * once at its end, a repeated hour fires once), Tokyo, expressions that
 * never fire, and a table of bad input naming the field. */
#include <criterion/criterion.h>

#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "scheduler/cron.h"

static int64_t utc_ms(int y, int m, int d, int h, int mi)
{
    return (civil_days_from_date(y, m, d) * CIVIL_DAY_S + h * 3600 + mi * 60) * 1000;
}

static struct civil_zone *zone(const char *name)
{
    char err[256];
    struct civil_zone *z = civil_zone_load(name, NULL, err, sizeof err);
    cr_assert_not_null(z, "%s: %s", name, err);
    return z;
}

static struct cron parsed(const char *text)
{
    struct cron c;
    char err[256] = "";
    cr_assert_eq(cron_parse(text, &c, err, sizeof err), 0, "'%s': %s", text, err);
    return c;
}

Test(sched_cron, fields_read_lists_ranges_steps_and_names)
{
    struct cron c = parsed("*/15 9-17/4 1,15,31 JAN-mar,dec MON-FRI");
    cr_expect_eq(c.minutes, 1ULL | 1ULL << 15 | 1ULL << 30 | 1ULL << 45);
    cr_expect_eq(c.hours, 1U << 9 | 1U << 13 | 1U << 17);
    cr_expect_eq(c.days, 1U << 1 | 1U << 15 | 1U << 31);
    cr_expect_eq(c.months, 1U << 1 | 1U << 2 | 1U << 3 | 1U << 12);
    cr_expect_eq(c.weekdays, 0x3e);
    cr_expect(!c.days_star && !c.weekdays_star);
    c = parsed("0 0 * * *");
    cr_expect_eq(c.weekdays, 0x7f);
    cr_expect_eq(c.days, 0xfffffffeU);
    cr_expect_eq(c.months, 0x1ffe);
    cr_expect(c.days_star && c.weekdays_star);
    c = parsed("5/20 0 * * 1/2"); /* A/STEP runs to the field's end; 7 is Sunday */
    cr_expect_eq(c.minutes, 1ULL << 5 | 1ULL << 25 | 1ULL << 45);
    cr_expect_eq(c.weekdays, 1U << 1 | 1U << 3 | 1U << 5 | 1U << 0);
}

Test(sched_cron, zero_and_seven_and_sun_are_all_sunday)
{
    cr_expect_eq(parsed("0 12 * * 0").weekdays, 1);
    cr_expect_eq(parsed("0 12 * * 7").weekdays, 1);
    cr_expect_eq(parsed("0 12 * * sun").weekdays, 1);
    cr_expect_eq(parsed("0 12 * * 5-7").weekdays, 1U << 5 | 1U << 6 | 1U << 0);
}

struct next_case {
    const char *name;
    const char *zone;
    const char *cron;
    int64_t after, want;
};

static void next_cases_run(const struct next_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct civil_zone *z = zone(cases[i].zone);
        struct cron c = parsed(cases[i].cron);
        int64_t next = 0;
        cr_assert_eq(cron_next(&c, z, cases[i].after, &next), 0, "%s", cases[i].name);
        cr_expect_eq(next, cases[i].want, "%s: next %lld, want %lld (%+lld s)", cases[i].name,
                     (long long)next, (long long)cases[i].want,
                     (long long)((next - cases[i].want) / 1000));
        civil_zone_free(&z);
    }
}

Test(sched_cron, next_fire_is_the_first_matching_wall_minute_strictly_after)
{
    const struct next_case cases[] = {
        /* 2026-12-02 is a Wednesday; 10:00 JST is 01:00Z. */
        {"every wednesday 10:00, from tuesday", "Asia/Tokyo", "0 10 * * WED",
         utc_ms(2026, 12, 1, 0, 0), utc_ms(2026, 12, 2, 1, 0)},
        {"every wednesday 10:00, at that instant", "Asia/Tokyo", "0 10 * * WED",
         utc_ms(2026, 12, 2, 1, 0), utc_ms(2026, 12, 9, 1, 0)},
        {"a second before", "Asia/Tokyo", "0 10 * * WED", utc_ms(2026, 12, 2, 1, 0) - 1000,
         utc_ms(2026, 12, 2, 1, 0)},
        {"every minute", "Asia/Tokyo", "* * * * *", utc_ms(2026, 12, 2, 1, 0) + 1,
         utc_ms(2026, 12, 2, 1, 1)},
        /* Month ends: the 31st skips 30-day months. */
        {"the 31st after april 15", "Asia/Tokyo", "0 0 31 * *", utc_ms(2026, 4, 15, 0, 0),
         utc_ms(2026, 5, 30, 15, 0)},
        {"the 30th skips february", "Europe/Berlin", "0 12 30 * *", utc_ms(2026, 1, 31, 0, 0),
         utc_ms(2026, 3, 30, 10, 0)},
        /* Leap day: from 2026-03-01 the next Feb 29 is 2028. */
        {"feb 29 waits for 2028", "Asia/Tokyo", "0 9 29 2 *", utc_ms(2026, 3, 1, 0, 0),
         utc_ms(2028, 2, 29, 0, 0)},
        /* Year end: 2027-01-01 00:00 JST is 2026-12-31 15:00Z. */
        {"new year tokyo", "Asia/Tokyo", "0 0 1 1 *", utc_ms(2026, 12, 31, 14, 59),
         utc_ms(2026, 12, 31, 15, 0)},
        {"new year tokyo, at it: next year", "Asia/Tokyo", "0 0 1 1 *", utc_ms(2026, 12, 31, 15, 0),
         utc_ms(2027, 12, 31, 15, 0)},
        {"new york dec 31 23:59", "America/New_York", "59 23 31 12 *", utc_ms(2026, 12, 1, 0, 0),
         utc_ms(2027, 1, 1, 4, 59)},
        /* DOM and DOW both restricted: either. Feb 2026: the 6th is a Friday. */
        {"13th or friday: friday first", "Asia/Tokyo", "0 0 13 * FRI", utc_ms(2026, 1, 31, 15, 0),
         utc_ms(2026, 2, 5, 15, 0)},
        {"13th alone", "Asia/Tokyo", "0 0 13 * *", utc_ms(2026, 1, 31, 15, 0),
         utc_ms(2026, 2, 12, 15, 0)},
        /* A field starting with '*' is unrestricted: both must hold. Fridays
         * among the 1st, 14th, 27th of Feb 2026: the 27th. */
        {"*/13 and friday", "Asia/Tokyo", "0 0 */13 * FRI", utc_ms(2026, 1, 31, 15, 0),
         utc_ms(2026, 2, 26, 15, 0)},
        {"feb 31 or monday fires on mondays", "Asia/Tokyo", "0 0 31 2 MON",
         utc_ms(2026, 1, 31, 15, 0), utc_ms(2026, 2, 1, 15, 0)},
    };
    next_cases_run(cases, sizeof cases / sizeof cases[0]);
}

Test(sched_cron, dst_gap_minutes_fire_once_at_its_end_and_repeated_minutes_once)
{
    const struct next_case cases[] = {
        /* New York 2026-03-08: 02:00 EST -> 03:00 EDT (07:00Z). */
        {"ny 02:30 daily on the gap day", "America/New_York", "30 2 * * *",
         utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 8, 7, 0)},
        {"ny 02:30 the day after", "America/New_York", "30 2 * * *", utc_ms(2026, 3, 8, 7, 0),
         utc_ms(2026, 3, 9, 6, 30)},
        {"ny */15 into the gap", "America/New_York", "*/15 * * * *", utc_ms(2026, 3, 8, 6, 50),
         utc_ms(2026, 3, 8, 7, 0)},
        {"ny */15 after the gap end: 03:15 EDT", "America/New_York", "*/15 * * * *",
         utc_ms(2026, 3, 8, 7, 0), utc_ms(2026, 3, 8, 7, 15)},
        /* New York 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 EDT is 05:30Z. */
        {"ny 01:30 first pass", "America/New_York", "30 1 * * *", utc_ms(2026, 11, 1, 4, 0),
         utc_ms(2026, 11, 1, 5, 30)},
        {"ny 01:30 not again in the second pass", "America/New_York", "30 1 * * *",
         utc_ms(2026, 11, 1, 5, 30), utc_ms(2026, 11, 2, 6, 30)},
        {"ny hourly skips the repeated 01:00", "America/New_York", "0 * * * *",
         utc_ms(2026, 11, 1, 5, 0), utc_ms(2026, 11, 1, 7, 0)},
        /* New York 2027: 03-14 and 11-07. */
        {"ny 2027 02:00 on the gap day", "America/New_York", "0 2 14 3 *", utc_ms(2027, 1, 1, 0, 0),
         utc_ms(2027, 3, 14, 7, 0)},
        {"ny 2027 01:59 on the fall day, once", "America/New_York", "59 1 7 11 *",
         utc_ms(2027, 11, 7, 5, 59), utc_ms(2028, 11, 7, 6, 59)},
        /* Berlin 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25
         * 03:00 CEST -> 02:00 CET (01:00Z). */
        {"berlin 02:00 in the gap", "Europe/Berlin", "0 2 * * *", utc_ms(2026, 3, 28, 12, 0),
         utc_ms(2026, 3, 29, 1, 0)},
        {"berlin 02:30 fall first pass", "Europe/Berlin", "30 2 * * *", utc_ms(2026, 10, 24, 12, 0),
         utc_ms(2026, 10, 25, 0, 30)},
        {"berlin 02:30 not in the second pass", "Europe/Berlin", "30 2 * * *",
         utc_ms(2026, 10, 25, 0, 30), utc_ms(2026, 10, 26, 1, 30)},
        {"berlin 2027 sunday 02:30 in the gap", "Europe/Berlin", "30 2 * * SUN",
         utc_ms(2027, 3, 22, 0, 0), utc_ms(2027, 3, 28, 1, 0)},
        {"berlin 2027 fall 10:00 is CET", "Europe/Berlin", "0 10 31 10 *",
         utc_ms(2027, 10, 1, 0, 0), utc_ms(2027, 10, 31, 9, 0)},
        /* Tokyo: the same instants are plain. */
        {"tokyo 02:30", "Asia/Tokyo", "30 2 * * *", utc_ms(2026, 3, 7, 17, 0),
         utc_ms(2026, 3, 7, 17, 30)},
    };
    next_cases_run(cases, sizeof cases / sizeof cases[0]);
}

/* Walks a year of fires of a few expressions: each is later than the one
 * before, and an hourly schedule fires once per local hour that exists. */
Test(sched_cron, a_year_of_fires_is_strictly_increasing_and_counts_each_wall_hour_once)
{
    static const struct {
        const char *zone;
        int want; /* fires of "0 * * * *" in 2026 */
    } zones[] = {{"Asia/Tokyo", 8760}, {"America/New_York", 8759}, {"Europe/Berlin", 8759}};
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        struct civil_zone *z = zone(zones[i].zone);
        struct cron c = parsed("0 * * * *");
        /* From local 2026-01-01 00:00 (a fire) to local 2027-01-01 00:00. */
        struct cron ny = parsed("0 0 1 1 *");
        int64_t y0, y1, n = 0, prev = 0;
        cr_assert_eq(cron_next(&ny, z, utc_ms(2025, 12, 31, 0, 0), &y0), 0);
        cr_assert_eq(cron_next(&ny, z, y0, &y1), 0);
        int64_t t = y0 - 1;
        t = y0 - 1;
        while (1) {
            int64_t next;
            cr_assert_eq(cron_next(&c, z, t, &next), 0);
            if (next >= y1)
                break;
            cr_assert_gt(next, prev);
            prev = next;
            t = next;
            n++;
        }
        cr_expect_eq(n, zones[i].want, "%s: %lld fires", zones[i].zone, (long long)n);
        civil_zone_free(&z);
    }
}

Test(sched_cron, expressions_that_never_fire_are_refused)
{
    static const char *const never[] = {"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *",
                                        "0 0 30,31 feb *", "0 0 31 2 */2"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        struct cron c;
        char err[256] = "";
        cr_expect_eq(cron_parse(never[i], &c, err, sizeof err), -1, "'%s' accepted", never[i]);
        cr_expect(strstr(err, "never fires") != NULL, "'%s': '%s'", never[i], err);
        cr_expect(strncmp(err, "day of month:", 13) == 0, "'%s': '%s'", never[i], err);
    }
    parsed("0 0 29 2 *"); /* leap years only, but it fires */
    parsed("0 0 31 2 MON");
}

Test(sched_cron, bad_expressions_are_refused_naming_the_field)
{
    static const struct {
        const char *text;
        const char *reason_starts;
    } bad[] = {
        {"", "expected 5 fields"},
        {"* * * *", "expected 5 fields"},
        {"* * * * * *", "expected 5 fields"},
        {"0 0 1 1 1 2026", "expected 5 fields"},
        {"@daily", "expected 5 fields"},
        {"60 * * * *", "minute: 60 is out of range 0-59"},
        {"-1 * * * *", "minute:"},
        {"* 24 * * *", "hour: 24 is out of range 0-23"},
        {"* 25 * * *", "hour:"},
        {"* * 0 * *", "day of month: 0 is out of range 1-31"},
        {"* * 32 * *", "day of month: 32 is out of range"},
        {"* * * 0 *", "month: 0 is out of range 1-12"},
        {"* * * 13 *", "month:"},
        {"* * * FOO *", "month: 'FOO' is not a number or a name"},
        {"* * * * 8", "day of week: 8 is out of range 0-7"},
        {"* * * * MONDAY", "day of week:"},
        {"* * * * MON-", "day of week:"},
        {"*/0 * * * *", "minute: step '0'"},
        {"*/61 * * * *", "minute: step '61'"},
        {"*/ * * * *", "minute: step"},
        {"5-1 * * * *", "minute: range 5-1 runs backwards"},
        {"1,,2 * * * *", "minute: empty list item"},
        {"1, * * * *", "minute: empty list item"},
        {"a * * * *", "minute: 'a' is not a number"},
        {"0 0 L * *", "day of month:"},
        {"0 0 1W * *", "day of month:"},
        {"0 0 * * 1#2", "day of week:"},
        {"0 0 ? * *", "day of month:"},
        {"1000 * * * *", "minute:"},
        {"** * * * *", "minute:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cron c = {.minutes = 42};
        char err[256] = "";
        cr_expect_eq(cron_parse(bad[i].text, &c, err, sizeof err), -1, "'%s' accepted",
                     bad[i].text);
        cr_expect(strncmp(err, bad[i].reason_starts, strlen(bad[i].reason_starts)) == 0,
                  "'%s': '%s', want '%s...'", bad[i].text, err, bad[i].reason_starts);
        cr_expect_eq(c.minutes, 42, "'%s' wrote the output", bad[i].text);
    }
    char longer[CRON_TEXT_MAX + 8];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    struct cron c;
    cr_expect_eq(cron_parse(longer, &c, NULL, 0), -1);
}
