/* Unit tests for common/metrics: the exact exposition text for each metric
 * type, escaping, the series cap, refused definitions, and that updates
 * from many threads add up. Criterion runs each test in its own process,
 * so every test starts from an empty registry. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void metrics_teardown(void)
{
    metrics_free_all();
}

TestSuite(metrics, .fini = metrics_teardown, .timeout = 30);

/* Renders the registry; the caller frees. */
static char *render(void)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(metrics, empty_registry_renders_empty_text)
{
    char *text = render();
    cr_assert_str_eq(text, "");
    free(text);
}

Test(metrics, counter_renders_help_type_and_each_series)
{
    struct metric *m = metrics_counter("kizuna_test_total", "Things counted.", "kind");
    cr_assert_not_null(m);
    metrics_add(m, 1, "a");
    metrics_add(m, 2.5, "a");
    metrics_add(m, 1, "b");
    char *text = render();
    cr_assert_str_eq(text, "# HELP kizuna_test_total Things counted.\n"
                           "# TYPE kizuna_test_total counter\n"
                           "kizuna_test_total{kind=\"a\"} 3.5\n"
                           "kizuna_test_total{kind=\"b\"} 1\n");
    free(text);
}

Test(metrics, counter_ignores_negative_and_nan)
{
    struct metric *m = metrics_counter("c_total", "C.", NULL);
    metrics_add(m, 2);
    metrics_add(m, -1);
    metrics_add(m, NAN);
    char *text = render();
    cr_assert_str_eq(text, "# HELP c_total C.\n# TYPE c_total counter\nc_total 2\n");
    free(text);
}

Test(metrics, unlabelled_gauge_shows_zero_then_set_and_add)
{
    struct metric *m = metrics_gauge("kizuna_depth", "Depth.", NULL);
    char *text = render();
    cr_assert_str_eq(text,
                     "# HELP kizuna_depth Depth.\n# TYPE kizuna_depth gauge\nkizuna_depth 0\n");
    free(text);
    metrics_set(m, 5);
    metrics_add(m, -2);
    text = render();
    cr_assert_str_eq(text,
                     "# HELP kizuna_depth Depth.\n# TYPE kizuna_depth gauge\nkizuna_depth 3\n");
    free(text);
}

Test(metrics, gauge_renders_special_and_fractional_values)
{
    struct metric *m = metrics_gauge("g", "G.", "k");
    metrics_set(m, 0.1, "tenth");
    metrics_set(m, INFINITY, "inf");
    metrics_set(m, -INFINITY, "ninf");
    metrics_set(m, NAN, "nan");
    metrics_set(m, 1e21, "big");
    char *text = render();
    cr_assert_str_eq(text, "# HELP g G.\n# TYPE g gauge\n"
                           "g{k=\"tenth\"} 0.1\n"
                           "g{k=\"inf\"} +Inf\n"
                           "g{k=\"ninf\"} -Inf\n"
                           "g{k=\"nan\"} NaN\n"
                           "g{k=\"big\"} 1e+21\n");
    free(text);
}

Test(metrics, histogram_buckets_are_cumulative_with_sum_and_count)
{
    const double buckets[] = {0.1, 1};
    struct metric *m = metrics_histogram("lat_seconds", "Latency.", "route", buckets, 2);
    cr_assert_not_null(m);
    metrics_observe(m, 0.0625, "a");
    metrics_observe(m, 0.5, "a");
    metrics_observe(m, 1, "a"); /* upper bounds are inclusive */
    metrics_observe(m, 2.75, "a");
    char *text = render();
    cr_assert_str_eq(text, "# HELP lat_seconds Latency.\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{route=\"a\",le=\"0.1\"} 1\n"
                           "lat_seconds_bucket{route=\"a\",le=\"1\"} 3\n"
                           "lat_seconds_bucket{route=\"a\",le=\"+Inf\"} 4\n"
                           "lat_seconds_sum{route=\"a\"} 4.3125\n"
                           "lat_seconds_count{route=\"a\"} 4\n");
    free(text);
}

