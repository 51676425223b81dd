/* Unit tests for services/dispatcher/quota: zone offsets and month windows
 * checked against glibc's localtime_r for real zones with and without DST
 * (this test process is single-threaded, so setenv("TZ") is safe here,
 * unlike in the service), the odd boundaries (DST skipping midnight on the
 * 1st, clocks falling back over midnight), message costs per kind, the
 * allowed / warn / exceeded decisions, and tables of bad input. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dispatcher/quota.h"

#define DAY 86400LL

/* 2025-06-15T03:00:00Z */
#define MID_JUNE_2025 1749956400LL

static void tz_use(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* glibc's view of unix time t in the current TZ. */
static struct tm tz_local(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    cr_assert_not_null(localtime_r(&tt, &tm));
    return tm;
}

static int64_t utc(int y, int m, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = m - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static struct quota_zone *zone_or_fail(const char *name)
{
    char err[256];
    struct quota_zone *z = quota_zone_load(name, NULL, err, sizeof err);
    cr_assert_not_null(z, "%s: %s", name, err);
    return z;
}

static const char *const real_zones[] = {
    "Asia/Tokyo",          "UTC",
    "America/New_York",    "Europe/London",
    "Europe/Berlin",       "Australia/Sydney",
    "Australia/Lord_Howe", "America/Sao_Paulo",
    "America/Havana",      "America/Asuncion",
    "America/Santiago",    "Pacific/Apia",
    "Asia/Kolkata",        "Asia/Kathmandu",
    "Pacific/Chatham",     "America/St_Johns",
    "Africa/Casablanca",   "Asia/Tehran",
    "Europe/Dublin",       "Antarctica/Troll",
};

/* --- zones against glibc ------------------------------------------------------------ */

Test(dispatcher_quota, zone_offsets_match_glibc_from_1970_to_2100)
{
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof real_zones / sizeof real_zones[0]; i++) {
        struct quota_zone *z = zone_or_fail(real_zones[i]);
        tz_use(real_zones[i]);
        for (int k = 0; k < 20000; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t t = (int64_t)((s >> 20) % (uint64_t)(130 * 365 * DAY));
            struct tm tm = tz_local(t);
            cr_assert_eq(quota_zone_offset(z, t), tm.tm_gmtoff, "%s at %lld: %d vs glibc %ld",
                         real_zones[i], (long long)t, quota_zone_offset(z, t), tm.tm_gmtoff);
        }
        quota_zone_free(&z);
        cr_expect_null(z);
    }
}

/* Every month from 1971 to 2060: the start is local 1st, 00:00 or later,
 * and the second before it is still last month (glibc decides). */
Test(dispatcher_quota, month_windows_start_at_local_midnight_on_the_first_per_glibc)
{
    for (size_t i = 0; i < sizeof real_zones / sizeof real_zones[0]; i++) {
        struct quota_zone *z = zone_or_fail(real_zones[i]);
        tz_use(real_zones[i]);
        for (int y = 1971; y <= 2060; y++) {
            for (int m = 1; m <= 12; m++) {
                int64_t start, end;
                quota_month_window(z, utc(y, m, 15, 12, 0, 0), &start, &end);
                struct tm a = tz_local(start), b = tz_local(start - 1);
                cr_assert(a.tm_year + 1900 == y && a.tm_mon + 1 == m && a.tm_mday == 1,
                          "%s %d-%02d: starts on %d-%02d-%02d %02d:%02d", real_zones[i], y, m,
                          a.tm_year + 1900, a.tm_mon + 1, a.tm_mday, a.tm_hour, a.tm_min);
                cr_assert(b.tm_mon + 1 != m, "%s %d-%02d: the second before is %d-%02d-%02d",
                          real_zones[i], y, m, b.tm_year + 1900, b.tm_mon + 1, b.tm_mday);
                struct tm e = tz_local(end);
                cr_assert(e.tm_mday == 1 && e.tm_mon + 1 == m % 12 + 1, "%s %d-%02d: end",
                          real_zones[i], y, m);
                cr_assert_gt(end - start, 27 * DAY);
                cr_assert_lt(end - start, 32 * DAY);
            }
        }
        quota_zone_free(&z);
    }
}

Test(dispatcher_quota, month_windows_for_known_instants)
{
    static const struct {
        const char *zone;
        int64_t now, start, end;
    } cases[] = {
        /* Tokyo: June 2025 starts 2025-05-31T15:00Z. */
        {"Asia/Tokyo", MID_JUNE_2025, 1748703600, 1751295600},
        /* Its last second of May, and its first of June. */
        {"Asia/Tokyo", 1748703599, 1746025200, 1748703600},
        {"Asia/Tokyo", 1748703600, 1748703600, 1751295600},
        {"UTC", MID_JUNE_2025, 1748736000, 1751328000},
        /* New York, March 2025: EST at both ends although DST starts on the
         * 9th; April starts in EDT. */
        {"America/New_York", 1742000000, 1740805200, 1743480000},
        /* Asuncion, October 2017: DST began at midnight on Sunday the 1st,
         * so the month starts at 01:00 -03 (04:00Z). */
        {"America/Asuncion", 1507000000, 1506830400, 1509505200},
        /* Havana, November 2020: clocks fell back from 01:00 to 00:00 on
         * the 1st; the month starts at the first 00:00 (CDT, 04:00Z). */
        {"America/Havana", 1605000000, 1604203200, 1606798800},
        /* Apia skipped 2011-12-30: December still starts on the 1st. */
        {"Pacific/Apia", 1324900000, 1322733600, 1325325600},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct quota_zone *z = zone_or_fail(cases[i].zone);
        int64_t start, end;
        quota_month_window(z, cases[i].now, &start, &end);
        cr_expect_eq(start, cases[i].start, "%s %lld: start %lld", cases[i].zone,
                     (long long)cases[i].now, (long long)start);
        cr_expect_eq(end, cases[i].end, "%s %lld: end %lld", cases[i].zone, (long long)cases[i].now,
                     (long long)end);
        quota_zone_free(&z);
    }
}

/* Synthetic rules for what no real zone does on the 1st at present. */
Test(dispatcher_quota, a_gap_over_midnight_starts_the_month_when_the_clock_jumps)
{
    /* Feb 28 23:30 standard jumps to Mar 1 00:30 daylight (2025, not leap). */
    const char *tz = "AAA0BBB,J59/23:30,J300";
    char err[128];
    struct quota_zone *z = quota_zone_from_posix(tz, err, sizeof err);
    cr_assert_not_null(z, "%s", err);
    int64_t jump = utc(2025, 2, 28, 23, 30, 0);
    int64_t start, end;
    quota_month_window(z, utc(2025, 3, 10, 0, 0, 0), &start, &end);
    cr_expect_eq(start, jump);
    tz_use(tz);
    struct tm a = tz_local(start), b = tz_local(start - 1);
    cr_expect(a.tm_mon == 2 && a.tm_mday == 1 && a.tm_hour == 0 && a.tm_min == 30);
    cr_expect(b.tm_mon == 1 && b.tm_mday == 28 && b.tm_hour == 23 && b.tm_min == 29);
    quota_zone_free(&z);
}

Test(dispatcher_quota, a_fall_back_over_midnight_keeps_the_repeated_hour_in_the_new_month)
{
    /* Mar 1 00:30 daylight (+1) falls back to Feb 28 23:30 standard (0). */
    const char *tz = "AAA0BBB,J100,J59/24:30";
    struct quota_zone *z = quota_zone_from_posix(tz, NULL, 0);
    cr_assert_not_null(z);
    int64_t first_midnight = utc(2025, 2, 28, 23, 0, 0); /* 00:00 at +1 */
    int64_t start, end;
    quota_month_window(z, utc(2025, 3, 10, 0, 0, 0), &start, &end);
    cr_expect_eq(start, first_midnight);
    /* 23:45Z reads "Feb 28 23:45" again, yet March has begun. */
    quota_month_window(z, utc(2025, 2, 28, 23, 45, 0), &start, &end);
    cr_expect_eq(start, first_midnight);
    cr_expect_eq(end, utc(2025, 4, 1, 0, 0, 0));
    quota_month_window(z, first_midnight - 1, &start, &end);
    cr_expect_eq(end, first_midnight);
    quota_zone_free(&z);
}

Test(dispatcher_quota, posix_rules_match_glibc_for_both_hemispheres)
{
    static const char *const rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",       "EST5EDT,M3.2.0,M11.1.0",
        "AEST-10AEDT,M10.1.0,M4.1.0/3",     "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",  "JST-9",
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", "XXX3YYY,J60/1,300/-3",
    };
    uint64_t s = 99;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        char err[128];
        struct quota_zone *z = quota_zone_from_posix(rules[i], err, sizeof err);
        cr_assert_not_null(z, "%s: %s", rules[i], err);
        tz_use(rules[i]);
        for (int k = 0; k < 20000; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t t = (int64_t)((s >> 20) % (uint64_t)(100 * 365 * DAY));
            struct tm tm = tz_local(t);
            cr_assert_eq(quota_zone_offset(z, t), tm.tm_gmtoff, "%s at %lld", rules[i],
                         (long long)t);
        }
        quota_zone_free(&z);
    }
}

