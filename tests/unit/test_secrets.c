/* Unit tests for common/secrets: after secrets_process_protect the process
 * is not dumpable and may write no core file, and JSON trees are wiped when
 * jansson frees them. Criterion runs each test in its own process, so the
 * protection does not reach the other suites. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "secrets.h"

Test(secrets, protect_makes_the_process_not_dumpable_without_core_files)
{
    /* The state before, so the test shows the call changed it. */
    cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1, "test process starts dumpable");
    char err[256] = "";
    cr_assert_eq(secrets_process_protect(err, sizeof err), 0, "%s", err);
    cr_expect_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    struct rlimit core;
    cr_assert_eq(getrlimit(RLIMIT_CORE, &core), 0);
    cr_expect_eq(core.rlim_cur, 0);
    cr_expect_eq(core.rlim_max, 0, "a hard limit of 0: the process cannot raise it again");
}

Test(secrets, block_wipe_zeroes_the_whole_block)
{
    const size_t sizes[] = {1, 24, 100, 4096, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = malloc(sizes[i]);
        cr_assert_not_null(p);
        memset(p, 'S', sizes[i]);
        secrets_block_wipe(p);
        size_t nonzero = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            nonzero += p[k] != 0;
        cr_expect_eq(nonzero, 0, "%zu-byte block: %zu bytes left", sizes[i], nonzero);
        free(p);
    }
    secrets_block_wipe(NULL);
}

Test(secrets, json_wipe_on_free_installs_a_wiping_free_that_jansson_uses)
{
    json_malloc_t m0;
    json_free_t f0;
    json_get_alloc_funcs(&m0, &f0);
    cr_assert_eq(f0, free, "jansson starts with plain free");

    /* A tree made before the switch is freed after it: blocks stay plain
     * malloc'd, so either order is safe. */
    json_t *before =
        json_loads("{\"channel_secret\":\"0123456789abcdef0123456789abcdef\"}", 0, NULL);
    cr_assert_not_null(before);
    secrets_json_wipe_on_free();
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    cr_expect_eq(m, malloc);
    cr_expect_neq(f, free, "jansson frees through the wiping free");
    json_decref(before);

    /* And jansson's output is still freed with plain free. */
    json_t *doc = json_loads("{\"access_token\":\"t0k3n\",\"n\":[1,2,3]}", 0, NULL);
    cr_assert_not_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_not_null(text);
    cr_expect_str_eq(text, "{\"access_token\":\"t0k3n\",\"n\":[1,2,3]}");
    free(text);
    json_decref(doc);
}
