/* Unit tests for services/ingest/registry_record: the ChannelConfig that goes
 * to the `channels` topic carries every field and the sealed token (which
 * opens with the data key and "<tenant>/<channel>"), the API's JSON shows
 * fingerprints and nothing secret, and the AAD is built as documented. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/registry_record.h"
#include "kizuna/v1/channel.pb-c.h"

TestSuite(registry_record);

static const uint8_t key[CRYPTO_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const char TOKEN[] = "channel-access-token-plaintext";

static void row_fill(struct channel_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->tenant_id, sizeof row->tenant_id, "acme");
    snprintf(row->channel_id, sizeof row->channel_id, "1234567890");
    snprintf(row->name, sizeof row->name, "Shop \"Tokyo\"");
    snprintf(row->bot_user_id, sizeof row->bot_user_id, "U8e742f61d673b39c7fff3cecb7536ef0");
    snprintf(row->timezone, sizeof row->timezone, "Asia/Tokyo");
    row->monthly_quota = 15000;
    snprintf(row->secret_fingerprint, sizeof row->secret_fingerprint, "4e1f2746");
    snprintf(row->access_token_fingerprint, sizeof row->access_token_fingerprint, "0a1b2c3d");
    char aad[REGISTRY_AAD_MAX];
    int aadlen = registry_aad(row->tenant_id, row->channel_id, aad, sizeof aad);
    long n = crypto_seal(key, aad, (size_t)aadlen, TOKEN, strlen(TOKEN), row->access_token_sealed,
                         sizeof row->access_token_sealed);
    cr_assert_gt(n, 0);
    row->access_token_sealed_len = (size_t)n;
    row->version = 7;
    row->created_at_ms = 1764115865123LL; /* 2025-11-26T00:11:05.123Z */
    row->updated_at_ms = 1764115925004LL; /* 2025-11-26T00:12:05.004Z */
}

Test(registry_record, aad_is_tenant_slash_channel)
{
    char aad[REGISTRY_AAD_MAX];
    cr_assert_eq(registry_aad("acme", "1234567890", aad, sizeof aad), 15);
    cr_assert_str_eq(aad, "acme/1234567890");
    char tiny[8];
    cr_assert_eq(registry_aad("acme", "1234567890", tiny, sizeof tiny), -1);
}

Test(registry_record, channel_config_carries_every_field_and_the_sealed_token)
{
    struct channel_row row;
    row_fill(&row);
    size_t len = 0;
    uint8_t *buf = registry_record_pack(&row, "0b9d7c6e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", &len);
    cr_assert_not_null(buf);
    cr_assert_null(memmem(buf, len, TOKEN, strlen(TOKEN)), "the token is not in the clear");
    Kizuna__V1__ChannelConfig *cfg = kizuna__v1__channel_config__unpack(NULL, len, buf);
    cr_assert_not_null(cfg);
    cr_assert_str_eq(cfg->envelope->event_id, "0b9d7c6e-1f2a-4b3c-8d4e-5f6a7b8c9d0e");
    cr_assert_str_eq(cfg->envelope->tenant_id, "acme");
    cr_assert_str_eq(cfg->envelope->channel_id, "1234567890");
    cr_assert_eq(cfg->envelope->occurred_at, row.updated_at_ms);
    cr_assert_str_eq(cfg->envelope->causation_id, "");
    cr_assert_str_eq(cfg->channel_id, "1234567890");
    cr_assert_str_eq(cfg->tenant_id, "acme");
    cr_assert_str_eq(cfg->name, "Shop \"Tokyo\"");
    cr_assert_str_eq(cfg->bot_user_id, "U8e742f61d673b39c7fff3cecb7536ef0");
    cr_assert_str_eq(cfg->timezone, "Asia/Tokyo");
    cr_assert_eq(cfg->monthly_quota, 15000);
    cr_assert_str_eq(cfg->secret_fingerprint, "4e1f2746");
    cr_assert_eq(cfg->version, 7);
    cr_assert_eq(cfg->updated_at, row.updated_at_ms);
    cr_assert_not(cfg->deleted);

    char aad[REGISTRY_AAD_MAX];
    int aadlen = registry_aad(cfg->tenant_id, cfg->channel_id, aad, sizeof aad);
    uint8_t plain[128];
    long n = crypto_open(key, aad, (size_t)aadlen, cfg->access_token_sealed.data,
                         cfg->access_token_sealed.len, plain, sizeof plain);
    cr_assert_eq(n, (long)strlen(TOKEN), "the dispatcher's view opens the token");
    cr_assert_eq(memcmp(plain, TOKEN, (size_t)n), 0);
    kizuna__v1__channel_config__free_unpacked(cfg, NULL);
    free(buf);
}

Test(registry_record, a_deleted_channel_is_a_record_with_deleted_true)
{
    struct channel_row row;
    row_fill(&row);
    row.deleted = true;
    size_t len = 0;
    uint8_t *buf = registry_record_pack(&row, "e", &len);
    Kizuna__V1__ChannelConfig *cfg = kizuna__v1__channel_config__unpack(NULL, len, buf);
    cr_assert_not_null(cfg);
    cr_assert(cfg->deleted);
    cr_assert_str_eq(cfg->channel_id, "1234567890", "the last values stay for reference");
    kizuna__v1__channel_config__free_unpacked(cfg, NULL);
    free(buf);
}

Test(registry_record, api_json_shows_fingerprints_and_no_secret)
{
    struct channel_row row;
    row_fill(&row);
    char *text = registry_record_json(&row);
    cr_assert_not_null(text);
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    cr_assert_not_null(o, "%s", text);
    static const char *want[] = {"channel_id",
                                 "name",
                                 "bot_user_id",
                                 "timezone",
                                 "monthly_quota",
                                 "secret_fingerprint",
                                 "access_token_fingerprint",
                                 "version",
                                 "created_at",
                                 "updated_at"};
    cr_assert_eq(json_object_size(o), sizeof want / sizeof want[0], "%s", text);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(json_object_get(o, want[i]), "%s missing", want[i]);
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "Shop \"Tokyo\"");
    cr_assert_str_eq(json_string_value(json_object_get(o, "secret_fingerprint")), "4e1f2746");
    cr_assert_eq(json_integer_value(json_object_get(o, "monthly_quota")), 15000);
    cr_assert_str_eq(json_string_value(json_object_get(o, "created_at")),
                     "2025-11-26T00:11:05.123Z");
    cr_assert_str_eq(json_string_value(json_object_get(o, "updated_at")),
                     "2025-11-26T00:12:05.004Z");
    cr_assert_null(strstr(text, "acme"), "the tenant is implied by the token, not shown");
    cr_assert_null(strstr(text, TOKEN));
    json_decref(o);
    free(text);
}

Test(registry_record, list_items_have_the_same_shape)
{
    struct channel_row row;
    row_fill(&row);
    json_t *array = json_array();
    cr_assert_eq(registry_record_json_append(array, &row), 0);
    cr_assert_eq(registry_record_json_append(array, &row), 0);
    cr_assert_eq(json_array_size(array), 2);
    char *one = registry_record_json(&row);
    char *item = json_dumps(json_array_get(array, 0), JSON_COMPACT);
    cr_assert_str_eq(item, one);
    free(one);
    free(item);
    json_decref(array);
}
