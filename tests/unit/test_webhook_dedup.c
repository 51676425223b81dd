/* Unit tests for services/ingest/dedup: an id recorded for a channel is seen
 * there and nowhere else, only the last per_channel ids are kept (the
 * oldest goes first, also from its hash chain), recording twice keeps one
 * slot, and ids or channels that are too long or empty are never kept. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "ingest/dedup.h"

TestSuite(webhook_dedup);

Test(webhook_dedup, a_recorded_id_is_seen_in_its_channel_only)
{
    struct dedup *d = dedup_new(8);
    cr_assert_not_null(d);
    cr_expect_not(dedup_seen(d, "100", "01HEVENTA"));
    dedup_record(d, "100", "01HEVENTA");
    cr_expect(dedup_seen(d, "100", "01HEVENTA"));
    cr_expect_not(dedup_seen(d, "200", "01HEVENTA"), "another channel's id");
    cr_expect_not(dedup_seen(d, "100", "01HEVENTB"));
    dedup_free(&d);
    cr_expect_null(d);
}

Test(webhook_dedup, only_the_last_ids_are_kept_oldest_first_out)
{
    enum { CAP = 16 };
    struct dedup *d = dedup_new(CAP);
    char id[32];
    for (int i = 0; i < 3 * CAP; i++) {
        snprintf(id, sizeof id, "ev-%d", i);
        dedup_record(d, "100", id);
        /* After each record, exactly the last CAP ids are seen. */
        for (int k = 0; k <= i; k++) {
            snprintf(id, sizeof id, "ev-%d", k);
            cr_assert_eq(dedup_seen(d, "100", id), k > i - CAP, "after %d: id %d", i, k);
        }
    }
    dedup_free(&d);
}

Test(webhook_dedup, recording_an_id_twice_keeps_one_slot)
{
    struct dedup *d = dedup_new(2);
    dedup_record(d, "100", "a");
    dedup_record(d, "100", "a");
    dedup_record(d, "100", "b");
    cr_expect(dedup_seen(d, "100", "a"), "a second record of a must not push a out");
    cr_expect(dedup_seen(d, "100", "b"));
    dedup_record(d, "100", "c");
    cr_expect_not(dedup_seen(d, "100", "a"));
    cr_expect(dedup_seen(d, "100", "c"));
    dedup_free(&d);
}

struct bad_key {
    const char *name;
    const char *channel;
    const char *id;
};

Test(webhook_dedup, unusable_keys_are_never_kept)
{
    char long_id[DEDUP_ID_MAX + 2], long_channel[DEDUP_CHANNEL_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    memset(long_channel, '9', sizeof long_channel - 1);
    long_channel[sizeof long_channel - 1] = '\0';
    const struct bad_key bad[] = {
        {"empty id", "100", ""},
        {"no id", "100", NULL},
        {"no channel", NULL, "a"},
        {"id over the cap", "100", long_id},
        {"channel over the cap", long_channel, "a"},
    };
    struct dedup *d = dedup_new(4);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dedup_record(d, bad[i].channel, bad[i].id);
        cr_expect_not(dedup_seen(d, bad[i].channel, bad[i].id), "%s", bad[i].name);
    }
    /* A NULL set (out of memory at start) suppresses nothing. */
    dedup_record(NULL, "100", "a");
    cr_expect_not(dedup_seen(NULL, "100", "a"));
    dedup_free(&d);
}

Test(webhook_dedup, many_channels_are_kept_apart)
{
    struct dedup *d = dedup_new(4);
    char ch[16];
    for (int c = 0; c < 600; c++) {
        snprintf(ch, sizeof ch, "%d", 1000 + c);
        dedup_record(d, ch, "same-id");
    }
    for (int c = 0; c < 600; c++) {
        snprintf(ch, sizeof ch, "%d", 1000 + c);
        cr_expect(dedup_seen(d, ch, "same-id"), "channel %s", ch);
    }
    cr_expect_not(dedup_seen(d, "999", "same-id"));
    dedup_free(&d);
}
