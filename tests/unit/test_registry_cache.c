/* Unit tests for services/ingest/registry_cache: entries expire on the
 * clock passed in, known channels can be served stale for a while and
 * unknown ids never are, forgetting is immediate, and the size bound holds
 * against a flood of made-up ids. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "ingest/registry_cache.h"

TestSuite(registry_cache);

static struct channel_view view_of(const char *channel_id, const char *secret)
{
    struct channel_view v;
    memset(&v, 0, sizeof v);
    snprintf(v.tenant_id, sizeof v.tenant_id, "acme");
    snprintf(v.channel_id, sizeof v.channel_id, "%s", channel_id);
    snprintf(v.bot_user_id, sizeof v.bot_user_id, "Ubot");
    v.secret_len = strlen(secret);
    memcpy(v.secret, secret, v.secret_len);
    return v;
}

Test(registry_cache, a_known_channel_is_fresh_then_stale_then_gone)
{
    struct registry_cache *c = registry_cache_new(16);
    struct channel_view in = view_of("100", "s3cret"), out;
    bool found = false;
    cr_assert_eq(registry_cache_get(c, "100", 0, 1000, &found, &out), REGISTRY_CACHE_MISS);
    registry_cache_put(c, "100", &in, 1000, 5000);

    memset(&out, 0, sizeof out);
    cr_assert_eq(registry_cache_get(c, "100", 1000, 1000, &found, &out), REGISTRY_CACHE_FRESH);
    cr_assert(found);
    cr_assert_eq(memcmp(&out, &in, sizeof in), 0);
    cr_assert_eq(registry_cache_get(c, "100", 5999, 1000, &found, &out), REGISTRY_CACHE_FRESH);

    memset(&out, 0, sizeof out);
    cr_assert_eq(registry_cache_get(c, "100", 6000, 1000, &found, &out), REGISTRY_CACHE_STALE);
    cr_assert(found);
    cr_assert_eq(out.secret_len, 6, "a stale entry still carries the view");
    cr_assert_eq(registry_cache_get(c, "100", 6999, 1000, &found, &out), REGISTRY_CACHE_STALE);
    cr_assert_eq(registry_cache_get(c, "100", 7000, 1000, &found, &out), REGISTRY_CACHE_MISS);
    cr_assert_not(found);
    registry_cache_free(&c);
    cr_assert_null(c);
}

Test(registry_cache, an_unknown_id_is_remembered_briefly_and_never_served_stale)
{
    struct registry_cache *c = registry_cache_new(16);
    struct channel_view out;
    bool found = true;
    registry_cache_put(c, "404", NULL, 0, 2000);
    cr_assert_eq(registry_cache_get(c, "404", 1999, 60000, &found, &out), REGISTRY_CACHE_FRESH);
    cr_assert_not(found);
    cr_assert_eq(registry_cache_get(c, "404", 2000, 60000, &found, &out), REGISTRY_CACHE_MISS);
    registry_cache_free(&c);
}

Test(registry_cache, put_replaces_and_forget_removes)
{
    struct registry_cache *c = registry_cache_new(16);
    struct channel_view a = view_of("7", "old"), b = view_of("7", "new"), out;
    bool found;
    registry_cache_put(c, "7", &a, 0, 5000);
    registry_cache_put(c, "7", &b, 10, 5000);
    cr_assert_eq(registry_cache_size(c), 1);
    cr_assert_eq(registry_cache_get(c, "7", 20, 0, &found, &out), REGISTRY_CACHE_FRESH);
    cr_assert_eq(memcmp(out.secret, "new", 3), 0);
    registry_cache_put(c, "7", NULL, 30, 2000);
    cr_assert_eq(registry_cache_get(c, "7", 40, 0, &found, &out), REGISTRY_CACHE_FRESH);
    cr_assert_not(found, "a channel deleted elsewhere becomes unknown");
    registry_cache_forget(c, "7");
    registry_cache_forget(c, "8"); /* absent: nothing happens */
    cr_assert_eq(registry_cache_size(c), 0);
    cr_assert_eq(registry_cache_get(c, "7", 40, 0, &found, &out), REGISTRY_CACHE_MISS);
    registry_cache_free(&c);
}

Test(registry_cache, ids_in_the_same_bucket_stay_apart)
{
    struct registry_cache *c = registry_cache_new(100000);
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "%d", i);
        struct channel_view v = view_of(id, id);
        registry_cache_put(c, id, &v, 0, 1000);
    }
    cr_assert_eq(registry_cache_size(c), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "%d", i);
        struct channel_view out;
        bool found;
        cr_assert_eq(registry_cache_get(c, id, 1, 0, &found, &out), REGISTRY_CACHE_FRESH);
        cr_assert_str_eq(out.channel_id, id);
    }
    registry_cache_free(&c);
}

Test(registry_cache, the_bound_holds_against_a_flood_of_unknown_ids)
{
    struct registry_cache *c = registry_cache_new(4);
    struct channel_view known = view_of("1", "s"), out;
    bool found;
    registry_cache_put(c, "1", &known, 0, 5000);
    registry_cache_put(c, "2", &known, 0, 100); /* expires first */
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "9%d", i);
        registry_cache_put(c, id, NULL, 50, 2000);
        cr_assert_leq(registry_cache_size(c), 4);
    }
    cr_assert_eq(registry_cache_get(c, "1", 60, 0, &found, &out), REGISTRY_CACHE_FRESH,
                 "unknown ids make room among themselves, never by evicting a live channel");
    cr_assert(found);

    /* Full of live channels: a new one is simply not cached. */
    struct registry_cache *full = registry_cache_new(2);
    registry_cache_put(full, "1", &known, 0, 5000);
    registry_cache_put(full, "2", &known, 0, 5000);
    registry_cache_put(full, "3", &known, 0, 5000);
    cr_assert_eq(registry_cache_size(full), 2);
    cr_assert_eq(registry_cache_get(full, "3", 1, 0, &found, &out), REGISTRY_CACHE_MISS);
    registry_cache_put(full, "3", &known, 6000, 5000); /* the others expired */
    cr_assert_eq(registry_cache_get(full, "3", 6001, 0, &found, &out), REGISTRY_CACHE_FRESH);
    registry_cache_free(&full);
    registry_cache_free(&c);
    registry_cache_free(&c); /* NULL is fine */
}

Test(registry_cache, over_long_ids_are_not_cached)
{
    struct registry_cache *c = registry_cache_new(4);
    char id[64];
    memset(id, '1', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    registry_cache_put(c, id, NULL, 0, 1000);
    cr_assert_eq(registry_cache_size(c), 0);
    registry_cache_free(&c);
}
