/* Unit tests for the LINE simulator's rules (tests/line-sim), without the
 * network: schema validation and LINE's error body, UTF-16 counting,
 * retry-key form and store, token buckets and the one-second rate meter,
 * the monthly quota, duplicate fingerprints, fault decisions, and the
 * channel state that ties them together (409 on a repeated key, single-use
 * reply tokens, the quota boundary, blocked friends, rich-menu links).
 *
 * The unit binary links common/ and the services, not the simulator, so
 * the simulator's pure modules are compiled into this file directly. If the
 * Makefile ever links the simulator's objects into the unit binary, replace
 * these includes with the headers. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_dedup.h"
#include "sim_endpoint.h"
#include "sim_faults.h"
#include "sim_map.h"
#include "sim_quota.h"
#include "sim_ratelimit.h"
#include "sim_retrykey.h"
#include "sim_state.h"
#include "sim_validate.h"

#define MS 1000000LL
#define SEC 1000000000LL

/* --- helpers ----------------------------------------------------------- */

/* {"to":"U1","messages":[{"type":"text","text":<text>}]} with text made of
 * n copies of unit (UTF-8). */
static char *push_text_repeated(const char *unit, size_t n)
{
    size_t ulen = strlen(unit);
    size_t cap = 64 + ulen * n;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    size_t o =
        (size_t)snprintf(body, cap, "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":\"");
    for (size_t i = 0; i < n; i++) {
        memcpy(body + o, unit, ulen);
        o += ulen;
    }
    snprintf(body + o, cap - o, "\"}]}");
    return body;
}

static char *text_5000_ascii(void)
{
    return push_text_repeated("a", 5000);
}

static char *text_5001_ascii(void)
{
    return push_text_repeated("a", 5001);
}

/* 2,500 emoji outside the BMP are 5,000 UTF-16 units: allowed. */
static char *text_2500_emoji(void)
{
    return push_text_repeated("\xF0\x9F\x98\x80", 2500);
}

/* 2,501 of them are 5,002 units though only 2,501 code points. */
static char *text_2501_emoji(void)
{
    return push_text_repeated("\xF0\x9F\x98\x80", 2501);
}

/* 5,000 kana are 5,000 units (3 UTF-8 bytes each, one unit each). */
static char *text_5000_kana(void)
{
    return push_text_repeated("\xE3\x81\x82", 5000);
}

static char *multicast_n(size_t n)
{
    size_t cap = 128 + n * 16;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    size_t o = (size_t)snprintf(body, cap, "{\"to\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o, "%s\"U%05zu\"", i ? "," : "", i);
    snprintf(body + o, cap - o, "],\"messages\":[{\"type\":\"text\",\"text\":\"m\"}]}");
    return body;
}

static char *multicast_500(void)
{
    return multicast_n(500);
}

static char *multicast_501(void)
{
    return multicast_n(501);
}

static char *bulk_link_501(void)
{
    char *mc = multicast_n(501);
    const char *ids = strchr(mc, '[');
    const char *end = strchr(ids, ']');
    size_t cap = strlen(mc) + 64;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    snprintf(body, cap, "{\"richMenuId\":\"r\",\"userIds\":%.*s}", (int)(end - ids + 1), ids);
    free(mc);
    return body;
}

/* The same 501 user ids for bulk unlink, which has no richMenuId. */
static char *bulk_unlink_501(void)
{
    char *link = bulk_link_501();
    const char *ids = strstr(link, "\"userIds\"");
    size_t cap = strlen(link) + 8;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    snprintf(body, cap, "{%s", ids);
    free(link);
    return body;
}

