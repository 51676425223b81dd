/* Unit tests for services/scheduler/timing: step due instants in a
 * channel's zone across month ends, the 2028 leap day, year ends, the 2026
 * and 2027 DST changes of America/New_York and Europe/Berlin (gap: end of
 * the gap; fall-back: first occurrence) and Asia/Tokyo (no DST); reminder
 * steps with "now" from an injected clock (past steps are skipped); and
 * tables of bad input. Expected instants are written in UTC. */
#include <criterion/criterion.h>

#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "clock.h"
#include "scheduler/timing.h"

/* Unix ms of a UTC date and time. */
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

static struct timing day_at(int day, int h, int m)
{
    return (struct timing){.kind = TIMING_DAY_AT, .day = day, .at_min = h * 60 + m};
}

static struct timing after(int64_t s, enum timing_from from)
{
    return (struct timing){.kind = TIMING_AFTER, .after_s = s, .from = from};
}

struct step_case {
    const char *name;
    const char *zone;
    struct timing timing;
    int64_t start, prev, want;
};

static void step_cases_run(const struct step_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct civil_zone *z = zone(cases[i].zone);
        int64_t due = 0;
        cr_assert_eq(timing_step_due(&cases[i].timing, cases[i].start, cases[i].prev, z, &due), 0,
                     "%s", cases[i].name);
        cr_expect_eq(due, cases[i].want, "%s: due %lld, want %lld (%+lld s)", cases[i].name,
                     (long long)due, (long long)cases[i].want,
                     (long long)((due - cases[i].want) / 1000));
        civil_zone_free(&z);
    }
}

Test(sched_timing, after_s_counts_elapsed_seconds_from_the_start_or_the_previous_step)
{
    int64_t s = utc_ms(2026, 12, 2, 1, 0), p = s + 3600 * 1000;
    static struct step_case cases[4];
    cases[0] = (struct step_case){"from start",
                                  "Asia/Tokyo",
                                  after(600, TIMING_FROM_START),
                                  s,
                                  p,
                                  p}; /* s+600 s is before the previous step: at once after it */
    cases[1] = (struct step_case){
        "from previous", "Asia/Tokyo", after(600, TIMING_FROM_PREVIOUS), s, p, p + 600 * 1000};
    cases[2] = (struct step_case){
        "zero from start is the start", "Asia/Tokyo", after(0, TIMING_FROM_START), s, s, s};
    /* 24 h across the New York spring-forward is 24 elapsed hours: 13:00 EDT. */
    cases[3] = (struct step_case){"a day across spring forward",   "America/New_York",
                                  after(86400, TIMING_FROM_START), utc_ms(2026, 3, 7, 17, 0),
                                  utc_ms(2026, 3, 7, 17, 0),       utc_ms(2026, 3, 8, 17, 0)};
    step_cases_run(cases, 4);
}

