/* Unit tests for services/dispatcher/channels: the credential table keeps
 * the newest ChannelConfig per channel, opens the sealed access token with
 * the data key and the associated data "<tenant>/<channel>" (as ingest
 * seals it), treats a deleted record and a tombstone as deleted, lists a
 * tenant's live channels, and refuses malformed records (a table of them). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/channels.h"
#include "crypto.h"
#include "kizuna/v1/channel.pb-c.h"

static const uint8_t key[CRYPTO_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct record {
    const char *channel_id; /* in the record ("" leaves it to the key) */
    const char *tenant;
    const char *aad_tenant; /* the tenant the token is sealed for */
    const char *token;
    long long version;
    bool deleted;
    long long quota;
};

/* A packed ChannelConfig; the caller frees it. */
static uint8_t *pack(const struct record *r, size_t *len)
{
    char aad[256];
    const char *cid = r->channel_id[0] ? r->channel_id : "100";
    int aadlen = snprintf(aad, sizeof aad, "%s/%s", r->aad_tenant, cid);
    uint8_t sealed[256];
    long n =
        crypto_seal(key, aad, (size_t)aadlen, r->token, strlen(r->token), sealed, sizeof sealed);
    cr_assert_gt(n, 0);
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    cfg.channel_id = (char *)r->channel_id;
    cfg.tenant_id = (char *)r->tenant;
    cfg.timezone = "Asia/Tokyo";
    cfg.monthly_quota = r->quota;
    cfg.access_token_sealed.data = sealed;
    cfg.access_token_sealed.len = (size_t)n;
    cfg.version = r->version;
    cfg.deleted = r->deleted;
    *len = kizuna__v1__channel_config__get_packed_size(&cfg);
    uint8_t *buf = malloc(*len + 1);
    kizuna__v1__channel_config__pack(&cfg, buf);
    return buf;
}

static int apply(struct channels *t, const char *key_text, const struct record *r)
{
    size_t len;
    uint8_t *buf = pack(r, &len);
    char errstr[256];
    int rc = channels_apply(t, key_text, strlen(key_text), buf, len, errstr, sizeof errstr);
    free(buf);
    return rc;
}

Test(dispatcher_channels, keeps_the_newest_version_and_opens_its_token)
{
    struct channels *t = channels_new(key);
    struct record v1 = {"100", "acme", "acme", "tok-one", 1, false, 500};
    struct record v2 = {"100", "acme", "acme", "tok-two", 2, false, 900};
    cr_assert_eq(apply(t, "100", &v1), 1);
    cr_assert_eq(apply(t, "100", &v2), 1);
    cr_assert_eq(apply(t, "100", &v1), 0, "an older version is ignored");
    cr_assert_eq(apply(t, "100", &v2), 0, "the same version is ignored");
    struct channel_creds c;
    cr_assert_eq(channels_lookup(t, "100", &c), 0);
    cr_expect_str_eq(c.tenant_id, "acme");
    cr_expect(c.token_ok);
    cr_expect_str_eq(c.token, "tok-two");
    cr_expect_eq(c.monthly_quota, 900);
    cr_expect_eq(c.version, 2);
    cr_expect_str_eq(c.timezone, "Asia/Tokyo");
    channels_creds_wipe(&c);
    cr_expect_eq(c.token[0], '\0');
    cr_expect_eq(channels_lookup(t, "999", &c), -1);
    channels_free(&t);
    cr_expect_null(t);
}

Test(dispatcher_channels, a_token_sealed_for_another_tenant_does_not_open)
{
    struct channels *t = channels_new(key);
    struct record r = {"100", "acme", "evil", "tok-stolen", 1, false, 0};
    cr_assert_eq(apply(t, "100", &r), 1, "kept, so that sends fail clearly");
    struct channel_creds c;
    cr_assert_eq(channels_lookup(t, "100", &c), 0);
    cr_expect_not(c.token_ok);
    cr_expect_eq(c.token[0], '\0');
    channels_free(&t);
}