static char *push_messages_n(size_t n)
{
    size_t cap = 64 + n * 40;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    size_t o = (size_t)snprintf(body, cap, "{\"to\":\"U1\",\"messages\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o, "%s{\"type\":\"text\",\"text\":\"%zu\"}",
                              i ? "," : "", i);
    snprintf(body + o, cap - o, "]}");
    return body;
}

static char *push_5_messages(void)
{
    return push_messages_n(5);
}

static char *push_6_messages(void)
{
    return push_messages_n(6);
}

/* --- UTF-16 counting ----------------------------------------------------- */

Test(linesim, utf16_length_counts_surrogate_pairs_as_two)
{
    static const struct {
        const char *s;
        size_t units;
    } cases[] = {
        {"", 0},
        {"abc", 3},
        {"\xC3\xA9", 1},                         /* é: 2 bytes, 1 unit */
        {"\xE3\x81\x82\xE3\x81\x84", 2},         /* あい: 3 bytes each */
        {"\xF0\x9F\x98\x80", 2},                 /* 😀: a surrogate pair */
        {"a\xF0\x9F\x98\x80\x62", 4},            /* a😀b */
        {"\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBB", 4}, /* 👍🏻: two astral code points */
        {"\xE2\x82\xAC", 1},                     /* €: BMP */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(sim_utf16_len(cases[i].s, strlen(cases[i].s)), cases[i].units, "case %zu", i);
}

/* --- validation: accepted bodies ---------------------------------------- */

struct good_case {
    const char *name;
    enum sim_endpoint ep;
    const char *body;
    char *(*make)(void);
};

static const struct good_case good_cases[] = {
    {"push text", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}"},
    {"push 5 messages", SIM_EP_PUSH, NULL, push_5_messages},
    {"text of 5000 ascii", SIM_EP_PUSH, NULL, text_5000_ascii},
    {"text of 2500 emoji (5000 units)", SIM_EP_PUSH, NULL, text_2500_emoji},
    {"text of 5000 kana", SIM_EP_PUSH, NULL, text_5000_kana},
    {"multicast to 500", SIM_EP_MULTICAST, NULL, multicast_500},
    {"reply", SIM_EP_REPLY,
     "{\"replyToken\":\"r\",\"notificationDisabled\":true,"
     "\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}"},
    {"broadcast", SIM_EP_BROADCAST, "{\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}"},
    {"narrowcast with limit", SIM_EP_NARROWCAST,
     "{\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}],\"recipient\":{\"type\":\"audience\","
     "\"audienceGroupId\":1},\"limit\":{\"max\":10,\"upToRemainingQuota\":true}}"},
    {"sticker", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"sticker\",\"packageId\":\"446\","
     "\"stickerId\":\"1988\"}]}"},
    {"image and video", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"image\",\"originalContentUrl\":\"https://e/a.jpg\","
     "\"previewImageUrl\":\"https://e/p.jpg\"},{\"type\":\"video\",\"originalContentUrl\":"
     "\"https://e/a.mp4\",\"previewImageUrl\":\"https://e/p.jpg\"}]}"},
    {"audio and location", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"audio\",\"originalContentUrl\":\"https://e/a.m4a\","
     "\"duration\":60000},{\"type\":\"location\",\"title\":\"t\",\"address\":\"a\","
     "\"latitude\":35.6,\"longitude\":139.7}]}"},
    {"imagemap", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"imagemap\",\"baseUrl\":\"https://e/im\","
     "\"altText\":\"map\",\"baseSize\":{\"width\":1040,\"height\":1040},\"actions\":[{\"type\":"
     "\"uri\",\"linkUri\":\"https://e\",\"area\":{\"x\":0,\"y\":0,\"width\":520,\"height\":1040}},"
     "{\"type\":\"message\",\"text\":\"hi\",\"area\":{\"x\":520,\"y\":0,\"width\":520,"
     "\"height\":1040}}]}]}"},
    {"buttons and confirm templates", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"template\",\"altText\":\"b\",\"template\":{\"type\":"
     "\"buttons\",\"text\":\"pick\",\"actions\":[{\"type\":\"postback\",\"label\":\"a\",\"data\":"
     "\"x=1\"},{\"type\":\"uri\",\"label\":\"b\",\"uri\":\"https://e\"}]}},{\"type\":\"template\","
     "\"altText\":\"c\",\"template\":{\"type\":\"confirm\",\"text\":\"ok?\",\"actions\":[{\"type\":"
     "\"message\",\"label\":\"y\",\"text\":\"yes\"},{\"type\":\"message\",\"label\":\"n\",\"text\":"
     "\"no\"}]}}]}"},
    {"carousel templates", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"template\",\"altText\":\"c\",\"template\":{\"type\":"
     "\"carousel\",\"columns\":[{\"text\":\"c1\",\"actions\":[{\"type\":\"message\",\"label\":"
     "\"a\","
     "\"text\":\"a\"}]}]}},{\"type\":\"template\",\"altText\":\"ic\",\"template\":{\"type\":"
     "\"image_carousel\",\"columns\":[{\"imageUrl\":\"https://e/i.jpg\",\"action\":{\"type\":"
     "\"uri\",\"uri\":\"https://e\"}}]}}]}"},
    {"flex bubble and carousel", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"flex\",\"altText\":\"f\",\"contents\":{\"type\":"
     "\"bubble\",\"body\":{\"type\":\"box\",\"layout\":\"vertical\",\"contents\":[]}}},{\"type\":"
     "\"flex\",\"altText\":\"g\",\"contents\":{\"type\":\"carousel\",\"contents\":[{\"type\":"
     "\"bubble\"}]}}]}"},
    {"quick reply and sender", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":\"q\",\"sender\":{\"name\":\"Bot\"},"
     "\"quickReply\":{\"items\":[{\"type\":\"action\",\"action\":{\"type\":\"message\",\"label\":"
     "\"a\",\"text\":\"a\"}}]}}]}"},
    {"textV2 and coupon", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"textV2\",\"text\":\"hi {n}\"},{\"type\":\"coupon\","
     "\"couponId\":\"c1\"}]}"},
    {"rich menu bulk link", SIM_EP_RICHMENU_BULK_LINK,
     "{\"richMenuId\":\"richmenu-1\",\"userIds\":[\"U1\",\"U2\"]}"},
    {"rich menu bulk unlink", SIM_EP_RICHMENU_BULK_UNLINK, "{\"userIds\":[\"U1\",\"U2\"]}"},
};

Test(linesim, validate_accepts_every_documented_message_type)
{
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct good_case *c = &good_cases[i];
        char *made = c->make ? c->make() : NULL;
        const char *body = made ? made : c->body;
        struct sim_verr err;
        json_t *root = NULL;
        int rc = sim_validate_body(c->ep, body, strlen(body), &root, &err);
        cr_expect_eq(rc, 0, "%s: %s (%s: %s)", c->name, err.message,
                     err.ndetails ? err.details[0].property : "",
                     err.ndetails ? err.details[0].message : "");
        cr_expect(rc != 0 || json_is_object(root), "%s: parsed body", c->name);
        json_decref(root);
        free(made);
    }
}

/* --- validation: the bad-input table ------------------------------------ */

struct bad_case {
    const char *name;
    enum sim_endpoint ep;
    const char *body;
    char *(*make)(void);
    const char *message;  /* substring of the top-level message */
    const char *property; /* first detail's property, or NULL for none */
    const char *detail;   /* substring of that detail's message */
};

static const struct bad_case bad_cases[] = {
    {"6 messages", SIM_EP_PUSH, NULL, push_6_messages, "1 error(s)", "messages",
     "Size must be between 1 and 5"},
    {"no messages", SIM_EP_BROADCAST, "{\"messages\":[]}", NULL, "1 error(s)", "messages",
     "Size must be between 1 and 5"},
    {"text of 5001 units", SIM_EP_PUSH, NULL, text_5001_ascii, "1 error(s)", "messages[0].text",
     "between 1 and 5000"},
    {"2501 emoji are 5002 units", SIM_EP_PUSH, NULL, text_2501_emoji, "1 error(s)",
     "messages[0].text", "between 1 and 5000"},
    {"multicast to 501", SIM_EP_MULTICAST, NULL, multicast_501, "1 error(s)", "to",
     "Size must be between 1 and 500"},
    {"multicast to an empty id", SIM_EP_MULTICAST,
     "{\"to\":[\"U1\",\"\"],\"messages\":[{\"type\":\"text\",\"text\":\"m\"}]}", NULL, "1 error(s)",
     "to[1]", "non-empty"},
    {"push without to", SIM_EP_PUSH, "{\"messages\":[{\"type\":\"text\",\"text\":\"m\"}]}", NULL,
     "1 error(s)", "to", "Must be specified"},
    {"push without messages", SIM_EP_PUSH, "{\"to\":\"U1\"}", NULL, "1 error(s)", "messages",
     "Must be specified"},
    {"reply without replyToken", SIM_EP_REPLY,
     "{\"messages\":[{\"type\":\"text\",\"text\":\"m\"}]}", NULL, "1 error(s)", "replyToken",
     "Must be specified"},
    {"text without text", SIM_EP_PUSH, "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\"}]}", NULL,
     "1 error(s)", "messages[0].text", "Must be specified"},
    {"empty text", SIM_EP_PUSH, "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":\"\"}]}",
     NULL, "1 error(s)", "messages[0].text", "May not be empty"},
    {"text that is a number", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":5}]}", NULL, "1 error(s)",
     "messages[0].text", "Must be a string"},
    {"message without type", SIM_EP_PUSH, "{\"to\":\"U1\",\"messages\":[{\"text\":\"m\"}]}", NULL,
     "1 error(s)", "messages[0].type", "Must be specified"},
    {"unknown message type", SIM_EP_PUSH, "{\"to\":\"U1\",\"messages\":[{\"type\":\"hologram\"}]}",
     NULL, "1 error(s)", "messages[0].type", "Must be one of"},
    {"message that is a string", SIM_EP_PUSH, "{\"to\":\"U1\",\"messages\":[\"hi\"]}", NULL,
     "1 error(s)", "messages[0]", "Must be an object"},
    {"sticker without stickerId", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"sticker\",\"packageId\":\"1\"}]}", NULL,
     "1 error(s)", "messages[0].stickerId", "Must be specified"},
    {"image over http", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"image\",\"originalContentUrl\":\"http://e/a.jpg\","
     "\"previewImageUrl\":\"https://e/p.jpg\"}]}",
     NULL, "1 error(s)", "messages[0].originalContentUrl", "HTTPS"},
    {"audio without duration", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"audio\",\"originalContentUrl\":\"https://e/a\"}]}",
     NULL, "1 error(s)", "messages[0].duration", "Must be specified"},
    {"location without latitude", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"location\",\"title\":\"t\",\"address\":\"a\","
     "\"longitude\":1}]}",
     NULL, "1 error(s)", "messages[0].latitude", "Must be specified"},
    {"imagemap action without area", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"imagemap\",\"baseUrl\":\"https://e\",\"altText\":"
     "\"m\",\"baseSize\":{\"width\":1040,\"height\":1040},\"actions\":[{\"type\":\"uri\","
     "\"linkUri\":\"https://e\"}]}]}",
     NULL, "1 error(s)", "messages[0].actions[0].area", "Must be specified"},
    {"confirm with one action", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"template\",\"altText\":\"c\",\"template\":{\"type\":"
     "\"confirm\",\"text\":\"ok?\",\"actions\":[{\"type\":\"message\",\"text\":\"y\"}]}}]}",
     NULL, "1 error(s)", "messages[0].template.actions", "Size must be between 2 and 2"},
    {"buttons action without data", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"template\",\"altText\":\"b\",\"template\":{\"type\":"
     "\"buttons\",\"text\":\"t\",\"actions\":[{\"type\":\"postback\"}]}}]}",
     NULL, "1 error(s)", "messages[0].template.actions[0].data", "Must be specified"},
    {"flex without altText", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"flex\",\"contents\":{\"type\":\"bubble\"}}]}", NULL,
     "1 error(s)", "messages[0].altText", "Must be specified"},
    {"flex carousel of 13", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"messages\":[{\"type\":\"flex\",\"altText\":\"f\",\"contents\":{\"type\":"
     "\"carousel\",\"contents\":[{},{},{},{},{},{},{},{},{},{},{},{},{}]}}]}",
     NULL, "1 error(s)", "messages[0].contents.contents", "Size must be between 1 and 12"},
    {"notificationDisabled not boolean", SIM_EP_PUSH,
     "{\"to\":\"U1\",\"notificationDisabled\":\"yes\",\"messages\":[{\"type\":\"text\","
     "\"text\":\"m\"}]}",
     NULL, "1 error(s)", "notificationDisabled", "Must be a boolean"},
    {"several errors at once", SIM_EP_PUSH, "{\"messages\":[{\"type\":\"text\"}]}", NULL,
     "2 error(s)", "to", "Must be specified"},
    {"invalid JSON", SIM_EP_PUSH, "{\"to\":\"U1\",", NULL, "could not be parsed as JSON", NULL,
     NULL},
    {"empty body", SIM_EP_PUSH, "", NULL, "could not be parsed as JSON", NULL, NULL},
    {"body that is an array", SIM_EP_PUSH, "[]", NULL, "must be a JSON object", NULL, NULL},
    {"bulk link of 501 users", SIM_EP_RICHMENU_BULK_LINK, NULL, bulk_link_501, "1 error(s)",
     "userIds", "Size must be between 1 and 500"},
    {"bulk link without richMenuId", SIM_EP_RICHMENU_BULK_LINK, "{\"userIds\":[\"U1\"]}", NULL,
     "1 error(s)", "richMenuId", "Must be specified"},
    {"bulk unlink of 501 users", SIM_EP_RICHMENU_BULK_UNLINK, NULL, bulk_unlink_501, "1 error(s)",
     "userIds", "Size must be between 1 and 500"},
    {"bulk unlink of no users", SIM_EP_RICHMENU_BULK_UNLINK, "{\"userIds\":[]}", NULL, "1 error(s)",
     "userIds", "Size must be between 1 and 500"},
    {"bulk unlink without userIds", SIM_EP_RICHMENU_BULK_UNLINK, "{}", NULL, "1 error(s)",
     "userIds", "Must be specified"},
};

Test(linesim, validate_rejects_bad_input_with_line_detail)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        char *made = c->make ? c->make() : NULL;
        const char *body = made ? made : c->body;
        const char *message = c->message, *property = c->property, *detail = c->detail;
        struct sim_verr err;
        json_t *root = (json_t *)1;
        int rc = sim_validate_body(c->ep, body, strlen(body), &root, &err);
        cr_expect_eq(rc, -1, "%s: accepted", c->name);
        cr_expect_null(root, "%s: *out must be NULL", c->name);
        cr_expect(strstr(err.message, message) != NULL, "%s: message \"%s\"", c->name, err.message);
        if (property) {
            cr_expect_geq(err.ndetails, 1, "%s: details", c->name);
            cr_expect_str_eq(err.details[0].property, property, "%s", c->name);
            cr_expect(strstr(err.details[0].message, detail) != NULL, "%s: detail \"%s\"", c->name,
                      err.details[0].message);
        } else {
            cr_expect_eq(err.ndetails, 0, "%s: no details expected", c->name);
        }
        free(made);
    }
}