Test(sched_timing, day_n_at_hh_mm_is_that_wall_time_in_the_channel_zone)
{
    const struct step_case cases[] = {
        /* Tokyo, start 2026-12-02 08:00 JST (-1 day 23:00Z). */
        {"tokyo day 0 later today", "Asia/Tokyo", day_at(0, 9, 0), utc_ms(2026, 12, 1, 23, 0),
         utc_ms(2026, 12, 1, 23, 0), utc_ms(2026, 12, 2, 0, 0)},
        {"tokyo day 0 already passed is due at once", "Asia/Tokyo", day_at(0, 7, 0),
         utc_ms(2026, 12, 1, 23, 0), utc_ms(2026, 12, 1, 23, 0), utc_ms(2026, 12, 1, 23, 0)},
        {"tokyo day 0 at the start minute", "Asia/Tokyo", day_at(0, 8, 0),
         utc_ms(2026, 12, 1, 23, 0), utc_ms(2026, 12, 1, 23, 0), utc_ms(2026, 12, 1, 23, 0)},
        /* The start day is the local date: 2026-12-02 20:00Z is Dec 3 in Tokyo. */
        {"tokyo day 1 counts from the local date", "Asia/Tokyo", day_at(1, 9, 0),
         utc_ms(2026, 12, 2, 20, 0), utc_ms(2026, 12, 2, 20, 0), utc_ms(2026, 12, 4, 0, 0)},
        {"tokyo day 30 across the year end", "Asia/Tokyo", day_at(30, 10, 0),
         utc_ms(2026, 12, 15, 3, 0), utc_ms(2026, 12, 15, 3, 0), utc_ms(2027, 1, 14, 1, 0)},
        /* Month ends. */
        {"jan 31 + 1 day is feb 1", "Asia/Tokyo", day_at(1, 9, 0), utc_ms(2026, 1, 31, 1, 0),
         utc_ms(2026, 1, 31, 1, 0), utc_ms(2026, 2, 1, 0, 0)},
        {"apr 30 + 1 day is may 1", "Europe/Berlin", day_at(1, 9, 0), utc_ms(2026, 4, 30, 10, 0),
         utc_ms(2026, 4, 30, 10, 0), utc_ms(2026, 5, 1, 7, 0)},
        /* The 2028 leap day. */
        {"feb 28 2028 + 1 day is the leap day", "Asia/Tokyo", day_at(1, 9, 0),
         utc_ms(2028, 2, 28, 3, 0), utc_ms(2028, 2, 28, 3, 0), utc_ms(2028, 2, 29, 0, 0)},
        {"feb 28 2028 + 2 days is mar 1", "Asia/Tokyo", day_at(2, 9, 0), utc_ms(2028, 2, 28, 3, 0),
         utc_ms(2028, 2, 28, 3, 0), utc_ms(2028, 3, 1, 0, 0)},
        {"feb 28 2027 + 1 day is mar 1", "Asia/Tokyo", day_at(1, 9, 0), utc_ms(2027, 2, 28, 3, 0),
         utc_ms(2027, 2, 28, 3, 0), utc_ms(2027, 3, 1, 0, 0)},
        /* Year end in New York: Dec 31 23:30 EST, day 1 at 00:15 is 45 minutes on. */
        {"new york new year", "America/New_York", day_at(1, 0, 15), utc_ms(2027, 1, 1, 4, 30),
         utc_ms(2027, 1, 1, 4, 30), utc_ms(2027, 1, 1, 5, 15)},
        {"new york day 1 after dec 31", "America/New_York", day_at(1, 9, 0),
         utc_ms(2026, 12, 31, 20, 0), utc_ms(2026, 12, 31, 20, 0), utc_ms(2027, 1, 1, 14, 0)},
    };
    step_cases_run(cases, sizeof cases / sizeof cases[0]);
}

Test(sched_timing, dst_gaps_are_due_at_the_end_of_the_gap_and_repeats_at_the_first_pass)
{
    const struct step_case cases[] = {
        /* New York 2026: 03-08 02:00 EST -> 03:00 EDT; 11-01 02:00 EDT -> 01:00 EST. */
        {"ny 2026 spring 02:30 is 03:00 EDT", "America/New_York", day_at(1, 2, 30),
         utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 8, 7, 0)},
        {"ny 2026 spring 09:00 is EDT", "America/New_York", day_at(1, 9, 0),
         utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 8, 13, 0)},
        {"ny 2026 spring 01:59 is still EST", "America/New_York", day_at(1, 1, 59),
         utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 7, 17, 0), utc_ms(2026, 3, 8, 6, 59)},
        {"ny 2026 fall 01:30 is the first (EDT) pass", "America/New_York", day_at(1, 1, 30),
         utc_ms(2026, 10, 31, 16, 0), utc_ms(2026, 10, 31, 16, 0), utc_ms(2026, 11, 1, 5, 30)},
        {"ny 2026 fall 09:00 is EST", "America/New_York", day_at(1, 9, 0),
         utc_ms(2026, 10, 31, 16, 0), utc_ms(2026, 10, 31, 16, 0), utc_ms(2026, 11, 1, 14, 0)},
        /* New York 2027: 03-14 and 11-07. */
        {"ny 2027 spring 02:00 is 03:00 EDT", "America/New_York", day_at(2, 2, 0),
         utc_ms(2027, 3, 12, 17, 0), utc_ms(2027, 3, 12, 17, 0), utc_ms(2027, 3, 14, 7, 0)},
        {"ny 2027 fall 01:00 is the first pass", "America/New_York", day_at(1, 1, 0),
         utc_ms(2027, 11, 6, 16, 0), utc_ms(2027, 11, 6, 16, 0), utc_ms(2027, 11, 7, 5, 0)},
        /* Berlin 2026: 03-29 02:00 CET -> 03:00 CEST; 10-25 03:00 CEST -> 02:00 CET. */
        {"berlin 2026 spring 02:15 is 03:00 CEST", "Europe/Berlin", day_at(1, 2, 15),
         utc_ms(2026, 3, 28, 9, 0), utc_ms(2026, 3, 28, 9, 0), utc_ms(2026, 3, 29, 1, 0)},
        {"berlin 2026 fall 02:30 is the CEST pass", "Europe/Berlin", day_at(1, 2, 30),
         utc_ms(2026, 10, 24, 8, 0), utc_ms(2026, 10, 24, 8, 0), utc_ms(2026, 10, 25, 0, 30)},
        {"berlin 2026 fall 03:00 is CET", "Europe/Berlin", day_at(1, 3, 0),
         utc_ms(2026, 10, 24, 8, 0), utc_ms(2026, 10, 24, 8, 0), utc_ms(2026, 10, 25, 2, 0)},
        /* Berlin 2027: 03-28 and 10-31. */
        {"berlin 2027 spring 02:59 is 03:00 CEST", "Europe/Berlin", day_at(1, 2, 59),
         utc_ms(2027, 3, 27, 9, 0), utc_ms(2027, 3, 27, 9, 0), utc_ms(2027, 3, 28, 1, 0)},
        {"berlin 2027 fall 02:00 is the CEST pass", "Europe/Berlin", day_at(1, 2, 0),
         utc_ms(2027, 10, 30, 8, 0), utc_ms(2027, 10, 30, 8, 0), utc_ms(2027, 10, 31, 0, 0)},
        /* Tokyo has no DST: the same dates change nothing. */
        {"tokyo on the ny spring date", "Asia/Tokyo", day_at(1, 2, 30), utc_ms(2026, 3, 7, 3, 0),
         utc_ms(2026, 3, 7, 3, 0), utc_ms(2026, 3, 7, 17, 30)},
    };
    step_cases_run(cases, sizeof cases / sizeof cases[0]);
}