/* Without rules, DST follows the US rules (as tzcode does; glibc would read
 * "posixrules" instead, so this is not compared with it). */
Test(dispatcher_quota, a_posix_zone_without_rules_uses_the_us_rules)
{
    struct quota_zone *z = quota_zone_from_posix("EST5EDT", NULL, 0);
    cr_assert_not_null(z);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 7, 1, 0, 0, 0)), -4 * 3600);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 1, 1, 0, 0, 0)), -5 * 3600);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 3, 9, 6, 59, 59)), -5 * 3600);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 3, 9, 7, 0, 0)), -4 * 3600);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 11, 2, 5, 59, 59)), -4 * 3600);
    cr_expect_eq(quota_zone_offset(z, utc(2025, 11, 2, 6, 0, 0)), -5 * 3600);
    quota_zone_free(&z);
}

Test(dispatcher_quota, zones_are_named_and_utc_needs_no_database)
{
    char err[128];
    struct quota_zone *z = quota_zone_load("Etc/UTC", "/nonexistent", err, sizeof err);
    cr_assert_not_null(z, "%s", err);
    cr_expect_str_eq(quota_zone_name(z), "Etc/UTC");
    cr_expect_eq(quota_zone_offset(z, MID_JUNE_2025), 0);
    quota_zone_free(&z);
    quota_zone_free(&z);
    quota_zone_free(NULL);
    z = zone_or_fail("Asia/Tokyo");
    cr_expect_str_eq(quota_zone_name(z), "Asia/Tokyo");
    cr_expect_eq(quota_zone_offset(z, MID_JUNE_2025), 9 * 3600);
    quota_zone_free(&z);
}

