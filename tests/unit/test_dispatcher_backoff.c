/* Unit tests for services/dispatcher/backoff: the full-jitter ceilings per
 * attempt, Retry-After as a floor, the 24-hour deadline, determinism with an
 * injected RNG, the three HTTP-date forms of RFC 9110, and tables of bad
 * Retry-After values and bad policies. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "dispatcher/backoff.h"

#define MS 1000000LL
#define SEC 1000000000LL

/* An RNG that always returns *ctx. */
static uint64_t rng_fixed(void *ctx)
{
    return *(uint64_t *)ctx;
}

/* 2025-06-01T00:00:00Z: a "now" for the tests. */
#define NOW_S 1748736000LL
#define NOW_NS (NOW_S * SEC)

/* --- the policy ----------------------------------------------------------------- */

Test(dispatcher_backoff, the_default_policy_is_500ms_base_5min_cap_24h_deadline)
{
    struct backoff_policy p = backoff_policy_default();
    cr_expect_eq(p.base_ns, 500 * MS);
    cr_expect_eq(p.cap_ns, 300 * SEC);
    cr_expect_eq(p.deadline_ns, 86400 * SEC);
    cr_expect_eq(backoff_policy_check(&p, NULL, 0), 0);
}

/* With the RNG returning c, the delay is c if the ceiling is >= c; with c+1
 * it is 0 if the ceiling is exactly c. Together: the ceiling is exactly c. */
Test(dispatcher_backoff, the_jitter_ceiling_doubles_per_attempt_up_to_the_cap)
{
    static const struct {
        int attempts;
        int64_t ceiling;
    } cases[] = {
        {1, 500 * MS},   {2, 1 * SEC},    {3, 2 * SEC},    {4, 4 * SEC},         {5, 8 * SEC},
        {6, 16 * SEC},   {7, 32 * SEC},   {8, 64 * SEC},   {9, 128 * SEC},       {10, 256 * SEC},
        {11, 300 * SEC}, {12, 300 * SEC}, {64, 300 * SEC}, {INT_MAX, 300 * SEC},
    };
    struct backoff_policy p = backoff_policy_default();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = (uint64_t)cases[i].ceiling;
        struct backoff_rng rng = {rng_fixed, &v};
        int64_t d = -1;
        cr_assert_eq(backoff_next(&p, cases[i].attempts, NOW_NS, NOW_NS, -1, &rng, &d), 0);
        cr_expect_eq(d, cases[i].ceiling, "attempt %d: %lld", cases[i].attempts, (long long)d);
        v++;
        cr_assert_eq(backoff_next(&p, cases[i].attempts, NOW_NS, NOW_NS, -1, &rng, &d), 0);
        cr_expect_eq(d, 0, "attempt %d: ceiling above %lld", cases[i].attempts,
                     (long long)cases[i].ceiling);
    }
}

Test(dispatcher_backoff, full_jitter_spreads_delays_over_the_whole_range)
{
    struct backoff_policy p = backoff_policy_default();
    uint64_t seed = 1;
    struct backoff_rng rng = {backoff_rng_splitmix64, &seed};
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t d;
        cr_assert_eq(backoff_next(&p, 4, NOW_NS, NOW_NS, -1, &rng, &d), 0);
        cr_assert(d >= 0 && d <= 4 * SEC, "%lld", (long long)d);
        if (d < lo)
            lo = d;
        if (d > hi)
            hi = d;
    }
    cr_expect_lt(lo, 4 * SEC / 100);
    cr_expect_gt(hi, 4 * SEC * 99 / 100);
}

Test(dispatcher_backoff, the_same_seed_gives_the_same_delays)
{
    struct backoff_policy p = backoff_policy_default();
    uint64_t s1 = 99, s2 = 99;
    struct backoff_rng r1 = {backoff_rng_splitmix64, &s1}, r2 = {backoff_rng_splitmix64, &s2};
    for (int a = 1; a < 30; a++) {
        int64_t d1, d2;
        cr_assert_eq(backoff_next(&p, a, NOW_NS, NOW_NS, -1, &r1, &d1), 0);
        cr_assert_eq(backoff_next(&p, a, NOW_NS, NOW_NS, -1, &r2, &d2), 0);
        cr_expect_eq(d1, d2, "attempt %d", a);
    }
}