Test(dispatcher_channels, deleted_records_and_tombstones_mark_the_channel_deleted)
{
    struct channels *t = channels_new(key);
    struct record v1 = {"100", "acme", "acme", "tok", 1, false, 0};
    struct record gone = {"100", "acme", "acme", "tok", 2, true, 0};
    cr_assert_eq(apply(t, "100", &v1), 1);
    cr_assert_eq(apply(t, "100", &gone), 1);
    struct channel_creds c;
    cr_assert_eq(channels_lookup(t, "100", &c), 0);
    cr_expect(c.deleted);
    cr_expect_not(c.token_ok);

    struct record w1 = {"200", "acme", "acme", "tok", 1, false, 0};
    cr_assert_eq(apply(t, "200", &w1), 1);
    char errstr[128];
    cr_assert_eq(channels_apply(t, "200", 3, NULL, 0, errstr, sizeof errstr), 1);
    cr_assert_eq(channels_lookup(t, "200", &c), 0);
    cr_expect(c.deleted);
    cr_expect_eq(c.token[0], '\0');
    /* A later registration (a higher version) brings it back. */
    struct record w3 = {"200", "acme", "acme", "tok-new", 3, false, 0};
    cr_assert_eq(apply(t, "200", &w3), 1);
    cr_assert_eq(channels_lookup(t, "200", &c), 0);
    cr_expect_not(c.deleted);
    cr_expect_str_eq(c.token, "tok-new");
    channels_creds_wipe(&c);
    channels_free(&t);
}

Test(dispatcher_channels, lists_a_tenants_live_channels_in_order)
{
    struct channels *t = channels_new(key);
    struct record a = {"300", "acme", "acme", "t", 1, false, 0};
    struct record b = {"100", "acme", "acme", "t", 1, false, 0};
    struct record other = {"200", "other", "other", "t", 1, false, 0};
    struct record gone = {"400", "acme", "acme", "t", 1, true, 0};
    apply(t, "300", &a);
    apply(t, "100", &b);
    apply(t, "200", &other);
    apply(t, "400", &gone);
    char(*ids)[CHANNEL_ID_MAX + 1] = NULL;
    size_t n = 0;
    cr_assert_eq(channels_tenant_list(t, "acme", &ids, &n), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(ids[0], "100");
    cr_expect_str_eq(ids[1], "300");
    free(ids);
    cr_assert_eq(channels_tenant_list(t, "nobody", &ids, &n), 0);
    cr_expect_eq(n, 0);
    free(ids);
    channels_free(&t);
}

Test(dispatcher_channels, the_record_key_names_a_channel_the_record_leaves_out)
{
    struct channels *t = channels_new(key);
    struct record r = {"", "acme", "acme", "tok", 1, false, 0};
    cr_assert_eq(apply(t, "100", &r), 1);
    struct channel_creds c;
    cr_assert_eq(channels_lookup(t, "100", &c), 0);
    cr_expect(c.token_ok);
    channels_creds_wipe(&c);
    channels_free(&t);
}

struct bad_record {
    const char *name;
    const char *key;
    const uint8_t *value;
    size_t len;
    bool use_record;
    struct record record;
};

static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};

static const struct bad_record bad_records[] = {
    {"not protobuf", "100", garbage, sizeof garbage, false, {0}},
    {"tombstone without a key", "", NULL, 0, false, {0}},
    {"no tenant", "100", NULL, 0, true, {"100", "", "", "tok", 1, false, 0}},
    {"no channel id anywhere", "", NULL, 0, true, {"", "acme", "acme", "tok", 1, false, 0}},
    {"key too long",
     "1234567890123456789012345678901234567890123456789012345678901234567890",
     garbage,
     sizeof garbage,
     false,
     {0}},
};

Test(dispatcher_channels, refuses_malformed_records)
{
    struct channels *t = channels_new(key);
    for (size_t i = 0; i < sizeof bad_records / sizeof bad_records[0]; i++) {
        const struct bad_record *b = &bad_records[i];
        char errstr[256] = "";
        int rc;
        if (b->use_record) {
            size_t len;
            uint8_t *buf = pack(&b->record, &len);
            rc = channels_apply(t, b->key, strlen(b->key), buf, len, errstr, sizeof errstr);
            free(buf);
        } else {
            rc = channels_apply(t, b->key, strlen(b->key), b->value, b->len, errstr, sizeof errstr);
        }
        cr_expect_eq(rc, -1, "%s: %d", b->name, rc);
        cr_expect(errstr[0], "%s: a reason", b->name);
    }
    channels_free(&t);
}