/* --- costs -------------------------------------------------------------------------------- */

Test(dispatcher_quota, each_kind_costs_what_line_counts)
{
    static char *three[] = {"U1", "U2", "U3"};
    static const struct {
        Kizuna__V1__SendKind kind;
        const char *limit_json;
        long long audience, cost;
        bool upto;
    } cases[] = {
        {KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY, "", -1, 0, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, "", -1, 1, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST, "", -1, 3, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST, "", 1234, 1234, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "", 100, 100, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":50}", 100, 50, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":500}", 100, 100, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":50}", -1, 50, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"upToRemainingQuota\":true}", 80, 80,
         true},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, "", -1, 0, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, "", -1, 0, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK, "", -1, 0, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK, "", -1, 0, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK, "", -1, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
        req.kind = cases[i].kind;
        req.n_recipients = 3;
        req.recipients = three;
        req.narrowcast_limit_json = (char *)cases[i].limit_json;
        long long cost = -7;
        bool upto = !cases[i].upto;
        char err[128] = "";
        cr_assert_eq(
            quota_cost(&req, cases[i].kind, cases[i].audience, &cost, &upto, err, sizeof err), 0,
            "case %zu: %s", i, err);
        cr_expect_eq(cost, cases[i].cost, "case %zu: %lld", i, cost);
        cr_expect_eq(upto, cases[i].upto, "case %zu", i);
    }
    /* A reply that fell back is costed as the push it became. */
    Kizuna__V1__SendRequest reply = KIZUNA__V1__SEND_REQUEST__INIT;
    reply.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY;
    long long cost = 0;
    cr_assert_eq(
        quota_cost(&reply, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, -1, &cost, NULL, NULL, 0), 0);
    cr_expect_eq(cost, 1);
}

