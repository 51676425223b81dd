/* Unit tests for services/dispatcher/ratelimit: LINE's default rates, the
 * exact "never more than limit in any window" guarantee under random request
 * times (a property test on a simulated clock), sustained throughput of at
 * least 98% of the limit for a greedy caller, per-channel overrides, and a
 * table of bad rates. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/ratelimit.h"

#define MS 1000000LL
#define SEC 1000000000LL

/* splitmix64: a small deterministic PRNG, so every run sees the same times. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rng_below(uint64_t *s, int64_t n)
{
    return n <= 0 ? 0 : (int64_t)(rng_next(s) % (uint64_t)n);
}

/* The most "go"s in any half-open window of window_ns, over sorted times:
 * for each go, the window that ends at it. */
static size_t max_in_window(const int64_t *t, size_t n, int64_t window_ns)
{
    size_t best = 0, i = 0;
    for (size_t j = 0; j < n; j++) {
        while (t[j] - t[i] >= window_ns)
            i++;
        if (j - i + 1 > best)
            best = j - i + 1;
    }
    return best;
}

/* --- defaults and names ---------------------------------------------------- */

Test(dispatcher_ratelimit, defaults_are_lines_documented_limits)
{
    static const struct {
        enum ratelimit_class cls;
        long limit, period_s;
    } cases[] = {
        {RATELIMIT_REPLY, 2000, 1},
        {RATELIMIT_PUSH, 2000, 1},
        {RATELIMIT_MULTICAST, 200, 1},
        {RATELIMIT_BROADCAST, 60, 3600},
        {RATELIMIT_NARROWCAST, 60, 3600},
        {RATELIMIT_PROFILE, 2000, 1},
        {RATELIMIT_RICHMENU_LINK, 2000, 1},
        {RATELIMIT_RICHMENU_UNLINK, 2000, 1},
        {RATELIMIT_RICHMENU_BULK_LINK, 2000, 1},
        {RATELIMIT_RICHMENU_BULK_UNLINK, 2000, 1},
        {RATELIMIT_QUOTA, 2000, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ratelimit_rate r = ratelimit_default(cases[i].cls);
        cr_expect_eq(r.limit, cases[i].limit, "%s", ratelimit_class_name(cases[i].cls));
        cr_expect_eq(r.period_s, cases[i].period_s, "%s", ratelimit_class_name(cases[i].cls));
        cr_expect_eq(r.burst, 0);
    }
}

Test(dispatcher_ratelimit, class_names_round_trip_and_unknown_names_are_refused)
{
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++)
        cr_expect_eq(ratelimit_class_parse(ratelimit_class_name((enum ratelimit_class)i)), i);
    cr_expect_eq(ratelimit_class_parse("Push"), -1);
    cr_expect_eq(ratelimit_class_parse(""), -1);
    cr_expect_eq(ratelimit_class_parse(NULL), -1);
    cr_expect_str_eq(ratelimit_class_name(RATELIMIT_CLASS_COUNT), "?");
}

/* --- one bucket ---------------------------------------------------------------- */

