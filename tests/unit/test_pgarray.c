/* Unit tests for common/pgarray: the binary array format that
 * PostgreSQL's array_recv reads (header, NULLs, lengths, big-endian), the
 * empty array, and that a value too big for a parameter is refused. The
 * integration suites send these arrays to a real server. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pgarray.h"

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

Test(pgarray, text_elements_follow_a_one_dimension_header)
{
    struct pgarray a;
    pgarray_init(&a, PGARRAY_TEXT_OID);
    pgarray_add_text(&a, "abc");
    pgarray_add_text(&a, "");
    pgarray_add_ll(&a, -42);
    int len = 0;
    const char *v = pgarray_finish(&a, &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 20 + (4 + 3) + (4 + 0) + (4 + 3));
    cr_expect_eq(get32(v), 1);     /* ndim */
    cr_expect_eq(get32(v + 4), 0); /* no NULLs */
    cr_expect_eq(get32(v + 8), PGARRAY_TEXT_OID);
    cr_expect_eq(get32(v + 12), 3); /* elements */
    cr_expect_eq(get32(v + 16), 1); /* lower bound */
    cr_expect_eq(get32(v + 20), 3);
    cr_expect(memcmp(v + 24, "abc", 3) == 0);
    cr_expect_eq(get32(v + 27), 0);
    cr_expect_eq(get32(v + 31), 3);
    cr_expect(memcmp(v + 35, "-42", 3) == 0);
    pgarray_free(&a);
}

Test(pgarray, null_elements_have_length_minus_one_and_set_the_flag)
{
    struct pgarray a;
    pgarray_init(&a, PGARRAY_BYTEA_OID);
    const unsigned char raw[] = {0, 1, 0xff};
    pgarray_add(&a, raw, sizeof raw);
    pgarray_add(&a, NULL, 99);
    int len = 0;
    const char *v = pgarray_finish(&a, &len);
    cr_assert_not_null(v);
    cr_assert_eq(len, 20 + 4 + 3 + 4);
    cr_expect_eq(get32(v + 4), 1);
    cr_expect_eq(get32(v + 8), PGARRAY_BYTEA_OID);
    cr_expect_eq(get32(v + 12), 2);
    cr_expect(memcmp(v + 24, raw, 3) == 0, "bytes pass through unescaped");
    cr_expect_eq(get32(v + 27), UINT32_MAX);
    pgarray_free(&a);
}

Test(pgarray, an_empty_array_has_no_dimensions)
{
    struct pgarray a;
    pgarray_init(&a, PGARRAY_TEXT_OID);
    int len = 0;
    const char *v = pgarray_finish(&a, &len);
    cr_assert_not_null(v);
    cr_expect_eq(len, 12);
    cr_expect_eq(get32(v), 0);
    cr_expect_eq(get32(v + 8), PGARRAY_TEXT_OID);
    pgarray_free(&a);
}

Test(pgarray, many_elements_grow_the_buffer_and_keep_their_order)
{
    struct pgarray a;
    pgarray_init(&a, PGARRAY_TEXT_OID);
    for (int i = 0; i < 5000; i++)
        pgarray_add_ll(&a, i);
    int len = 0;
    const char *v = pgarray_finish(&a, &len);
    cr_assert_not_null(v);
    cr_expect_eq(get32(v + 12), 5000);
    const char *p = v + 20;
    for (int i = 0; i < 5000; i++) {
        char want[16];
        int n = snprintf(want, sizeof want, "%d", i);
        cr_assert_eq(get32(p), (uint32_t)n);
        cr_assert(memcmp(p + 4, want, (size_t)n) == 0, "element %d", i);
        p += 4 + n;
    }
    cr_expect_eq(p - v, len);
    pgarray_free(&a);
}

Test(pgarray, an_element_too_big_for_a_parameter_fails_the_array)
{
    struct pgarray a;
    pgarray_init(&a, PGARRAY_BYTEA_OID);
    pgarray_add(&a, "x", (size_t)INT32_MAX + 1);
    int len = 0;
    cr_expect_null(pgarray_finish(&a, &len));
    pgarray_add_text(&a, "later elements do not revive it");
    cr_expect_null(pgarray_finish(&a, &len));
    pgarray_free(&a);
}