Test(dispatcher_quota, costs_that_cannot_be_known_are_refused)
{
    static const struct {
        Kizuna__V1__SendKind kind;
        const char *limit_json;
        long long audience;
        const char *want;
    } cases[] = {
        {KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST, "", -1, "broadcast: audience size unknown"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "", -1, "narrowcast: audience size unknown"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "[1]", 10, "narrowcast_limit_json: not"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":", 10,
         "narrowcast_limit_json: not"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":0}", 10,
         "narrowcast_limit_json: max"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":\"5\"}", 10,
         "narrowcast_limit_json: max"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"max\":2.5}", 10,
         "narrowcast_limit_json: max"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "{\"upToRemainingQuota\":\"yes\"}", 10,
         "narrowcast_limit_json: upToRemainingQuota"},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_UNSPECIFIED, "", 10, "kind: 0"},
        {(Kizuna__V1__SendKind)42, "", 10, "kind: 42"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
        req.kind = cases[i].kind;
        req.narrowcast_limit_json = (char *)cases[i].limit_json;
        long long cost = -7;
        char err[160] = "";
        cr_expect_eq(
            quota_cost(&req, cases[i].kind, cases[i].audience, &cost, NULL, err, sizeof err), -1,
            "case %zu", i);
        cr_expect(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0, "case %zu: %s", i, err);
    }
}

/* --- decisions -------------------------------------------------------------------------- */

static struct quota_state state_tokyo(struct quota_zone **z, long long contract, long long line)
{
    *z = zone_or_fail("Asia/Tokyo");
    struct quota_limits lim = {contract, line, 0};
    struct quota_state q;
    char err[128];
    cr_assert_eq(quota_state_init(&q, *z, &lim, 0, MID_JUNE_2025, err, sizeof err), 0, "%s", err);
    return q;
}

Test(dispatcher_quota, sends_are_allowed_up_to_the_limit_and_warned_once_at_80_percent)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 1000, QUOTA_NONE);
    static const struct {
        long long cost;
        int want;
        long long used_after;
    } steps[] = {
        {500, QUOTA_ALLOWED, 500},  {299, QUOTA_ALLOWED, 799},  {1, QUOTA_WARN, 800},
        {100, QUOTA_ALLOWED, 900},  {101, QUOTA_EXCEEDED, 900}, {0, QUOTA_ALLOWED, 900},
        {100, QUOTA_ALLOWED, 1000}, {1, QUOTA_EXCEEDED, 1000},  {0, QUOTA_ALLOWED, 1000},
    };
    int64_t t = MID_JUNE_2025;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        long long reserved = -1;
        cr_expect_eq(quota_reserve(&q, steps[i].cost, false, t++, &reserved, NULL), steps[i].want,
                     "step %zu", i);
        cr_expect_eq(reserved, steps[i].want == QUOTA_EXCEEDED ? 0 : steps[i].cost, "step %zu", i);
        cr_expect_eq(q.used, steps[i].used_after, "step %zu", i);
    }
    quota_zone_free(&z);
}