Test(dispatcher_ratelimit, a_fresh_bucket_lets_the_burst_go_then_spaces_requests)
{
    static const struct {
        struct ratelimit_rate rate;
        long burst;          /* "go"s at one instant */
        int64_t interval_ns; /* then one per interval */
    } cases[] = {
        {{2000, 1, 0}, 20, 504796},   /* ceil(1e9 / 1981) */
        {{200, 1, 0}, 2, 5025126},    /* ceil(1e9 / 199) */
        {{60, 3600, 0}, 1, 60 * SEC}, /* burst 1: exactly 60/hour */
        {{10, 1, 5}, 5, 166666667},   /* ceil(1e9 / 6) */
        {{1, 1, 0}, 1, SEC},          /* one per second */
        {{100, 1, 100}, 100, SEC},    /* all burst: then 1 per period */
        {{5000, 2, 0}, 50, 403959},   /* ceil(2e9 / 4951) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ratelimit_bucket b;
        char err[128];
        cr_assert_eq(ratelimit_bucket_init(&b, &cases[i].rate, err, sizeof err), 0, "%s", err);
        cr_expect_eq(b.interval_ns, cases[i].interval_ns, "case %zu", i);
        int64_t t0 = 1000 * SEC;
        for (long k = 0; k < cases[i].burst; k++)
            cr_assert_eq(ratelimit_bucket_take(&b, t0), 0, "case %zu go %ld", i, k);
        int64_t wait = ratelimit_bucket_take(&b, t0);
        cr_expect_eq(wait, cases[i].interval_ns, "case %zu: wait %lld", i, (long long)wait);
        cr_expect_gt(ratelimit_bucket_take(&b, t0 + wait - 1), 0, "case %zu: 1 ns early", i);
        cr_expect_eq(ratelimit_bucket_take(&b, t0 + wait), 0, "case %zu: on time", i);
    }
}

Test(dispatcher_ratelimit, a_refused_request_is_not_counted)
{
    struct ratelimit_rate rate = {1, 1, 0};
    struct ratelimit_bucket b;
    cr_assert_eq(ratelimit_bucket_init(&b, &rate, NULL, 0), 0);
    cr_assert_eq(ratelimit_bucket_take(&b, 0), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_gt(ratelimit_bucket_take(&b, SEC / 2), 0);
    cr_expect_eq(ratelimit_bucket_take(&b, SEC), 0, "asking often must not push the go back");
}

Test(dispatcher_ratelimit, a_limit_of_zero_is_unlimited)
{
    struct ratelimit_rate rate = {0, 1, 0};
    struct ratelimit_bucket b;
    cr_assert_eq(ratelimit_bucket_init(&b, &rate, NULL, 0), 0);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(ratelimit_bucket_take(&b, 5), 0);
}

/* The case a classic bucket (burst = limit, refill = limit/s) gets wrong:
 * idle long enough to be full, a full burst just before a refill boundary,
 * then greedy sending. The window straddling both must still hold <= limit. */
Test(dispatcher_ratelimit, a_full_bucket_never_doubles_the_rate_across_a_window_boundary)
{
    struct ratelimit_rate rate = {2000, 1, 0};
    struct ratelimit_bucket b;
    cr_assert_eq(ratelimit_bucket_init(&b, &rate, NULL, 0), 0);
    size_t cap = 10000, n = 0;
    int64_t *go = malloc(cap * sizeof *go);
    cr_assert_not_null(go);
    int64_t t = 3600 * SEC + 999 * MS;
    while (t < 3600 * SEC + 3 * SEC && n < cap) {
        int64_t w = ratelimit_bucket_take(&b, t);
        if (w == 0)
            go[n++] = t;
        else
            t += w;
    }
    cr_expect_leq(max_in_window(go, n, SEC), 2000);
    free(go);
}

/* --- the guarantee, as properties -------------------------------------------- */

struct rate_case {
    long limit, period_s, burst;
};

/* Random request times: bursts at one instant, tight gaps, gaps near the
 * interval, and idle stretches of several periods. No window of the period
 * may ever hold more than the limit. */
Test(dispatcher_ratelimit, random_request_times_never_exceed_the_limit_in_any_window)
{
    static const struct rate_case cases[] = {
        {2000, 1, 0},  {2000, 1, 1},   {2000, 1, 2000}, {200, 1, 0},    {200, 1, 37},
        {60, 3600, 0}, {60, 3600, 60}, {1, 1, 0},       {2, 1, 0},      {3, 1, 2},
        {7, 2, 0},     {1000, 60, 0},  {5000, 1, 0},    {5000, 1, 333}, {17, 1, 17},
    };
    uint64_t seed = 42;
    size_t cap = 60000;
    int64_t *go = malloc(cap * sizeof *go);
    cr_assert_not_null(go);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int run = 0; run < 4; run++) {
            struct ratelimit_rate rate = {cases[c].limit, cases[c].period_s, cases[c].burst};
            struct ratelimit_bucket b;
            cr_assert_eq(ratelimit_bucket_init(&b, &rate, NULL, 0), 0);
            int64_t period = rate.period_s * SEC;
            int64_t interval = b.interval_ns;
            int64_t t = rng_below(&seed, 1000 * SEC);
            size_t n = 0;
            for (int k = 0; k < 50000 && n < cap; k++) {
                if (ratelimit_bucket_take(&b, t) == 0)
                    go[n++] = t;
                switch (rng_below(&seed, 10)) {
                case 0:
                case 1:
                    break; /* another request at the same instant */
                case 2:
                case 3:
                case 4:
                    t += rng_below(&seed, interval / 4 + 1);
                    break;
                case 5:
                case 6:
                case 7:
                case 8:
                    t += interval / 2 + rng_below(&seed, interval + 1);
                    break;
                default:
                    if (rng_below(&seed, 20) == 0)
                        t += rng_below(&seed, 3 * period);
                    else
                        t += rng_below(&seed, 5 * interval + 1);
                    break;
                }
            }
            size_t worst = max_in_window(go, n, period);
            cr_expect_leq(worst, (size_t)rate.limit,
                          "limit %ld/%lds burst %ld run %d: %zu in one window", rate.limit,
                          rate.period_s, rate.burst, run, worst);
            cr_expect_gt(n, 0);
        }
    }
    free(go);
}