Test(sched_timing, a_step_is_never_due_before_the_previous_step)
{
    struct civil_zone *z = zone("Asia/Tokyo");
    struct timing t = day_at(1, 9, 0);
    int64_t start = utc_ms(2026, 12, 2, 0, 0), prev = utc_ms(2026, 12, 5, 0, 0), due;
    cr_assert_eq(timing_step_due(&t, start, prev, z, &due), 0);
    cr_expect_eq(due, prev);
    civil_zone_free(&z);
}

/* --- reminders, with now from an injected clock ----------------------------------- */

static int64_t fake_now_ns;
static int64_t fake_wall(void *ctx)
{
    (void)ctx;
    return fake_now_ns;
}

static void now_set(int64_t ms)
{
    static struct clock_source src = {.wall_ns = fake_wall};
    fake_now_ns = ms * 1000000;
    clock_source_set(&src);
}

static void now_reset(void)
{
    clock_source_set(NULL);
}

struct reminder_case {
    const char *name;
    const char *zone;
    struct reminder_timing timing;
    int64_t goal, now;
    int want_rc;
    int64_t want;
};

Test(sched_timing, reminder_steps_fall_before_the_goal_or_are_skipped_when_already_past,
     .fini = now_reset)
{
    const struct reminder_timing hour = {.kind = REMINDER_BEFORE_S, .before_s = 3600};
    const struct reminder_timing eve = {.kind = REMINDER_BEFORE_DAYS_AT, .days = 1, .at_min = 1080};
    const struct reminder_timing same_day = {.kind = REMINDER_BEFORE_DAYS_AT, .at_min = 480};
    const struct reminder_timing night = {.kind = REMINDER_BEFORE_DAYS_AT, .days = 1, .at_min = 90};
    const struct reminder_case cases[] = {
        {"an hour before", "Asia/Tokyo", hour, utc_ms(2026, 12, 10, 1, 0),
         utc_ms(2026, 12, 2, 0, 0), TIMING_DUE, utc_ms(2026, 12, 10, 0, 0)},
        {"an hour before, set 30 min before the goal", "Asia/Tokyo", hour,
         utc_ms(2026, 12, 10, 1, 0), utc_ms(2026, 12, 10, 0, 30), TIMING_SKIPPED, 0},
        {"exactly now is still due", "Asia/Tokyo", hour, utc_ms(2026, 12, 10, 1, 0),
         utc_ms(2026, 12, 10, 0, 0), TIMING_DUE, utc_ms(2026, 12, 10, 0, 0)},
        /* Goal 2026-03-01 10:00 JST: the evening before is Feb 28 18:00 JST. */
        {"the evening before across a month end", "Asia/Tokyo", eve, utc_ms(2026, 3, 1, 1, 0),
         utc_ms(2026, 2, 1, 0, 0), TIMING_DUE, utc_ms(2026, 2, 28, 9, 0)},
        {"the evening before is the 2028 leap day", "Asia/Tokyo", eve, utc_ms(2028, 3, 1, 1, 0),
         utc_ms(2028, 2, 1, 0, 0), TIMING_DUE, utc_ms(2028, 2, 29, 9, 0)},
        {"the evening before across the year end", "Asia/Tokyo", eve, utc_ms(2027, 1, 1, 1, 0),
         utc_ms(2026, 12, 1, 0, 0), TIMING_DUE, utc_ms(2026, 12, 31, 9, 0)},
        {"the evening before, set the next morning", "Asia/Tokyo", eve, utc_ms(2026, 3, 1, 1, 0),
         utc_ms(2026, 2, 28, 23, 0), TIMING_SKIPPED, 0},
        {"the goal day's morning", "Europe/Berlin", same_day, utc_ms(2026, 7, 1, 12, 0),
         utc_ms(2026, 6, 1, 0, 0), TIMING_DUE, utc_ms(2026, 7, 1, 6, 0)},
        /* Goal 2026-11-02 10:00 EST: 01:30 the day before is the EDT pass. */
        {"ny fall back: first pass", "America/New_York", night, utc_ms(2026, 11, 2, 15, 0),
         utc_ms(2026, 10, 1, 0, 0), TIMING_DUE, utc_ms(2026, 11, 1, 5, 30)},
        /* Goal 2027-03-15 10:00 EDT: 01:30 on 03-14 is EST, before the gap. */
        {"ny 2027 spring forward day", "America/New_York", night, utc_ms(2027, 3, 15, 14, 0),
         utc_ms(2027, 3, 1, 0, 0), TIMING_DUE, utc_ms(2027, 3, 14, 6, 30)},
        /* Berlin: 2 days before at 02:30 on 2027-03-28 is in the gap: 03:00 CEST. */
        {"berlin 2027 gap", "Europe/Berlin",
         (struct reminder_timing){.kind = REMINDER_BEFORE_DAYS_AT, .days = 2, .at_min = 150},
         utc_ms(2027, 3, 30, 10, 0), utc_ms(2027, 3, 1, 0, 0), TIMING_DUE,
         utc_ms(2027, 3, 28, 1, 0)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct civil_zone *z = zone(cases[i].zone);
        now_set(cases[i].now);
        int64_t due = 0;
        int rc = timing_reminder_due_now(&cases[i].timing, cases[i].goal, z, &due);
        cr_expect_eq(rc, cases[i].want_rc, "%s: rc %d", cases[i].name, rc);
        if (rc == TIMING_DUE)
            cr_expect_eq(due, cases[i].want, "%s: due %lld, want %lld (%+lld s)", cases[i].name,
                         (long long)due, (long long)cases[i].want,
                         (long long)((due - cases[i].want) / 1000));
        civil_zone_free(&z);
    }
}

/* --- bad input ---------------------------------------------------------------------- */

Test(sched_timing, hh_mm_accepts_only_two_digit_hours_and_minutes_of_a_day)
{
    static const struct {
        const char *text;
        int want;
    } good[] = {{"00:00", 0}, {"09:05", 545}, {"23:59", 1439}, {"12:00", 720}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int m = -1;
        cr_expect_eq(timing_hhmm_parse(good[i].text, strlen(good[i].text), &m), 0, "%s",
                     good[i].text);
        cr_expect_eq(m, good[i].want, "%s", good[i].text);
    }
    static const char *const bad[] = {"25:00", "24:00",  "9:00",  "09:60", "12-00",
                                      "",      "1200",   "ab:cd", " 9:00", "09:5",
                                      "-1:00", "09:00 ", "+9:00", "0x:00", "23:59:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int m = 7;
        cr_expect_eq(timing_hhmm_parse(bad[i], strlen(bad[i]), &m), -1, "'%s' accepted", bad[i]);
        cr_expect_eq(m, 7, "'%s' wrote the output", bad[i]);
    }
}

Test(sched_timing, out_of_range_timings_are_refused_with_the_field_named)
{
    static const struct {
        struct timing timing;
        const char *field;
    } bad[] = {
        {{.kind = TIMING_AFTER, .after_s = -1}, "after_s"},
        {{.kind = TIMING_AFTER, .after_s = TIMING_AFTER_S_MAX + 1}, "after_s"},
        {{.kind = TIMING_AFTER, .after_s = 5, .from = (enum timing_from)7}, "from"},
        {{.kind = TIMING_DAY_AT, .day = -1, .at_min = 0}, "day"},
        {{.kind = TIMING_DAY_AT, .day = TIMING_DAY_MAX + 1}, "day"},
        {{.kind = TIMING_DAY_AT, .day = 1, .at_min = 1440}, "at"},
        {{.kind = TIMING_DAY_AT, .day = 1, .at_min = -1}, "at"},
        {{.kind = (enum timing_kind)0}, "timing"},
    };
    struct civil_zone *z = zone("UTC");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        cr_expect_eq(timing_check(&bad[i].timing, err, sizeof err), -1, "case %zu", i);
        cr_expect(strncmp(err, bad[i].field, strlen(bad[i].field)) == 0, "case %zu: '%s'", i, err);
        int64_t due = 42;
        cr_expect_eq(timing_step_due(&bad[i].timing, 0, 0, z, &due), -1, "case %zu", i);
        cr_expect_eq(due, 42);
    }
    static const struct reminder_timing rbad[] = {
        {.kind = REMINDER_BEFORE_S, .before_s = -1},
        {.kind = REMINDER_BEFORE_DAYS_AT, .days = -1, .at_min = 0},
        {.kind = REMINDER_BEFORE_DAYS_AT, .days = 1, .at_min = 1500},
        {.kind = (enum reminder_kind)9},
    };
    for (size_t i = 0; i < sizeof rbad / sizeof rbad[0]; i++) {
        int64_t due = 42;
        cr_expect_eq(timing_reminder_check(&rbad[i], NULL, 0), -1, "reminder case %zu", i);
        cr_expect_eq(timing_reminder_due(&rbad[i], 0, 0, z, &due), -1, "reminder case %zu", i);
    }
    civil_zone_free(&z);
}