Test(dispatcher_quota, the_effective_limit_is_the_lower_of_contract_and_line)
{
    static const struct {
        long long contract, line, want;
    } cases[] = {
        {1000, 500, 500},
        {500, 1000, 500},
        {1000, QUOTA_NONE, 1000},
        {QUOTA_NONE, 700, 700},
        {QUOTA_NONE, QUOTA_NONE, QUOTA_NONE},
        {0, 1000, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct quota_zone *z;
        struct quota_state q = state_tokyo(&z, cases[i].contract, cases[i].line);
        cr_expect_eq(quota_effective_limit(&q), cases[i].want, "case %zu", i);
        int d = quota_reserve(&q, 1, false, MID_JUNE_2025, NULL, NULL);
        cr_expect_eq(d, cases[i].want == 0 ? QUOTA_EXCEEDED : QUOTA_ALLOWED, "case %zu", i);
        quota_zone_free(&z);
    }
}

Test(dispatcher_quota, the_month_turns_over_at_midnight_in_the_channels_zone)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 100, QUOTA_NONE);
    int64_t last_june_second = 1751295599; /* 2025-06-30 23:59:59 JST */
    cr_expect_eq(quota_reserve(&q, 90, false, last_june_second, NULL, NULL), QUOTA_WARN);
    cr_expect_eq(quota_reserve(&q, 20, false, last_june_second, NULL, NULL), QUOTA_EXCEEDED);
    /* One second later it is July in Tokyo (still June 30 in UTC). */
    cr_expect_eq(quota_reserve(&q, 20, false, last_june_second + 1, NULL, NULL), QUOTA_ALLOWED);
    cr_expect_eq(q.used, 20);
    cr_expect_eq(q.month_start, last_june_second + 1);
    /* The warning fires again in the new month. */
    cr_expect_eq(quota_reserve(&q, 60, false, last_june_second + 2, NULL, NULL), QUOTA_WARN);
    quota_zone_free(&z);
}

Test(dispatcher_quota, up_to_remaining_sends_what_is_left_and_nothing_when_empty)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 100, QUOTA_NONE);
    long long reserved;
    cr_expect_eq(quota_reserve(&q, 90, false, MID_JUNE_2025, &reserved, NULL), QUOTA_WARN);
    cr_expect_eq(quota_reserve(&q, 50, true, MID_JUNE_2025, &reserved, NULL), QUOTA_ALLOWED);
    cr_expect_eq(reserved, 10);
    cr_expect_eq(quota_reserve(&q, 50, true, MID_JUNE_2025, &reserved, NULL), QUOTA_EXCEEDED);
    cr_expect_eq(reserved, 0);
    quota_zone_free(&z);
}

Test(dispatcher_quota, a_release_gives_back_only_within_the_same_month)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 100, QUOTA_NONE);
    long long reserved;
    int64_t month;
    cr_assert_eq(quota_reserve(&q, 30, false, MID_JUNE_2025, &reserved, &month), QUOTA_ALLOWED);
    cr_expect_eq(month, q.month_start);
    quota_release(&q, reserved, month);
    cr_expect_eq(q.used, 0);
    cr_assert_eq(quota_reserve(&q, 30, false, MID_JUNE_2025, &reserved, &month), QUOTA_ALLOWED);
    cr_expect_eq(quota_reserve(&q, 5, false, MID_JUNE_2025 + 30 * DAY, NULL, NULL), QUOTA_ALLOWED);
    quota_release(&q, reserved, month); /* June's reservation, released in July */
    cr_expect_eq(q.used, 5);
    quota_zone_free(&z);
}