/* A greedy caller that comes back when told (a little late, as a real loop
 * is) keeps at least 98% of the limit and never exceeds it. */
Test(dispatcher_ratelimit, a_greedy_caller_sustains_at_least_98_percent_of_the_limit)
{
    static const struct rate_case cases[] = {
        {2000, 1, 0}, {200, 1, 0}, {60, 3600, 0}, {1000, 1, 0}, {5000, 1, 0}, {8000, 1, 0},
    };
    uint64_t seed = 7;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ratelimit_rate rate = {cases[c].limit, cases[c].period_s, cases[c].burst};
        struct ratelimit_bucket b;
        cr_assert_eq(ratelimit_bucket_init(&b, &rate, NULL, 0), 0);
        int64_t period = rate.period_s * SEC;
        int periods = 30;
        size_t cap = (size_t)rate.limit * (size_t)periods + 16, n = 0;
        int64_t *go = malloc(cap * sizeof *go);
        cr_assert_not_null(go);
        int64_t start = 5 * SEC, t = start;
        while (t < start + periods * period && n < cap) {
            int64_t w = ratelimit_bucket_take(&b, t);
            if (w == 0)
                go[n++] = t;
            /* 0..20 us late: the loop's own scheduling delay. */
            t += w + rng_below(&seed, 20000);
        }
        double per_period = (double)n / periods;
        cr_expect_geq(per_period, 0.98 * (double)rate.limit, "limit %ld/%lds: %.1f per period",
                      rate.limit, rate.period_s, per_period);
        cr_expect_leq(max_in_window(go, n, period), (size_t)rate.limit, "limit %ld", rate.limit);
        free(go);
    }
}

/* With a margin M, no window of period + M holds more than the limit, so
 * "go"s delayed by anything between 0 and M on their way still arrive at
 * most `limit` to any window of one period. */