Test(metrics, unlabelled_histogram_without_buckets_has_only_inf)
{
    struct metric *m = metrics_histogram("h", "H.", NULL, NULL, 0);
    cr_assert_not_null(m);
    metrics_observe(m, 7);
    char *text = render();
    cr_assert_str_eq(text, "# HELP h H.\n# TYPE h histogram\n"
                           "h_bucket{le=\"+Inf\"} 1\nh_sum 7\nh_count 1\n");
    free(text);
}

Test(metrics, label_values_and_help_are_escaped)
{
    struct metric *m = metrics_counter("esc_total", "Back\\slash and\nnewline \"kept\".", "a,b");
    metrics_add(m, 1, "q\"uote", "back\\slash\nnl");
    char *text = render();
    cr_assert_str_eq(text, "# HELP esc_total Back\\\\slash and\\nnewline \"kept\".\n"
                           "# TYPE esc_total counter\n"
                           "esc_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 1\n");
    free(text);
}

Test(metrics, hostile_label_values_are_made_valid_utf8_and_cut)
{
    struct metric *m = metrics_counter("u_total", "U.", "v");
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    metrics_add(m, 1, "bad\xff\xfe");
    metrics_add(m, 1, longv);
    metrics_add(m, 1, (const char *)NULL);
    char *text = render();
    cr_assert_not_null(strstr(text, "u_total{v=\"bad\xEF\xBF\xBD\xEF\xBF\xBD\"} 1\n"));
    char expect[200];
    snprintf(expect, sizeof expect, "u_total{v=\"%.128s\"} 1\n", longv);
    cr_assert_not_null(strstr(text, expect));
    cr_assert_not_null(strstr(text, "u_total{v=\"\"} 1\n"));
    free(text);
}

Test(metrics, output_is_sorted_by_metric_name)
{
    metrics_counter("zeta_total", "Z.", NULL);
    metrics_gauge("alpha", "A.", NULL);
    metrics_counter("mid_total", "M.", NULL);
    char *text = render();
    char *a = strstr(text, "# HELP alpha");
    char *mid = strstr(text, "# HELP mid_total");
    char *z = strstr(text, "# HELP zeta_total");
    cr_assert(a && mid && z);
    cr_assert(a < mid && mid < z);
    free(text);
}

Test(metrics, creating_a_name_twice_returns_the_same_metric)
{
    struct metric *a = metrics_counter("dup_total", "D.", "x");
    struct metric *b = metrics_counter("dup_total", "D.", "x");
    cr_assert_not_null(a);
    cr_assert_eq(a, b);
    /* Same name, other type: refused rather than mixed up. */
    cr_assert_null(metrics_gauge("dup_total", "D.", "x"));
}

Test(metrics, series_past_the_cap_fold_into_overflow)
{
    struct metric *m = metrics_counter("cap_total", "Cap.", "id,kind");
    char id[32];
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(id, sizeof id, "id%d", i);
        metrics_add(m, 1, id, "k");
    }
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "extra%d", i);
        metrics_add(m, 1, id, "k");
    }
    metrics_add(m, 2, "id7", "k"); /* existing series keep counting */
    char *text = render();
    cr_assert_eq(count_substr(text, "\ncap_total{"), METRICS_MAX_SERIES + 1);
    cr_assert_not_null(strstr(text, "cap_total{id=\"_overflow\",kind=\"_overflow\"} 5\n"));
    cr_assert_not_null(strstr(text, "cap_total{id=\"id7\",kind=\"k\"} 3\n"));
    cr_assert_null(strstr(text, "extra"));
    free(text);
}

struct bad_definition {
    const char *what;
    int type; /* 0 counter, 1 gauge, 2 histogram */
    const char *name;
    const char *labels;
    const double *buckets;
    size_t nbuckets;
};

static const double descending[] = {1, 0.5};
static const double repeated[] = {1, 1};
static const double with_inf[] = {1, INFINITY};

