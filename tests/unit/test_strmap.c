/* Unit tests for common/strmap: put, replace, get and remove
 * hold across growth (100,000 keys), iteration sees every entry once, and
 * NULL arguments are harmless. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>

#include "strmap.h"

static void count_one(void *ctx, const char *key, void *value)
{
    (void)key;
    (void)value;
    (*(size_t *)ctx)++;
}

Test(strmap, holds_many_keys_across_growth)
{
    enum { N = 100000 };
    struct strmap *m = strmap_new();
    cr_assert_not_null(m);
    static int values[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_eq(strmap_put(m, key, &values[i]), 0);
    }
    cr_expect_eq(strmap_size(m), N);
    for (int i = 0; i < N; i += 7) {
        snprintf(key, sizeof key, "key-%d", i);
        cr_expect_eq(strmap_get(m, key), &values[i]);
    }
    cr_expect_null(strmap_get(m, "key-missing"));
    cr_expect_eq(strmap_put(m, "key-5", &values[6]), 0, "replacing");
    cr_expect_eq(strmap_get(m, "key-5"), &values[6]);
    cr_expect_eq(strmap_size(m), N);
    size_t seen = 0;
    strmap_each(m, count_one, &seen);
    cr_expect_eq(seen, N);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        cr_expect_not_null(strmap_remove(m, key));
    }
    cr_expect_eq(strmap_size(m), N / 2);
    cr_expect_null(strmap_remove(m, "key-0"));
    cr_expect_not_null(strmap_get(m, "key-1"));
    strmap_free(&m, NULL);
    cr_expect_null(m);
}

Test(strmap, null_arguments_are_harmless)
{
    cr_expect_null(strmap_get(NULL, "k"));
    cr_expect_eq(strmap_put(NULL, "k", NULL), -1);
    cr_expect_null(strmap_remove(NULL, "k"));
    cr_expect_eq(strmap_size(NULL), 0);
    strmap_free(NULL, NULL);
    struct strmap *m = NULL;
    strmap_free(&m, NULL);
    m = strmap_new();
    cr_expect_null(strmap_get(m, NULL));
    cr_expect_eq(strmap_put(m, NULL, NULL), -1);
    strmap_free(&m, free);
}