Test(dispatcher_ratelimit, with_a_margin_jittered_arrivals_stay_within_the_limit)
{
    static const struct rate_case cases[] = {
        {2000, 1, 0}, {2000, 1, 5}, {2000, 1, 20}, {200, 1, 0}, {50, 1, 0}, {8000, 1, 0},
    };
    static const int64_t margins[] = {5 * MS, 10 * MS};
    uint64_t seed = 99;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t m = 0; m < sizeof margins / sizeof margins[0]; m++) {
            struct ratelimit_rate rate = {cases[c].limit, cases[c].period_s, cases[c].burst};
            struct ratelimit_bucket b;
            cr_assert_eq(ratelimit_bucket_init_margin(&b, &rate, margins[m], NULL, 0), 0);
            int64_t period = rate.period_s * SEC;
            size_t cap = (size_t)rate.limit * 12 + 16, n = 0;
            int64_t *arr = malloc(cap * sizeof *arr);
            cr_assert_not_null(arr);
            int64_t t = 3 * SEC;
            while (t < 13 * SEC && n < cap) {
                int64_t w = ratelimit_bucket_take(&b, t);
                if (w == 0)
                    arr[n++] = t + rng_below(&seed, margins[m] + 1); /* its arrival */
                t += w + rng_below(&seed, 20000);
            }
            /* Arrivals, sorted (insertion sort: nearly sorted already). */
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && arr[j - 1] > arr[j]; j--) {
                    int64_t x = arr[j];
                    arr[j] = arr[j - 1];
                    arr[j - 1] = x;
                }
            cr_expect_leq(max_in_window(arr, n, period), (size_t)rate.limit,
                          "limit %ld burst %ld margin %lld ms", rate.limit, rate.burst,
                          (long long)(margins[m] / MS));
            free(arr);
        }
}

/* What the margin costs: the sustained rate falls by period / (period + M)
 * and no more, so LINE's 2,000/s with 5 ms keeps at least 98%. */
Test(dispatcher_ratelimit, a_margin_costs_only_its_share_of_the_period)
{
    struct ratelimit_rate rate = {2000, 1, 0};
    struct ratelimit_bucket plain, wide;
    cr_assert_eq(ratelimit_bucket_init(&plain, &rate, NULL, 0), 0);
    cr_assert_eq(ratelimit_bucket_init_margin(&wide, &rate, 5 * MS, NULL, 0), 0);
    /* 1981 slots per second without; per 1.005 s with. */
    cr_expect_eq(plain.interval_ns, (SEC + 1980) / 1981);
    cr_expect_eq(wide.interval_ns, (SEC + 5 * MS + 1980) / 1981);
    double sustained = (double)SEC / (double)wide.interval_ns;
    cr_expect_geq(sustained, 0.98 * 2000, "%.1f/s", sustained);
    /* An hour's limit does not notice 5 ms. */
    struct ratelimit_rate hourly = {60, 3600, 0};
    cr_assert_eq(ratelimit_bucket_init_margin(&wide, &hourly, 5 * MS, NULL, 0), 0);
    cr_expect_eq(wide.interval_ns, (3600 * SEC + 5 * MS + 59) / 60);
}

Test(dispatcher_ratelimit, a_table_margin_applies_to_new_channels_and_overrides)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    char err[128] = "";
    cr_assert_eq(ratelimit_set_margin(rl, 100 * MS, err, sizeof err), 0, "%s", err);
    struct ratelimit_rate raised = {300, 1, 0};
    cr_assert_eq(ratelimit_set(rl, "raised", RATELIMIT_MULTICAST, &raised, 0, err, sizeof err), 0,
                 "%s", err);
    /* Drain each bucket greedily for 1.1 s: no more than the limit goes,
     * and not much less. */
    static const struct {
        const char *channel;
        int limit;
    } cases[] = {{"default", 200}, {"raised", 300}};
    int64_t now = 10 * SEC;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t t = now;
        int n = 0;
        while (t < now + 1100 * MS) {
            int64_t w = ratelimit_take(rl, cases[c].channel, RATELIMIT_MULTICAST, t);
            if (w == 0)
                n++;
            else
                t += w;
        }
        cr_expect_leq(n, cases[c].limit, "%s: %d", cases[c].channel, n);
        cr_expect_geq(n, cases[c].limit * 97 / 100, "%s: %d", cases[c].channel, n);
    }
    ratelimit_free(&rl);
}