Test(linesim, error_body_has_line_form)
{
    struct sim_verr err;
    json_t *root = NULL;
    const char *body = "{\"messages\":[{\"type\":\"text\"}]}";
    cr_assert_eq(sim_validate_body(SIM_EP_PUSH, body, strlen(body), &root, &err), -1);
    char *text = sim_verr_json(&err);
    cr_assert_not_null(text);
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j, "message")),
                     "The request body has 2 error(s)");
    json_t *details = json_object_get(j, "details");
    cr_assert_eq(json_array_size(details), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(details, 1), "property")),
                     "messages[0].text");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(details, 1), "message")),
                     "Must be specified");
    json_decref(j);
    free(text);

    /* Without details, the key is left out, as LINE does. */
    sim_verr_set(&err, "Invalid reply token");
    text = sim_verr_json(&err);
    cr_expect_str_eq(text, "{\"message\":\"Invalid reply token\"}");
    free(text);
}

Test(linesim, errors_beyond_the_detail_cap_are_still_counted)
{
    /* 5 messages with 4 missing fields each (location) = 20 errors. */
    const char *loc = "{\"type\":\"location\"}";
    char body[512];
    snprintf(body, sizeof body, "{\"to\":\"U1\",\"messages\":[%s,%s,%s,%s,%s]}", loc, loc, loc, loc,
             loc);
    struct sim_verr err;
    json_t *root = NULL;
    cr_assert_eq(sim_validate_body(SIM_EP_PUSH, body, strlen(body), &root, &err), -1);
    cr_expect_eq(err.nerrors, 20);
    cr_expect_eq(err.ndetails, SIM_VERR_MAX_DETAILS);
    cr_expect_str_eq(err.message, "The request body has 20 error(s)");
}