Test(dispatcher_backoff, retry_after_is_a_floor_never_a_ceiling)
{
    static const struct {
        uint64_t rng;
        int64_t retry_after, want;
    } cases[] = {
        {0, 30 * SEC, 30 * SEC},        /* jitter 0: wait Retry-After */
        {400 * MS, 100 * MS, 400 * MS}, /* jitter above Retry-After: keep it */
        {0, 0, 0},                      /* Retry-After: 0 */
        {0, -1, 0},                     /* none */
        {0, 3600 * SEC, 3600 * SEC},    /* above the cap: still honoured */
    };
    struct backoff_policy p = backoff_policy_default();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = cases[i].rng;
        struct backoff_rng rng = {rng_fixed, &v};
        int64_t d = -1;
        cr_assert_eq(backoff_next(&p, 1, NOW_NS, NOW_NS, cases[i].retry_after, &rng, &d), 0);
        cr_expect_eq(d, cases[i].want, "case %zu: %lld", i, (long long)d);
    }
}

Test(dispatcher_backoff, nothing_is_retried_after_the_deadline)
{
    struct backoff_policy p = backoff_policy_default();
    uint64_t v = 300 * SEC;
    struct backoff_rng rng = {rng_fixed, &v};
    int64_t first = NOW_NS, d = 12345;
    /* At or past 24 h: exhausted, and *delay untouched. */
    cr_expect_eq(backoff_next(&p, 20, first, first + 86400 * SEC, -1, &rng, &d), BACKOFF_EXHAUSTED);
    cr_expect_eq(backoff_next(&p, 20, first, first + 90000 * SEC, -1, &rng, &d), BACKOFF_EXHAUSTED);
    cr_expect_eq(d, 12345);
    /* One minute before: the 5-minute wait is cut to end at the deadline. */
    cr_assert_eq(backoff_next(&p, 20, first, first + 86340 * SEC, -1, &rng, &d), 0);
    cr_expect_eq(d, 60 * SEC);
    /* ...unless Retry-After points past the deadline: then give up. */
    cr_expect_eq(backoff_next(&p, 20, first, first + 86340 * SEC, 61 * SEC, &rng, &d),
                 BACKOFF_EXHAUSTED);
    cr_assert_eq(backoff_next(&p, 20, first, first + 86340 * SEC, 60 * SEC, &rng, &d), 0);
    cr_expect_eq(d, 60 * SEC);
}

/* A whole retry history under the default policy: the sum of waits never
 * passes the deadline, and the number of attempts is what 5-minute caps in
 * 24 hours allow. */
Test(dispatcher_backoff, a_retry_history_ends_within_24_hours)
{
    struct backoff_policy p = backoff_policy_default();
    uint64_t seed = 5;
    struct backoff_rng rng = {backoff_rng_splitmix64, &seed};
    int64_t first = NOW_NS, now = first;
    int attempts = 1, rc;
    int64_t d;
    while ((rc = backoff_next(&p, attempts, first, now, -1, &rng, &d)) == 0) {
        now += d + 200 * MS; /* the attempt itself takes a while */
        attempts++;
        cr_assert_lt(attempts, 100000);
    }
    cr_expect_eq(rc, BACKOFF_EXHAUSTED);
    cr_expect_leq(now - first, 86400 * SEC + 200 * MS);
    cr_expect_gt(attempts, 288, "24 h of waits averaging 150 s: %d", attempts);
}

/* --- Retry-After and HTTP-date --------------------------------------------------------- */

Test(dispatcher_backoff, http_dates_in_all_three_forms_parse_to_the_same_instant)
{
    static const struct {
        const char *text;
        int64_t unix_s;
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Sun Nov 16 08:49:37 1994", 784975777},
        {"Thu, 29 Feb 2024 00:00:00 GMT", 1709164800},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Fri, 31 Dec 1999 23:59:59 GMT", 946684799},
        /* Two-digit years: up to 50 years ahead stay in this century. */
        {"Monday, 01-Jan-30 00:00:00 GMT", 1893456000},
        {"Monday, 01-Jan-75 00:00:00 GMT", 3313526400},
        {"Monday, 01-Jan-76 00:00:00 GMT", 189302400},
        /* The day name is not checked against the date. */
        {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = -1;
        cr_expect_eq(backoff_http_date_parse(cases[i].text, NOW_S, &got), 0, "%s", cases[i].text);
        cr_expect_eq(got, cases[i].unix_s, "%s: %lld", cases[i].text, (long long)got);
    }
}

Test(dispatcher_backoff, retry_after_reads_delta_seconds_and_dates)
{
    static const struct {
        const char *text;
        int64_t wait_ns;
    } cases[] = {
        {"120", 120 * SEC},
        {"0", 0},
        {"007", 7 * SEC},
        {" 5 ", 5 * SEC},
        {"\t9\t", 9 * SEC},
        {"2147483648", 2147483648LL * SEC},
        {"99999999999999999999999", 2147483648LL * SEC}, /* RFC 9110 1.2.2 */
        {"Sun, 01 Jun 2025 00:01:30 GMT", 90 * SEC},
        {"Sunday, 01-Jun-25 00:00:10 GMT", 10 * SEC},
        {"Sun Jun  1 01:00:00 2025", 3600 * SEC},
        {"Sat, 31 May 2025 23:00:00 GMT", 0},                  /* in the past */
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0},                  /* long past */
        {"Fri, 31 Dec 9999 23:59:59 GMT", 2147483648LL * SEC}, /* far future */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = -1;
        cr_expect_eq(backoff_retry_after_parse(cases[i].text, NOW_NS, &got), 0, "'%s'",
                     cases[i].text);
        cr_expect_eq(got, cases[i].wait_ns, "'%s': %lld", cases[i].text, (long long)got);
    }
    /* A date counts from now to the second, not rounded to whole seconds. */
    int64_t got;
    cr_assert_eq(
        backoff_retry_after_parse("Sun, 01 Jun 2025 00:00:02 GMT", NOW_NS + 500 * MS, &got), 0);
    cr_expect_eq(got, 1500 * MS);
}