/* The table's window log: a caller that wakes up late (as a loaded machine
 * makes it) still gets limit per (period + margin), close to the limit
 * itself, and jittered arrivals never pass the limit in any second. */
Test(dispatcher_ratelimit, the_window_log_bounds_arrivals_and_keeps_the_sustained_rate)
{
    static const struct {
        long limit, burst;
        int64_t margin, late_max;
    } cases[] = {
        {2000, 0, 10 * MS, 3 * MS}, {2000, 0, 5 * MS, 8 * MS},  {200, 0, 10 * MS, 3 * MS},
        {2000, 2000, 10 * MS, 0},   {8000, 0, 10 * MS, 2 * MS}, {50, 0, 10 * MS, 0},
    };
    uint64_t seed = 2024;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
        cr_assert_not_null(rl);
        cr_assert_eq(ratelimit_set_margin(rl, cases[c].margin, NULL, 0), 0);
        struct ratelimit_rate rate = {cases[c].limit, 1, cases[c].burst};
        cr_assert_eq(ratelimit_set(rl, "w", RATELIMIT_PUSH, &rate, 0, NULL, 0), 0);
        size_t cap = (size_t)rate.limit * 11 + 16, n = 0;
        int64_t *arr = malloc(cap * sizeof *arr);
        cr_assert_not_null(arr);
        int64_t start = 1 * SEC, t = start;
        while (t < start + 10 * SEC && n < cap) {
            int64_t w = ratelimit_take(rl, "w", RATELIMIT_PUSH, t);
            if (w == 0)
                arr[n++] = t + rng_below(&seed, cases[c].margin + 1); /* its arrival */
            /* Told to wait: back up to late_max late (now and then), as a
             * loop woken by a timer on a busy machine is. */
            if (w > 0)
                t += w + (rng_below(&seed, 4) == 0 ? rng_below(&seed, cases[c].late_max + 1) : 0);
            else if (rng_below(&seed, 3) == 0)
                t += 1000;
        }
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && arr[j - 1] > arr[j]; j--) {
                int64_t x = arr[j];
                arr[j] = arr[j - 1];
                arr[j - 1] = x;
            }
        cr_expect_leq(max_in_window(arr, n, SEC), (size_t)rate.limit, "limit %ld margin %lld ms",
                      rate.limit, (long long)(cases[c].margin / MS));
        double per_s = (double)n / 10.0;
        double ideal = (double)rate.limit * (double)SEC / (double)(SEC + cases[c].margin);
        cr_expect_geq(per_s, 0.99 * ideal, "limit %ld margin %lld ms: %.1f/s of %.1f", rate.limit,
                      (long long)(cases[c].margin / MS), per_s, ideal);
        free(arr);
        ratelimit_free(&rl);
    }
}

/* Random request times against the table (bucket and log together): no
 * window ever holds more than the limit. */
Test(dispatcher_ratelimit, the_table_never_exceeds_the_limit_at_random_times)
{
    static const long limits[] = {2000, 200, 7, 1, 20000};
    uint64_t seed = 5;
    for (size_t c = 0; c < sizeof limits / sizeof limits[0]; c++) {
        struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
        cr_assert_not_null(rl);
        struct ratelimit_rate rate = {limits[c], 1, 0};
        cr_assert_eq(ratelimit_set(rl, "r", RATELIMIT_PUSH, &rate, 0, NULL, 0), 0);
        size_t cap = 200000, n = 0;
        int64_t *go = malloc(cap * sizeof *go);
        cr_assert_not_null(go);
        int64_t interval = SEC / limits[c], t = SEC;
        for (int k = 0; k < 150000 && n < cap; k++) {
            if (ratelimit_take(rl, "r", RATELIMIT_PUSH, t) == 0)
                go[n++] = t;
            t += rng_below(&seed, 10) < 3 ? 0 : rng_below(&seed, 2 * interval + 1);
        }
        cr_expect_leq(max_in_window(go, n, SEC), (size_t)limits[c], "limit %ld", limits[c]);
        cr_expect_gt(n, 0);
        free(go);
        ratelimit_free(&rl);
    }
}