/* --- retry keys -------------------------------------------------------- */

Test(linesim, retry_key_must_be_a_hex_uuid)
{
    static const char *const good[] = {
        "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
        "00000000-0000-0000-0000-000000000000",
        "886313e1-3b8a-5372-9b90-0c9aee199e5d", /* version 5, as the dispatcher makes */
    };
    static const char *const bad[] = {
        "",
        "not-a-uuid",
        "123e4567-e89b-12d3-a456-42661417400",   /* 35 characters */
        "123e4567-e89b-12d3-a456-4266141740000", /* 37 */
        "123e4567e89b12d3a456426614174000",      /* no dashes */
        "123e4567-e89b-12d3a-456-426614174000",  /* dash misplaced */
        "123g4567-e89b-12d3-a456-426614174000",  /* not hex */
        "{123e4567-e89b-12d3-a456-426614174000}",
        " 123e4567-e89b-12d3-a456-42661417400",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect(sim_retrykey_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!sim_retrykey_valid(bad[i]), "\"%s\"", bad[i]);
    cr_expect(!sim_retrykey_valid(NULL));
}

Test(linesim, retry_key_store_remembers_for_the_ttl_only)
{
    struct sim_retrykeys *rk = sim_retrykeys_new();
    cr_assert_not_null(rk);
    const int64_t ttl = 86400 * SEC;
    const char *k1 = "123e4567-e89b-12d3-a456-426614174000";
    const char *k2 = "123e4567-e89b-12d3-a456-426614174001";
    cr_expect_null(sim_retrykeys_find(rk, k1, 0, ttl));
    cr_assert_eq(sim_retrykeys_add(rk, k1, "req-1", "[{\"id\":\"1\"}]", 10 * SEC), 0);
    cr_assert_eq(sim_retrykeys_add(rk, k2, "req-2", NULL, 20 * SEC), 0);

    const struct sim_retrykey_entry *e = sim_retrykeys_find(rk, k1, 11 * SEC, ttl);
    cr_assert_not_null(e);
    cr_expect_str_eq(e->request_id, "req-1");
    cr_expect_str_eq(e->sent_messages, "[{\"id\":\"1\"}]");
    e = sim_retrykeys_find(rk, k2, 11 * SEC, ttl);
    cr_assert_not_null(e);
    cr_expect_null(e->sent_messages);

    /* Just before 24 h the first key still conflicts; at 24 h it is gone. */
    cr_expect_not_null(sim_retrykeys_find(rk, k1, 10 * SEC + ttl - 1, ttl));
    cr_expect_null(sim_retrykeys_find(rk, k1, 10 * SEC + ttl, ttl));
    cr_expect_eq(sim_retrykeys_count(rk), 1);
    sim_retrykeys_expire(rk, 20 * SEC + ttl, ttl);
    cr_expect_eq(sim_retrykeys_count(rk), 0);
    sim_retrykeys_free(&rk);
    cr_expect_null(rk);
    sim_retrykeys_free(&rk); /* NULL is fine */
}

/* --- rate limits ------------------------------------------------------- */

Test(linesim, bucket_allows_the_limit_then_refills_at_the_rate)
{
    static const struct {
        const char *name;
        struct sim_rate rate;
        int64_t refill_one; /* time for one token */
    } cases[] = {
        {"push 2000/s", {2000, 1, 0}, SEC / 2000},
        {"multicast 200/s", {200, 1, 0}, SEC / 200},
        {"broadcast 60/hour", {60, 3600, 0}, 60 * SEC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_bucket b;
        int64_t t = 1000 * SEC;
        sim_bucket_set(&b, cases[i].rate, t);
        long passed = 0;
        while (sim_bucket_take(&b, t))
            passed++;
        cr_expect_eq(passed, cases[i].rate.limit, "%s: burst", cases[i].name);
        cr_expect(!sim_bucket_take(&b, t + cases[i].refill_one - 1), "%s: early", cases[i].name);
        cr_expect(sim_bucket_take(&b, t + cases[i].refill_one), "%s: refilled", cases[i].name);
        cr_expect(!sim_bucket_take(&b, t + cases[i].refill_one), "%s: one token only",
                  cases[i].name);
    }
}

Test(linesim, bucket_sustains_exactly_the_limit)
{
    /* 2,000 evenly spaced requests a second for 10 s all pass after the
     * burst is spent; 2,001 a second do not. */
    struct sim_bucket b;
    sim_bucket_set(&b, (struct sim_rate){2000, 1, 0}, 0);
    for (int i = 0; i < 2000; i++)
        sim_bucket_take(&b, 0);
    long refused = 0;
    for (int64_t t = SEC / 2000; t <= 10 * SEC; t += SEC / 2000)
        refused += !sim_bucket_take(&b, t);
    cr_expect_eq(refused, 0);
    long passed = 0;
    for (int64_t k = 1; k <= 2001 * 10; k++)
        passed += sim_bucket_take(&b, 10 * SEC + k * (SEC / 2001));
    cr_expect_leq(passed, 2000 * 10 + 1);
    cr_expect_geq(passed, 2000 * 10 - 1);
}

Test(linesim, bucket_with_limit_zero_is_unlimited)
{
    struct sim_bucket b;
    sim_bucket_set(&b, (struct sim_rate){0, 1, 0}, 0);
    for (int i = 0; i < 100000; i++)
        cr_assert(sim_bucket_take(&b, 0));
}

Test(linesim, ratemeter_reads_the_busiest_sliding_second)
{
    struct sim_ratemeter m = {0};
    /* 3 hits in the first second, then windows that straddle it. */
    sim_ratemeter_hit(&m, 0);
    sim_ratemeter_hit(&m, 500 * MS);
    sim_ratemeter_hit(&m, 999 * MS);
    cr_expect_eq(m.max, 3);
    sim_ratemeter_hit(&m, 1000 * MS); /* the hit at 0 leaves (0, 1 s] */
    cr_expect_eq(m.max, 3);
    sim_ratemeter_hit(&m, 1400 * MS);
    cr_expect_eq(m.max, 4); /* 0.5, 0.999, 1.0, 1.4 are within one second */
    cr_expect_eq(sim_ratemeter_current(&m, 1400 * MS), 4);
    cr_expect_eq(sim_ratemeter_current(&m, 3 * SEC), 0);
    sim_ratemeter_clear(&m);

    /* A burst larger than the initial ring grows it. */
    for (int i = 0; i < 5000; i++)
        sim_ratemeter_hit(&m, 10 * SEC + i * 100000LL); /* 5000 in 0.5 s */
    cr_expect_eq(m.max, 5000);
    sim_ratemeter_clear(&m);
}

/* --- quota --------------------------------------------------------------- */

Test(linesim, quota_counts_recipients_and_turns_over_in_jst)
{
    /* 2026-01-31T14:59:59Z is still January in Japan; one second later it
     * is February 1st, 00:00 JST. */
    const time_t jan = 1769871599, feb = jan + 1;
    cr_expect_eq(sim_quota_month_jst(jan), 2026 * 12 + 0);
    cr_expect_eq(sim_quota_month_jst(feb), 2026 * 12 + 1);

    struct sim_quota q = {.limited = true, .limit = 1000};
    cr_expect(sim_quota_allows(&q, 1000, jan));
    sim_quota_add(&q, 998, jan);
    cr_expect(sim_quota_allows(&q, 2, jan));
    cr_expect(!sim_quota_allows(&q, 3, jan));
    cr_expect_eq(sim_quota_remaining(&q, jan), 2);
    cr_expect(sim_quota_allows(&q, 1000, feb));
    cr_expect_eq(q.usage, 0);

    struct sim_quota none = {.limited = false};
    cr_expect(sim_quota_allows(&none, 1000000000LL, jan));
}

/* --- duplicates and faults --------------------------------------------- */

Test(linesim, identical_messages_to_the_same_recipient_are_a_duplicate)
{
    json_t *a = json_loads("[{\"type\":\"text\",\"text\":\"hi\"}]", 0, NULL);
    json_t *b = json_loads("[ {\"text\": \"hi\", \"type\": \"text\"} ]", 0, NULL);
    json_t *c = json_loads("[{\"type\":\"text\",\"text\":\"hi!\"}]", 0, NULL);
    char *ca = sim_dedup_canonical(a), *cb = sim_dedup_canonical(b), *cc = sim_dedup_canonical(c);
    cr_expect_str_eq(ca, cb);
    uint64_t ha = sim_dedup_messages_hash(ca), hc = sim_dedup_messages_hash(cc);
    cr_expect_neq(ha, hc);

    struct sim_fpset s = {0};
    cr_expect_eq(sim_fpset_add(&s, sim_dedup_fingerprint("U1", ha)), 1);
    cr_expect_eq(sim_fpset_add(&s, sim_dedup_fingerprint("U2", ha)), 1);
    cr_expect_eq(sim_fpset_add(&s, sim_dedup_fingerprint("U1", hc)), 1);
    cr_expect_eq(sim_fpset_add(&s, sim_dedup_fingerprint("U1", sim_dedup_messages_hash(cb))), 0);
    for (int i = 0; i < 10000; i++) { /* growth keeps what was there */
        char id[16];
        snprintf(id, sizeof id, "X%d", i);
        sim_fpset_add(&s, sim_dedup_fingerprint(id, ha));
    }
    cr_expect_eq(sim_fpset_add(&s, sim_dedup_fingerprint("U2", ha)), 0);
    cr_expect_eq(s.count, 10003);
    sim_fpset_clear(&s);
    free(ca);
    free(cb);
    free(cc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

Test(linesim, faults_split_by_rate_and_phase)
{
    struct sim_faults f;
    sim_faults_default(&f);
    f.error_rate = 0.2;
    f.drop_rate = 0.1;
    f.after_accept = 0.5;
    static const struct {
        double u_kind, u_phase;
        enum sim_fault fault;
        bool after;
    } cases[] = {
        {0.00, 0.9, SIM_FAULT_ERROR, false}, {0.19, 0.1, SIM_FAULT_ERROR, true},
        {0.20, 0.1, SIM_FAULT_DROP, true},   {0.29, 0.6, SIM_FAULT_DROP, false},
        {0.31, 0.1, SIM_FAULT_NONE, false},  {0.99, 0.0, SIM_FAULT_NONE, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool after = true;
        cr_expect_eq(sim_faults_decide(&f, cases[i].u_kind, cases[i].u_phase, &after),
                     cases[i].fault, "case %zu", i);
        cr_expect_eq(after, cases[i].after, "case %zu", i);
    }
    char err[128];
    json_t *bad = json_loads("{\"error_rate\":0.7,\"drop_rate\":0.5}", 0, NULL);
    cr_expect_eq(sim_faults_update(&f, bad, err, sizeof err), -1);
    cr_expect_eq(f.error_rate, 0.2); /* unchanged */
    json_decref(bad);
    for (int i = 0; i < 1000; i++) {
        double u = sim_faults_draw();
        cr_assert(u >= 0.0 && u < 1.0);
    }
}

/* --- channel state: the rules that need memory ------------------------- */

struct fixture {
    struct sim_state *st;
    struct sim_channel *ch;
};

static struct fixture state_setup(void)
{
    struct sim_state_options opts = {.record = true, .max_recorded = 0};
    struct fixture fx = {sim_state_new(&opts), NULL};
    cr_assert_not_null(fx.st);
    bool created = false;
    cr_assert_eq(sim_state_channel_add(fx.st, "1001", "tok-1001", NULL, &created), 0);
    cr_expect(created);
    cr_expect_eq(sim_state_channel_add(fx.st, "1002", "tok-1001", NULL, &created), -2);
    fx.ch = sim_state_acquire_token(fx.st, "tok-1001");
    cr_assert_not_null(fx.ch);
    sim_state_release(fx.st);
    return fx;
}

static struct sim_send_result send_push(struct fixture *fx, const char *to, const char *text,
                                        const char *key, const char *request_id, int64_t now_ns)
{
    char canonical[256];
    snprintf(canonical, sizeof canonical, "[{\"text\":\"%s\",\"type\":\"text\"}]", text);
    const char *ids[] = {to};
    struct sim_send s = {.ep = SIM_EP_PUSH,
                         .request_id = request_id,
                         .retry_key = key,
                         .to = ids,
                         .nto = 1,
                         .canonical = canonical,
                         .sent_messages = "[{\"id\":\"42\"}]"};
    struct sim_send_result r;
    sim_channel_send(fx->st, fx->ch, &s, now_ns, 1769871599000LL, &r);
    return r;
}

static json_int_t stat_get(struct sim_state *st, const char *key)
{
    json_t *s = sim_state_stats_json(st, 0);
    json_int_t v = json_integer_value(json_object_get(s, key));
    json_decref(s);
    return v;
}

Test(linesim, repeated_retry_key_is_a_conflict_with_the_first_request_id)
{
    struct fixture fx = state_setup();
    const char *key = "123e4567-e89b-12d3-a456-426614174000";
    struct sim_send_result r = send_push(&fx, "U1", "hello", key, "req-1", 1 * SEC);
    cr_expect_eq(r.outcome, SIM_SEND_ACCEPTED);
    cr_expect_eq(r.recipients, 1);
    r = send_push(&fx, "U1", "hello", key, "req-2", 2 * SEC);
    cr_expect_eq(r.outcome, SIM_SEND_CONFLICT);
    cr_expect_str_eq(r.accepted_request_id, "req-1");
    cr_expect_str_eq(r.sent_messages, "[{\"id\":\"42\"}]");
    free(r.sent_messages);
    /* The same content under a new key is accepted and counted duplicate. */
    r = send_push(&fx, "U1", "hello", "123e4567-e89b-12d3-a456-426614174001", "req-3", 3 * SEC);
    cr_expect_eq(r.outcome, SIM_SEND_ACCEPTED);
    cr_expect_eq(stat_get(fx.st, "accepted"), 2);
    cr_expect_eq(stat_get(fx.st, "conflict"), 1);
    cr_expect_eq(stat_get(fx.st, "duplicate"), 1);
    json_t *m = sim_state_messages_json(fx.st, "U1", NULL);
    cr_expect_eq(json_integer_value(json_object_get(m, "count")), 2);
    json_decref(m);
    sim_state_free(&fx.st);
}

Test(linesim, reply_token_is_single_use_and_expires)
{
    struct fixture fx = state_setup();
    cr_assert_eq(sim_channel_reply_token_add(fx.st, fx.ch, "rt1", "U1", 0, 100 * SEC), 0);
    cr_expect_eq(sim_channel_reply_token_add(fx.st, fx.ch, "rt1", "U1", 0, 100 * SEC), -2);
    cr_assert_eq(sim_channel_reply_token_add(fx.st, fx.ch, "rt2", "U2", 0, 100 * SEC), 0);
    struct sim_send s = {.ep = SIM_EP_REPLY,
                         .request_id = "r",
                         .reply_token = "rt1",
                         .canonical = "[{\"text\":\"hi\",\"type\":\"text\"}]"};
    struct sim_send_result r;
    sim_channel_send(fx.st, fx.ch, &s, 159 * SEC, 0, &r);
    cr_expect_eq(r.outcome, SIM_SEND_ACCEPTED);
    sim_channel_send(fx.st, fx.ch, &s, 159 * SEC, 0, &r);
    cr_expect_eq(r.outcome, SIM_SEND_BAD_REPLY_TOKEN, "used twice");
    s.reply_token = "rt2";
    sim_channel_send(fx.st, fx.ch, &s, 160 * SEC, 0, &r);
    cr_expect_eq(r.outcome, SIM_SEND_BAD_REPLY_TOKEN, "60 s old");
    s.reply_token = "never";
    sim_channel_send(fx.st, fx.ch, &s, 100 * SEC, 0, &r);
    cr_expect_eq(r.outcome, SIM_SEND_BAD_REPLY_TOKEN, "unknown");
    sim_state_free(&fx.st);
}

Test(linesim, quota_boundary_sends_exactly_the_allowed_recipients)
{
    struct fixture fx = state_setup();
    char err[128];
    json_t *limits = json_loads("{\"quota\":{\"type\":\"limited\",\"value\":5}}", 0, NULL);
    cr_assert_eq(sim_channel_limits_update(fx.st, fx.ch, limits, 0, err, sizeof err), 0, "%s", err);
    json_decref(limits);
    json_t *users = json_loads("[{\"user_id\":\"B\",\"blocked\":true}]", 0, NULL);
    cr_assert_eq(sim_channel_users_upsert(fx.st, fx.ch, users, err, sizeof err), 1);
    json_decref(users);

    const char *three[] = {"A1", "A2", "B"}; /* B blocked: costs nothing */
    struct sim_send s = {
        .ep = SIM_EP_MULTICAST, .request_id = "m1", .to = three, .nto = 3, .canonical = "[1]"};
    struct sim_send_result r;
    sim_channel_send(fx.st, fx.ch, &s, SEC, 1769871599000LL, &r);
    cr_expect_eq(r.outcome, SIM_SEND_ACCEPTED);
    cr_expect_eq(r.recipients, 2);
    const char *four[] = {"A3", "A4", "A5", "A6"};
    s.to = four;
    s.nto = 4;
    s.canonical = "[2]";
    sim_channel_send(fx.st, fx.ch, &s, SEC, 1769871599000LL, &r);
    cr_expect_eq(r.outcome, SIM_SEND_QUOTA, "2 + 4 > 5: refused whole");
    s.nto = 3;
    sim_channel_send(fx.st, fx.ch, &s, SEC, 1769871599000LL, &r);
    cr_expect_eq(r.outcome, SIM_SEND_ACCEPTED, "2 + 3 = 5");
    r = send_push(&fx, "A9", "one more", NULL, "p1", SEC);
    cr_expect_eq(r.outcome, SIM_SEND_QUOTA);
    cr_expect_eq(stat_get(fx.st, "deliveries"), 5);
    cr_expect_eq(stat_get(fx.st, "quota_exceeded"), 2);
    sim_state_free(&fx.st);
}

Test(linesim, limits_update_rejects_bad_values_and_changes_nothing)
{
    struct fixture fx = state_setup();
    static const char *const bad[] = {
        "[]",
        "{\"rate_limits\":{\"pushh\":1}}",
        "{\"rate_limits\":{\"push\":-1}}",
        "{\"rate_limits\":{\"push\":{\"limit\":1,\"period_s\":0}}}",
        "{\"quota\":{\"type\":\"limited\"}}",
        "{\"usage\":-5}",
        "{\"reply_token_ttl_s\":0}",
        "{\"rate_limits\":{\"push\":5},\"retry_key_ttl_s\":\"1\"}",
    };
    char err[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(j, "%s", bad[i]);
        cr_expect_eq(sim_channel_limits_update(fx.st, fx.ch, j, 0, err, sizeof err), -1, "%s",
                     bad[i]);
        json_decref(j);
    }
    json_t *l = sim_channel_limits_json(fx.st, fx.ch);
    json_t *push = json_object_get(json_object_get(l, "rate_limits"), "push");
    cr_expect_eq(json_integer_value(json_object_get(push, "limit")), 2000);
    json_decref(l);
    sim_state_free(&fx.st);
}

Test(linesim, reset_keeps_channels_only_when_asked)
{
    struct fixture fx = state_setup();
    send_push(&fx, "U1", "x", NULL, "r1", SEC);
    sim_state_reset(fx.st, true, 2 * SEC);
    cr_expect_eq(stat_get(fx.st, "accepted"), 0);
    fx.ch = sim_state_acquire_token(fx.st, "tok-1001");
    cr_expect_not_null(fx.ch, "channels kept");
    if (fx.ch)
        sim_state_release(fx.st);
    sim_state_reset(fx.st, false, 3 * SEC);
    cr_expect_null(sim_state_acquire_token(fx.st, "tok-1001"));
    sim_state_free(&fx.st);
}

/* The links a test reads back through GET /_sim/richmenus. */
static const char *linked_menu(struct fixture *fx, const char *user)
{
    static char menu[64];
    json_t *j = sim_channel_richmenus_json(fx->st, fx->ch);
    const char *m = json_string_value(json_object_get(json_object_get(j, "links"), user));
    snprintf(menu, sizeof menu, "%s", m ? m : "");
    json_decref(j);
    return menu;
}

Test(linesim, rich_menus_link_per_user_and_in_bulk_and_refuse_an_unknown_menu)
{
    struct fixture fx = state_setup();
    /* Before any menu is registered, any id links (benchmarks need no setup). */
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U1", "rm-any"), 0);
    cr_expect_str_eq(linked_menu(&fx, "U1"), "rm-any");

    char err[160];
    json_t *menus = json_loads("[\"rm-a\",\"rm-b\"]", 0, NULL);
    cr_assert_eq(sim_channel_richmenus_add(fx.st, fx.ch, menus, err, sizeof err), 2, "%s", err);
    json_decref(menus);
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U2", "rm-x"), -2, "unknown menu");
    cr_expect_str_eq(linked_menu(&fx, "U2"), "");

    const char *users[] = {"U2", "U3", "U4"};
    cr_expect_eq(sim_channel_richmenu_bulk(fx.st, fx.ch, "rm-x", users, 3), -2);
    cr_expect_str_eq(linked_menu(&fx, "U3"), "", "a refused bulk link changes nothing");
    cr_expect_eq(sim_channel_richmenu_bulk(fx.st, fx.ch, "rm-a", users, 3), 0);
    for (size_t i = 0; i < 3; i++)
        cr_expect_str_eq(linked_menu(&fx, users[i]), "rm-a");
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U3", "rm-b"), 0, "relinking replaces");
    cr_expect_str_eq(linked_menu(&fx, "U3"), "rm-b");

    cr_expect_eq(sim_channel_richmenu_bulk(fx.st, fx.ch, NULL, users, 2), 0, "bulk unlink");
    cr_expect_str_eq(linked_menu(&fx, "U2"), "");
    cr_expect_str_eq(linked_menu(&fx, "U3"), "");
    cr_expect_str_eq(linked_menu(&fx, "U4"), "rm-a");
    sim_channel_richmenu_unlink(fx.st, fx.ch, "U4");
    cr_expect_str_eq(linked_menu(&fx, "U4"), "");
    sim_channel_richmenu_unlink(fx.st, fx.ch, "U-never-linked"); /* harmless */

    /* A reset keeps the registered menus (channel setup) but not the links. */
    sim_state_reset(fx.st, true, 2 * SEC);
    fx.ch = sim_state_acquire_id(fx.st, "1001");
    cr_assert_not_null(fx.ch);
    sim_state_release(fx.st);
    cr_expect_str_eq(linked_menu(&fx, "U1"), "");
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U1", "rm-x"), -2);
    sim_state_free(&fx.st);
}

static const char *const bad_menu_lists[] = {"[]", "{}", "[\"\"]", "[\"ok\",5]"};

Test(linesim, rich_menu_registration_rejects_bad_lists_and_changes_nothing)
{
    struct fixture fx = state_setup();
    char err[160];
    for (size_t i = 0; i < sizeof bad_menu_lists / sizeof bad_menu_lists[0]; i++) {
        json_t *j = json_loads(bad_menu_lists[i], 0, NULL);
        cr_assert_not_null(j, "%s", bad_menu_lists[i]);
        cr_expect_eq(sim_channel_richmenus_add(fx.st, fx.ch, j, err, sizeof err), -1, "%s",
                     bad_menu_lists[i]);
        json_decref(j);
    }
    /* Still none registered: any id links. */
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U1", "ok"), 0);
    cr_expect_eq(sim_channel_richmenu_link(fx.st, fx.ch, "U1", "anything"), 0);
    sim_state_free(&fx.st);
}
