/* dead_letter_envelope_read: the tenant, channel and event id of a record
 * whose type the relay does not know, read from the Envelope every Kizuna
 * event carries as field 1; and nothing, never a crash or a read past the
 * end, from bytes that are not such a record. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dead_letter.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"

/* A packed WebhookEvent with an envelope of tenant (NULL: no envelope). */
static size_t webhook_pack(const char *tenant, uint8_t **out)
{
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = "5a25f8f2-1521-5823-a305-b1459a5b577e";
    env.tenant_id = (char *)tenant;
    env.channel_id = "1234567890";
    env.occurred_at = 1700000000123LL;
    if (tenant)
        we.envelope = &env;
    we.type = "message";
    we.raw_json = "{\"type\":\"message\"}";
    we.timestamp = 1700000000123LL;
    size_t len = kizuna__v1__webhook_event__get_packed_size(&we);
    *out = malloc(len ? len : 1);
    cr_assert_not_null(*out);
    kizuna__v1__webhook_event__pack(&we, *out);
    return len;
}

Test(dead_letter_envelope, a_webhook_event_gives_its_tenant_channel_and_event)
{
    uint8_t *buf = NULL;
    size_t len = webhook_pack("tenant-a", &buf);
    struct dead_letter_envelope env;
    cr_assert(dead_letter_envelope_read(buf, len, &env));
    cr_expect_str_eq(env.tenant_id, "tenant-a");
    cr_expect_str_eq(env.channel_id, "1234567890");
    cr_expect_str_eq(env.event_id, "5a25f8f2-1521-5823-a305-b1459a5b577e");
    free(buf);
}

Test(dead_letter_envelope, any_event_type_is_read_the_same_way)
{
    Kizuna__V1__ChannelConfig cc = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.tenant_id = "tenant-b";
    env.event_id = "e";
    cc.envelope = &env;
    cc.channel_id = "42";
    cc.tenant_id = "tenant-b";
    uint8_t buf[512];
    size_t len = kizuna__v1__channel_config__pack(&cc, buf);
    struct dead_letter_envelope out;
    cr_assert(dead_letter_envelope_read(buf, len, &out));
    cr_expect_str_eq(out.tenant_id, "tenant-b");
    cr_expect_str_eq(out.event_id, "e");
    cr_expect_str_eq(out.channel_id, "");
}

Test(dead_letter_envelope, no_envelope_or_no_tenant_gives_nothing)
{
    uint8_t *buf = NULL;
    size_t len = webhook_pack(NULL, &buf);
    struct dead_letter_envelope env;
    memset(&env, 'x', sizeof env);
    cr_expect_not(dead_letter_envelope_read(buf, len, &env));
    cr_expect_str_eq(env.tenant_id, "");
    cr_expect_str_eq(env.event_id, "");
    free(buf);
    len = webhook_pack("", &buf);
    cr_expect_not(dead_letter_envelope_read(buf, len, &env));
    free(buf);
}

Test(dead_letter_envelope, every_truncation_is_read_safely)
{
    uint8_t *buf = NULL;
    size_t len = webhook_pack("tenant-c", &buf);
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so that ASan sees any read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        struct dead_letter_envelope env;
        bool found = dead_letter_envelope_read(cut, n, &env);
        if (found)
            cr_expect_str_eq(env.tenant_id, "tenant-c", "at %zu bytes", n);
        free(cut);
    }
    free(buf);
}

struct bad_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
};

static const uint8_t not_proto[] = "row-1";
static const uint8_t huge_length[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x01, 'a'};
static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
static const uint8_t group[] = {0x0b, 0x12, 0x01, 'a', 0x0c};
static const uint8_t nul_tenant[] = {0x0a, 0x04, 0x12, 0x02, 'a', 0x00};

static const struct bad_case bad_cases[] = {
    {"empty", NULL, 0},
    {"plain text", not_proto, sizeof not_proto - 1},
    {"length past the end", huge_length, sizeof huge_length},
    {"varint of 11 bytes", long_varint, sizeof long_varint},
    {"a group", group, sizeof group},
    {"a tenant with a NUL byte", nul_tenant, sizeof nul_tenant},
};

Test(dead_letter_envelope, bytes_that_are_no_event_give_nothing)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct dead_letter_envelope env;
        cr_expect_not(dead_letter_envelope_read(bad_cases[i].bytes, bad_cases[i].len, &env), "%s",
                      bad_cases[i].name);
        cr_expect_str_eq(env.tenant_id, "", "%s", bad_cases[i].name);
    }
}

Test(dead_letter_envelope, a_tenant_longer_than_any_of_ours_is_left_out)
{
    char tenant[200];
    memset(tenant, 't', sizeof tenant - 1);
    tenant[sizeof tenant - 1] = '\0';
    uint8_t *buf = NULL;
    size_t len = webhook_pack(tenant, &buf);
    struct dead_letter_envelope env;
    cr_expect_not(dead_letter_envelope_read(buf, len, &env));
    free(buf);
}