Test(dispatcher_ratelimit, bad_margins_are_refused)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    static const int64_t bad[] = {-1, RATELIMIT_MARGIN_MAX_NS + 1, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        cr_expect_eq(ratelimit_set_margin(rl, bad[i], err, sizeof err), -1);
        cr_expect(strstr(err, "margin") != NULL, "%s", err);
        struct ratelimit_bucket b;
        struct ratelimit_rate rate = {2000, 1, 0};
        cr_expect_eq(ratelimit_bucket_init_margin(&b, &rate, bad[i], NULL, 0), -1);
    }
    cr_expect_eq(ratelimit_set_margin(NULL, 0, NULL, 0), -1);
    ratelimit_free(&rl);
}

/* --- the channel table ---------------------------------------------------------- */

Test(dispatcher_ratelimit, channels_and_classes_have_separate_buckets)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    int64_t t = 10 * SEC;
    /* Multicast's burst is 2 (1% of 200): the third waits. */
    cr_expect_eq(ratelimit_take(rl, "1001", RATELIMIT_MULTICAST, t), 0);
    cr_expect_eq(ratelimit_take(rl, "1001", RATELIMIT_MULTICAST, t), 0);
    cr_expect_gt(ratelimit_take(rl, "1001", RATELIMIT_MULTICAST, t), 0);
    /* Another channel, and another class of the same channel, are untouched. */
    cr_expect_eq(ratelimit_take(rl, "1002", RATELIMIT_MULTICAST, t), 0);
    cr_expect_eq(ratelimit_take(rl, "1001", RATELIMIT_PUSH, t), 0);
    /* Broadcast: one, then an hour's sixtieth. */
    cr_expect_eq(ratelimit_take(rl, "1001", RATELIMIT_BROADCAST, t), 0);
    cr_expect_eq(ratelimit_take(rl, "1001", RATELIMIT_BROADCAST, t), 60 * SEC);
    ratelimit_free(&rl);
    cr_expect_null(rl);
    ratelimit_free(&rl);
    ratelimit_free(NULL);
}

Test(dispatcher_ratelimit, a_channel_override_applies_to_that_channel_only)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    char err[128];
    struct ratelimit_rate raised = {8000, 1, 0};
    cr_assert_eq(ratelimit_set(rl, "2001", RATELIMIT_PUSH, &raised, 0, err, sizeof err), 0, "%s",
                 err);
    struct ratelimit_rate got;
    bool over = false;
    cr_assert_eq(ratelimit_get(rl, "2001", RATELIMIT_PUSH, &got, &over), 0);
    cr_expect_eq(got.limit, 8000);
    cr_expect(over);
    cr_assert_eq(ratelimit_get(rl, "2002", RATELIMIT_PUSH, &got, &over), 0);
    cr_expect_eq(got.limit, 2000);
    cr_expect_not(over);
    /* 80 go at once on the raised channel (1% of 8000), 20 on the other. */
    int go1 = 0, go2 = 0;
    for (int i = 0; i < 200; i++) {
        go1 += ratelimit_take(rl, "2001", RATELIMIT_PUSH, SEC) == 0;
        go2 += ratelimit_take(rl, "2002", RATELIMIT_PUSH, SEC) == 0;
    }
    cr_expect_eq(go1, 80);
    cr_expect_eq(go2, 20);
    /* NULL goes back to the default. */
    cr_assert_eq(ratelimit_set(rl, "2001", RATELIMIT_PUSH, NULL, SEC, err, sizeof err), 0);
    cr_assert_eq(ratelimit_get(rl, "2001", RATELIMIT_PUSH, &got, &over), 0);
    cr_expect_eq(got.limit, 2000);
    cr_expect_not(over);
    ratelimit_free(&rl);
}