Test(dispatcher_quota, lines_own_count_raises_usage_and_can_fire_the_warning)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 1000, QUOTA_NONE);
    cr_expect_eq(quota_reserve(&q, 100, false, MID_JUNE_2025, NULL, NULL), QUOTA_ALLOWED);
    cr_expect_eq(quota_sync_usage(&q, 50, MID_JUNE_2025), QUOTA_ALLOWED);
    cr_expect_eq(q.used, 100, "never lowered");
    cr_expect_eq(quota_sync_usage(&q, 850, MID_JUNE_2025), QUOTA_WARN);
    cr_expect_eq(q.used, 850);
    cr_expect_eq(quota_sync_usage(&q, 900, MID_JUNE_2025), QUOTA_ALLOWED, "warned once");
    quota_zone_free(&z);
}

Test(dispatcher_quota, lines_monthly_limit_answer_stops_costed_sends_until_next_month)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, QUOTA_NONE, QUOTA_NONE);
    quota_mark_exhausted(&q, MID_JUNE_2025);
    cr_expect_eq(quota_reserve(&q, 1, false, MID_JUNE_2025, NULL, NULL), QUOTA_EXCEEDED);
    cr_expect_eq(quota_reserve(&q, 0, false, MID_JUNE_2025, NULL, NULL), QUOTA_ALLOWED,
                 "replies are free");
    cr_expect_eq(quota_reserve(&q, 1, false, MID_JUNE_2025 + 30 * DAY, NULL, NULL), QUOTA_ALLOWED);
    /* A raised limit lifts it too. */
    struct quota_limits lim = {100, QUOTA_NONE, 0};
    cr_assert_eq(quota_set_limits(&q, &lim, NULL, 0), 0);
    quota_mark_exhausted(&q, MID_JUNE_2025 + 30 * DAY);
    lim.contract = 5000;
    cr_assert_eq(quota_set_limits(&q, &lim, NULL, 0), 0);
    cr_expect_eq(quota_reserve(&q, 1, false, MID_JUNE_2025 + 30 * DAY, NULL, NULL), QUOTA_ALLOWED);
    quota_zone_free(&z);
}

Test(dispatcher_quota, a_state_starts_from_the_usage_already_counted)
{
    struct quota_zone *z = zone_or_fail("Asia/Tokyo");
    struct quota_limits lim = {1000, 800, 50};
    struct quota_state q;
    cr_assert_eq(quota_state_init(&q, z, &lim, 399, MID_JUNE_2025, NULL, 0), 0);
    cr_expect_eq(quota_reserve(&q, 1, false, MID_JUNE_2025, NULL, NULL), QUOTA_WARN, "50%% of 800");
    quota_zone_free(&z);
}

/* Found by tests/fuzz/fuzz_quota_sync: LINE's quota and consumption answers
 * may hold any JSON integer, and `used * 100` or `limit * percent`
 * overflowed, so a count of 2^62 skipped the warning (wrapped to 0). */
Test(dispatcher_quota, huge_counts_from_line_still_warn)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, 1000, QUOTA_NONE);
    cr_expect_eq(quota_sync_usage(&q, 4611686018427387904LL, MID_JUNE_2025), QUOTA_WARN);
    quota_zone_free(&z);

    q = state_tokyo(&z, QUOTA_NONE, LLONG_MAX);
    cr_expect_eq(quota_sync_usage(&q, LLONG_MAX / 100 * 79, MID_JUNE_2025), QUOTA_ALLOWED);
    cr_expect_eq(quota_sync_usage(&q, LLONG_MAX / 100 * 81, MID_JUNE_2025), QUOTA_WARN);
    quota_zone_free(&z);
}

/* Found by tests/fuzz/fuzz_quota_sync: with no limit, a send after LINE
 * counted 2^63 - 1 overflowed `used += cost`. The count stays at its
 * largest value and nothing more is reserved. */