Test(dispatcher_backoff, garbage_retry_after_values_are_refused)
{
    static const char *const cases[] = {
        "",
        "   ",
        "-5",
        "+5",
        "5s",
        "1.5",
        "5 5",
        "0x10",
        "soon",
        "\xd9\xa1\xd9\xa2", /* Arabic-Indic digits */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun, 31 Feb 2024 00:00:00 GMT",
        "Sun, 29 Feb 2023 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Funday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "06 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "1234567890123456789012345678901234567890123456789012345678901234567890",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = 777;
        cr_expect_eq(backoff_retry_after_parse(cases[i], NOW_NS, &got), -1, "'%s'", cases[i]);
        cr_expect_eq(got, 777, "'%s' wrote the output", cases[i]);
    }
    int64_t got;
    cr_expect_eq(backoff_retry_after_parse(NULL, NOW_NS, &got), -1);
    cr_expect_eq(backoff_retry_after_parse("5", NOW_NS, NULL), -1);
    cr_expect_eq(backoff_http_date_parse(NULL, NOW_S, &got), -1);
}

Test(dispatcher_backoff, bad_policies_and_arguments_are_refused)
{
    static const struct {
        struct backoff_policy p;
        const char *field;
    } cases[] = {
        {{0, 300 * SEC, 86400 * SEC}, "base"},
        {{-1, 300 * SEC, 86400 * SEC}, "base"},
        {{500 * MS, 499 * MS, 86400 * SEC}, "cap"},
        {{500 * MS, 300 * SEC, 0}, "deadline"},
        {{500 * MS, 300 * SEC, -86400 * SEC}, "deadline"},
    };
    uint64_t v = 0;
    struct backoff_rng rng = {rng_fixed, &v};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[128] = "";
        int64_t d;
        cr_expect_eq(backoff_policy_check(&cases[i].p, err, sizeof err), -1, "case %zu", i);
        cr_expect(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0, "case %zu: %s", i,
                  err);
        cr_expect_eq(backoff_next(&cases[i].p, 1, NOW_NS, NOW_NS, -1, &rng, &d), BACKOFF_EINVAL);
    }
    struct backoff_policy p = backoff_policy_default();
    struct backoff_rng no_fn = {NULL, &v};
    int64_t d;
    cr_expect_eq(backoff_next(&p, 0, NOW_NS, NOW_NS, -1, &rng, &d), BACKOFF_EINVAL);
    cr_expect_eq(backoff_next(&p, -3, NOW_NS, NOW_NS, -1, &rng, &d), BACKOFF_EINVAL);
    cr_expect_eq(backoff_next(&p, 1, NOW_NS, NOW_NS, -1, NULL, &d), BACKOFF_EINVAL);
    cr_expect_eq(backoff_next(&p, 1, NOW_NS, NOW_NS, -1, &no_fn, &d), BACKOFF_EINVAL);
    cr_expect_eq(backoff_next(&p, 1, NOW_NS, NOW_NS, -1, &rng, NULL), BACKOFF_EINVAL);
    cr_expect_eq(backoff_next(NULL, 1, NOW_NS, NOW_NS, -1, &rng, &d), BACKOFF_EINVAL);
    cr_expect_eq(backoff_policy_check(NULL, NULL, 0), -1);
}