Test(dispatcher_ratelimit, table_defaults_can_be_replaced_for_every_channel)
{
    struct ratelimit_rate defs[RATELIMIT_CLASS_COUNT];
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++)
        defs[i] = ratelimit_default((enum ratelimit_class)i);
    defs[RATELIMIT_PUSH] = (struct ratelimit_rate){100, 1, 1};
    struct ratelimit *rl = ratelimit_new(defs, NULL, 0);
    cr_assert_not_null(rl);
    cr_expect_eq(ratelimit_take(rl, "x", RATELIMIT_PUSH, 0), 0);
    cr_expect_eq(ratelimit_take(rl, "x", RATELIMIT_PUSH, 0), SEC / 100);
    ratelimit_free(&rl);
}

/* After a lowered limit, no window holds more than the new limit, not even
 * one that also holds go's from before the change (LINE counts those too),
 * and the new rate is reached once they have aged out. */
Test(dispatcher_ratelimit, a_lowered_limit_holds_from_the_moment_it_is_set)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    size_t cap = 8000, n = 0;
    int64_t *go = malloc(cap * sizeof *go);
    cr_assert_not_null(go);
    int64_t t = 0;
    while (t < 2 * SEC) {
        int64_t w = ratelimit_take(rl, "3001", RATELIMIT_PUSH, t);
        if (w == 0 && t >= SEC)
            go[n++] = t; /* the last second before the change */
        t += w ? w : 1;
    }
    size_t before = n;
    struct ratelimit_rate low = {100, 1, 0};
    int64_t changed = t;
    cr_assert_eq(ratelimit_set(rl, "3001", RATELIMIT_PUSH, &low, changed, NULL, 0), 0);
    int late = 0;
    while (t < changed + 3 * SEC && n < cap) {
        int64_t w = ratelimit_take(rl, "3001", RATELIMIT_PUSH, t);
        if (w == 0) {
            go[n++] = t;
            if (t >= changed + 2 * SEC)
                late++;
        }
        t += w ? w : 1;
    }
    cr_assert_gt(before, 1900);
    /* Windows from the last 100 go's before the change onwards. */
    cr_expect_leq(max_in_window(go + before - 100, n - before + 100, SEC), 100);
    cr_expect_geq(late, 98);
    free(go);
    ratelimit_free(&rl);
}

Test(dispatcher_ratelimit, a_removed_channel_starts_again_from_the_defaults)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    struct ratelimit_rate low = {1, 1, 0};
    cr_assert_eq(ratelimit_set(rl, "4001", RATELIMIT_PROFILE, &low, 0, NULL, 0), 0);
    /* A few more channels around it, so removal shifts the array. */
    cr_assert_eq(ratelimit_take(rl, "4000", RATELIMIT_PROFILE, 0), 0);
    cr_assert_eq(ratelimit_take(rl, "4002", RATELIMIT_PROFILE, 0), 0);
    cr_assert_eq(ratelimit_remove(rl, "4001"), 0);
    cr_expect_eq(ratelimit_remove(rl, "4001"), -1);
    struct ratelimit_rate got;
    cr_assert_eq(ratelimit_get(rl, "4001", RATELIMIT_PROFILE, &got, NULL), 0);
    cr_expect_eq(got.limit, 2000);
    cr_assert_eq(ratelimit_get(rl, "4002", RATELIMIT_PROFILE, &got, NULL), 0);
    cr_expect_eq(got.limit, 2000);
    ratelimit_free(&rl);
}