Test(sched_timing, unknown_or_malformed_zone_names_are_refused)
{
    static const char *const bad[] = {
        "Mars/Olympus_Mons", "Asia/Tokyoo",   "../../etc/passwd", "/etc/localtime", "",
        "Asia//Tokyo",       "Europe/Berlin "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        struct civil_zone *z = civil_zone_load(bad[i], NULL, err, sizeof err);
        cr_expect_null(z, "'%s' loaded", bad[i]);
        cr_expect_neq(err[0], '\0', "'%s': no reason", bad[i]);
        civil_zone_free(&z);
    }
}

Test(sched_timing, rfc3339_times_with_any_offset_are_read_as_unix_ms)
{
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"2026-12-02T10:00:00Z", 1796205600000},      {"2026-12-02T19:00:00+09:00", 1796205600000},
        {"2026-12-02t05:00:00-05:00", 1796205600000}, {"2026-12-02T10:00:00.25Z", 1796205600250},
        {"2028-02-29T00:00:00z", 1835395200000},      {"1970-01-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        cr_expect_eq(timing_rfc3339_parse(good[i].text, strlen(good[i].text), &ms), 0, "%s",
                     good[i].text);
        cr_expect_eq(ms, good[i].want, "%s: %lld", good[i].text, (long long)ms);
    }
    static const char *const bad[] = {
        "2026-12-02",
        "2026-12-02T10:00Z",
        "2026-12-02 10:00:00Z",
        "2027-02-29T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-12-02T24:00:00Z",
        "2026-12-02T10:00:60Z",
        "2026-12-02T10:00:00",
        "2026-12-02T10:00:00+0900",
        "2026-12-02T10:00:00+09:00x",
        "2026-12-02T10:00:00.Z",
        "tomorrow",
        "",
        "2026-12-02T10:00:00+24:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        cr_expect_eq(timing_rfc3339_parse(bad[i], strlen(bad[i]), &ms), -1, "'%s' accepted",
                     bad[i]);
        cr_expect_eq(ms, 42);
    }
}

/* The rule under every wall time above, checked on random local times of
 * 2026-2028 in zones with and without DST (Lord Howe's is 30 minutes): the
 * instant shows the target or later, and the second before it showed an
 * earlier time, so it is the first such instant. */
Test(sched_timing, a_wall_time_maps_to_the_first_instant_that_shows_it_or_later)
{
    static const char *const zones[] = {"America/New_York", "Europe/Berlin", "Asia/Tokyo",
                                        "Australia/Lord_Howe", "America/Santiago"};
    uint64_t s = 99;
    int64_t from = civil_days_from_date(2026, 1, 1) * CIVIL_DAY_S;
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        struct civil_zone *z = zone(zones[i]);
        for (int k = 0; k < 20000; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t target = from + (int64_t)((s >> 24) % (3 * 366 * 86400ULL)) / 60 * 60;
            int64_t t = civil_zone_first_instant(z, target);
            cr_assert_geq(t + civil_zone_offset(z, t), target, "%s %lld", zones[i],
                          (long long)target);
            cr_assert_lt(t - 1 + civil_zone_offset(z, t - 1), target, "%s %lld", zones[i],
                         (long long)target);
        }
        civil_zone_free(&z);
    }
}