Test(dispatcher_quota, usage_at_the_largest_count_does_not_wrap)
{
    struct quota_zone *z;
    struct quota_state q = state_tokyo(&z, QUOTA_NONE, QUOTA_NONE);
    cr_expect_eq(quota_sync_usage(&q, LLONG_MAX - 2, MID_JUNE_2025), QUOTA_ALLOWED);
    long long reserved = -1;
    int64_t month = 0;
    cr_expect_eq(quota_reserve(&q, 5, false, MID_JUNE_2025, &reserved, &month), QUOTA_ALLOWED);
    cr_expect_eq(q.used, LLONG_MAX);
    cr_expect_eq(reserved, 2, "only what fits is counted");
    quota_release(&q, reserved, month);
    cr_expect_eq(q.used, LLONG_MAX - 2);
    quota_zone_free(&z);
}

/* --- bad input ----------------------------------------------------------------------------- */

Test(dispatcher_quota, unknown_and_malformed_zone_names_are_refused)
{
    static const struct {
        const char *name;
        const char *want;
    } cases[] = {
        {"Mars/Olympus_Mons", "unknown"},
        {"Asia/Tokio", "unknown"},
        {"asia/tokyo", "unknown"},
        {"../../etc/passwd", "not an IANA"},
        {"/etc/localtime", "not an IANA"},
        {"Asia//Tokyo", "not an IANA"},
        {"Asia/Tokyo/", "not an IANA"},
        {"Asia/./Tokyo", "not an IANA"},
        {"", "not an IANA"},
        {".", "not an IANA"},
        {"Asia/Tok yo", "not an IANA"},
        {"Asia/Tokyo\n", "not an IANA"},
        {"Asia/Tokyo;rm", "not an IANA"},
        {"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/B", "not an IANA"},
        {"right/Asia/Tokyo", "leap-second"},
        {"zone.tab", "not a TZif"},
        {"Asia", "cannot read"},
        {NULL, "not an IANA"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        struct quota_zone *z = quota_zone_load(cases[i].name, NULL, err, sizeof err);
        cr_expect_null(z, "%s", cases[i].name ? cases[i].name : "(null)");
        quota_zone_free(&z);
        cr_expect(strstr(err, cases[i].want) != NULL, "%s: %s",
                  cases[i].name ? cases[i].name : "(null)", err);
    }
}

static unsigned char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    unsigned char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

Test(dispatcher_quota, damaged_tzif_data_is_refused)
{
    size_t len;
    unsigned char *good = file_read("/usr/share/zoneinfo/Europe/Berlin", &len);
    unsigned char *bad = malloc(len + 64);
    cr_assert_not_null(bad);
    char err[256];
    struct quota_zone *z = quota_zone_from_tzif("Europe/Berlin", good, len, err, sizeof err);
    cr_assert_not_null(z, "%s", err);
    quota_zone_free(&z);

    /* Every truncation is refused, never read past the end. */
    for (size_t cut = 0; cut < len; cut += (cut < 100 ? 1 : 37)) {
        memcpy(bad, good, cut);
        z = quota_zone_from_tzif("cut", bad, cut, err, sizeof err);
        cr_expect_null(z, "cut at %zu accepted", cut);
        quota_zone_free(&z);
    }
    static const struct {
        size_t at;
        unsigned char byte;
        const char *want;
    } flips[] = {
        {0, 'X', "not a TZif"}, /* magic */
        {4, '1', "unknown TZif version"},
        {4, 'Z', "unknown TZif version"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(bad, good, len);
        bad[flips[i].at] = flips[i].byte;
        z = quota_zone_from_tzif("flip", bad, len, err, sizeof err);
        cr_expect_null(z, "flip %zu", i);
        cr_expect(strstr(err, flips[i].want) != NULL, "flip %zu: %s", i, err);
        quota_zone_free(&z);
    }
    /* A footer rule that is not POSIX. */
    memcpy(bad, good, len);
    size_t fstart = len - 2;
    while (fstart > 0 && bad[fstart] != '\n')
        fstart--;
    memcpy(bad + fstart + 1, "C1\n", 3);
    z = quota_zone_from_tzif("footer", bad, fstart + 4, err, sizeof err);
    cr_expect_null(z);
    cr_expect(strstr(err, "footer rule") != NULL, "%s", err);
    /* No footer at all after the 64-bit data. */
    z = quota_zone_from_tzif("nofooter", good, fstart, err, sizeof err);
    cr_expect_null(z);
    cr_expect_null(quota_zone_from_tzif("null", NULL, 0, err, sizeof err));
    free(bad);
    free(good);
}

Test(dispatcher_quota, malformed_posix_rules_are_refused)
{
    static const char *const cases[] = {
        "",
        "J",
        "JS-9",
        "JST",
        "JST-9X",
        "JST-25",
        "<JS>-9",
        "<J$T>-9",
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0/3",
        "CET-1CEST,M3.6.0,M10.5.0/3",
        "CET-1CEST,M3.5.7,M10.5.0/3",
        "CET-1CEST,M3.5.0,M10.5.0/168",
        "CET-1CEST,J0,J365",
        "CET-1CEST,366,J365",
        "CET-1CEST,M3.5.0,M10.5.0/3,",
        "CET-1:60",
        "Asia/Tokyo",
        NULL,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[128] = "";
        struct quota_zone *z = quota_zone_from_posix(cases[i], err, sizeof err);
        cr_expect_null(z, "'%s' accepted", cases[i] ? cases[i] : "(null)");
        quota_zone_free(&z);
        cr_expect(strstr(err, "not a POSIX TZ rule") != NULL, "%s", err);
    }
}

Test(dispatcher_quota, negative_limits_and_bad_arguments_are_refused)
{
    static const struct {
        struct quota_limits lim;
        const char *field;
    } cases[] = {
        {{-2, QUOTA_NONE, 0}, "contract"}, {{-1000, 10, 0}, "contract"},    {{10, -2, 0}, "line"},
        {{10, 10, -1}, "warn_percent"},    {{10, 10, 101}, "warn_percent"},
    };
    struct quota_zone *z = zone_or_fail("Asia/Tokyo");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[128] = "";
        struct quota_state q;
        cr_expect_eq(quota_limits_check(&cases[i].lim, err, sizeof err), -1, "case %zu", i);
        cr_expect(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0, "case %zu: %s", i,
                  err);
        cr_expect_eq(quota_state_init(&q, z, &cases[i].lim, 0, MID_JUNE_2025, NULL, 0), -1);
        struct quota_limits ok = {100, QUOTA_NONE, 0};
        cr_assert_eq(quota_state_init(&q, z, &ok, 0, MID_JUNE_2025, NULL, 0), 0);
        cr_expect_eq(quota_set_limits(&q, &cases[i].lim, NULL, 0), -1);
        cr_expect_eq(quota_effective_limit(&q), 100, "case %zu: limits kept", i);
    }
    struct quota_limits ok = {100, QUOTA_NONE, 0};
    struct quota_state q;
    char err[128] = "";
    cr_expect_eq(quota_state_init(&q, z, &ok, -5, MID_JUNE_2025, err, sizeof err), -1);
    cr_expect(strncmp(err, "used", 4) == 0, "%s", err);
    cr_expect_eq(quota_state_init(&q, NULL, &ok, 0, MID_JUNE_2025, NULL, 0), -1);
    cr_expect_eq(quota_state_init(&q, z, NULL, 0, MID_JUNE_2025, NULL, 0), -1);
    cr_assert_eq(quota_state_init(&q, z, &ok, 0, MID_JUNE_2025, NULL, 0), 0);
    cr_expect_eq(quota_reserve(&q, -1, false, MID_JUNE_2025, NULL, NULL), -1);
    cr_expect_eq(quota_reserve(NULL, 1, false, MID_JUNE_2025, NULL, NULL), -1);
    cr_expect_eq(quota_sync_usage(&q, -1, MID_JUNE_2025), -1);
    quota_release(&q, -10, q.month_start);
    cr_expect_eq(q.used, 0);
    long long cost;
    cr_expect_eq(quota_cost(NULL, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, 0, &cost, NULL, NULL, 0),
                 -1);
    quota_zone_free(&z);
}