Test(dispatcher_ratelimit, many_channels_stay_sorted_and_found)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    char id[32];
    struct ratelimit_rate one = {1, 1, 0};
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "ch-%d", (i * 7919) % 500);
        cr_assert_eq(ratelimit_set(rl, id, RATELIMIT_PUSH, &one, 0, NULL, 0), 0);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "ch-%d", i);
        cr_assert_eq(ratelimit_take(rl, id, RATELIMIT_PUSH, 0), 0, "%s", id);
        cr_assert_eq(ratelimit_take(rl, id, RATELIMIT_PUSH, 0), SEC, "%s", id);
    }
    ratelimit_free(&rl);
}

/* --- bad input ------------------------------------------------------------------- */

Test(dispatcher_ratelimit, bad_rates_are_refused_with_the_field_named)
{
    static const struct {
        struct ratelimit_rate rate;
        const char *field;
    } cases[] = {
        {{-1, 1, 0}, "limit"},
        {{-2000, 1, 0}, "limit"},
        {{RATELIMIT_LIMIT_MAX + 1, 1, 0}, "limit"},
        {{10, 0, 0}, "period_s"},
        {{10, -1, 0}, "period_s"},
        {{10, RATELIMIT_PERIOD_MAX + 1, 0}, "period_s"},
        {{10, 1, -1}, "burst"},
        {{10, 1, 11}, "burst"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[160] = "";
        struct ratelimit_bucket b;
        cr_expect_eq(ratelimit_rate_check(&cases[i].rate, err, sizeof err), -1, "case %zu", i);
        cr_expect(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0, "case %zu: %s", i,
                  err);
        cr_expect_eq(ratelimit_bucket_init(&b, &cases[i].rate, NULL, 0), -1, "case %zu", i);

        /* The table refuses it too, and the channel keeps its old rate. */
        struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
        cr_assert_not_null(rl);
        cr_expect_eq(ratelimit_set(rl, "5001", RATELIMIT_PUSH, &cases[i].rate, 0, err, sizeof err),
                     -1, "case %zu", i);
        struct ratelimit_rate got;
        cr_assert_eq(ratelimit_get(rl, "5001", RATELIMIT_PUSH, &got, NULL), 0);
        cr_expect_eq(got.limit, 2000, "case %zu", i);
        ratelimit_free(&rl);

        struct ratelimit_rate defs[RATELIMIT_CLASS_COUNT];
        for (int k = 0; k < RATELIMIT_CLASS_COUNT; k++)
            defs[k] = ratelimit_default((enum ratelimit_class)k);
        defs[RATELIMIT_NARROWCAST] = cases[i].rate;
        cr_expect_null(ratelimit_new(defs, err, sizeof err), "case %zu", i);
        cr_expect(strstr(err, "narrowcast") != NULL, "case %zu: %s", i, err);
    }
}

Test(dispatcher_ratelimit, bad_arguments_are_errors_not_crashes)
{
    struct ratelimit *rl = ratelimit_new(NULL, NULL, 0);
    cr_assert_not_null(rl);
    struct ratelimit_rate got;
    cr_expect_eq(ratelimit_take(rl, NULL, RATELIMIT_PUSH, 0), -1);
    cr_expect_eq(ratelimit_take(rl, "1", RATELIMIT_CLASS_COUNT, 0), -1);
    cr_expect_eq(ratelimit_take(rl, "1", (enum ratelimit_class) - 1, 0), -1);
    cr_expect_eq(ratelimit_take(NULL, "1", RATELIMIT_PUSH, 0), -1);
    cr_expect_eq(ratelimit_set(rl, "1", RATELIMIT_CLASS_COUNT, NULL, 0, NULL, 0), -1);
    cr_expect_eq(ratelimit_get(rl, "1", RATELIMIT_CLASS_COUNT, &got, NULL), -1);
    cr_expect_eq(ratelimit_get(rl, NULL, RATELIMIT_PUSH, &got, NULL), -1);
    cr_expect_eq(ratelimit_remove(rl, NULL), -1);
    cr_expect_eq(ratelimit_rate_check(NULL, NULL, 0), -1);
    ratelimit_free(&rl);
}