static const struct bad_definition bad_definitions[] = {
    {"null name", 0, NULL, NULL, NULL, 0},
    {"empty name", 0, "", NULL, NULL, 0},
    {"name starting with a digit", 0, "1abc", NULL, NULL, 0},
    {"name with a dash", 1, "a-b", NULL, NULL, 0},
    {"name with a space", 1, "a b", NULL, NULL, 0},
    {"empty label between commas", 0, "x_total", "a,,b", NULL, 0},
    {"reserved label prefix", 0, "x_total", "__a", NULL, 0},
    {"repeated label", 0, "x_total", "a,a", NULL, 0},
    {"label starting with a digit", 0, "x_total", "1a", NULL, 0},
    {"label with a colon", 0, "x_total", "a:b", NULL, 0},
    {"five labels", 0, "x_total", "a,b,c,d,e", NULL, 0},
    {"le label on a histogram", 2, "h", "le", NULL, 0},
    {"descending buckets", 2, "h", NULL, descending, 2},
    {"repeated bucket", 2, "h", NULL, repeated, 2},
    {"infinite bucket", 2, "h", NULL, with_inf, 2},
    {"buckets count without buckets", 2, "h", NULL, NULL, 3},
};

Test(metrics, bad_definitions_are_refused)
{
    for (size_t i = 0; i < sizeof bad_definitions / sizeof bad_definitions[0]; i++) {
        const struct bad_definition *c = &bad_definitions[i];
        struct metric *m;
        if (c->type == 0)
            m = metrics_counter(c->name, "x", c->labels);
        else if (c->type == 1)
            m = metrics_gauge(c->name, "x", c->labels);
        else
            m = metrics_histogram(c->name, "x", c->labels, c->buckets, c->nbuckets);
        cr_expect_null(m, "%s: should be refused", c->what);
    }
    char *text = render();
    cr_assert_str_eq(text, "", "refused definitions must leave nothing behind");
    free(text);
}

Test(metrics, updates_of_the_wrong_kind_are_ignored)
{
    struct metric *c = metrics_counter("k_total", "K.", NULL);
    const double b[] = {1};
    struct metric *h = metrics_histogram("k_hist", "K.", NULL, b, 1);
    metrics_set(c, 9);
    metrics_observe(c, 9);
    metrics_add(h, 9);
    metrics_add(NULL, 1);
    char *text = render();
    cr_assert_not_null(strstr(text, "\nk_total 0\n"));
    cr_assert_not_null(strstr(text, "\nk_hist_count 0\n"));
    free(text);
}

#define THREADS 8
#define ADDS_PER_THREAD 100000

struct worker {
    struct metric *counter;
    struct metric *hist;
    int index;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char own[16];
    snprintf(own, sizeof own, "t%d", w->index);
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        metrics_add(w->counter, 1, "shared");
        /* Every thread also races to create the same few new series. */
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 50);
        metrics_add(w->counter, 1, key);
        if (i % 10 == 0)
            metrics_observe(w->hist, 0.5, own);
    }
    return NULL;
}

Test(metrics, concurrent_updates_add_up)
{
    struct metric *counter = metrics_counter("race_total", "Race.", "key");
    const double b[] = {1};
    struct metric *hist = metrics_histogram("race_seconds", "Race.", "t", b, 1);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){counter, hist, i};
        cr_assert_eq(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    char *text = render();
    char expect[128];
    snprintf(expect, sizeof expect, "race_total{key=\"shared\"} %d\n", THREADS * ADDS_PER_THREAD);
    cr_assert_not_null(strstr(text, expect), "missing %s", expect);
    for (int k = 0; k < 50; k++) {
        snprintf(expect, sizeof expect, "race_total{key=\"k%d\"} %d\n", k,
                 THREADS * ADDS_PER_THREAD / 50);
        cr_assert_not_null(strstr(text, expect), "missing %s", expect);
    }
    cr_assert_eq(count_substr(text, "\nrace_total{"), 51);
    for (int t = 0; t < THREADS; t++) {
        snprintf(expect, sizeof expect, "race_seconds_count{t=\"t%d\"} %d\n", t,
                 ADDS_PER_THREAD / 10);
        cr_assert_not_null(strstr(text, expect), "missing %s", expect);
    }
    free(text);
}

Test(metrics, free_all_empties_the_registry)
{
    metrics_counter("gone_total", "G.", NULL);
    metrics_free_all();
    char *text = render();
    cr_assert_str_eq(text, "");
    free(text);
    cr_assert_not_null(metrics_counter("gone_total", "G.", NULL));
}
