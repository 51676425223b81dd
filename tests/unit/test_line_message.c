/* Unit tests for common/line_message: a table of valid message arrays of
 * every type, a table of bad ones each refused with the JSON path of the
 * member at fault, the variables of a text (known and unknown fields), and
 * rendering for one friend. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "line_message.h"

/* Knows the fields "score" and "名前". */
static int known(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    return (len == 5 && memcmp(name, "score", 5) == 0) ||
           (len == strlen("名前") && memcmp(name, "名前", len) == 0);
}

static int failing(void *ctx, const char *name, size_t len)
{
    (void)ctx, (void)name, (void)len;
    return -1;
}

static const struct line_message_vars vars = {.field_known = known};

/* Checks {"messages": <messages>}; returns the result and the first error. */
static int check(const char *messages, const struct line_message_vars *v, struct jsonf_error *err)
{
    size_t cap = strlen(messages) + 32;
    char *doc_text = malloc(cap);
    cr_assert_not_null(doc_text);
    snprintf(doc_text, cap, "{\"messages\":%s}", messages);
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, 0, &jerr);
    cr_assert_not_null(doc, "test JSON %.200s: %s", doc_text, jerr.text);
    free(doc_text);
    struct jsonf_reader reader = {.errors = err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    memset(err, 0, sizeof *err);
    int rc = line_messages_check(&root, "messages", JSONF_REQUIRED, v);
    json_decref(doc);
    return rc;
}

static const char *const good[] = {
    "[{\"type\":\"text\",\"text\":\"hello\"}]",
    "[{\"type\":\"text\",\"text\":\"{{display_name}}さん、{{field:score}}点 {{field:名前|お客様}} "
    "{{link:abc-123}}\"}]",
    "[{\"type\":\"text\",\"text\":\"a { b } {x}\"}]",
    "[{\"type\":\"text\",\"text\":\"$\",\"emojis\":[{\"index\":0,\"productId\":\"p\",\"emojiId\":"
    "\"001\"}]}]",
    "[{\"type\":\"sticker\",\"packageId\":\"446\",\"stickerId\":\"1988\"}]",
    "[{\"type\":\"image\",\"originalContentUrl\":\"https://e.com/a.jpg\",\"previewImageUrl\":"
    "\"https://e.com/p.jpg\"}]",
    "[{\"type\":\"video\",\"originalContentUrl\":\"https://e.com/a.mp4\",\"previewImageUrl\":"
    "\"https://e.com/p.jpg\",\"trackingId\":\"t1\"}]",
    "[{\"type\":\"audio\",\"originalContentUrl\":\"https://e.com/a.m4a\",\"duration\":60000}]",
    "[{\"type\":\"location\",\"title\":\"t\",\"address\":\"a\",\"latitude\":35.6,\"longitude\":"
    "139.7}]",
    "[{\"type\":\"imagemap\",\"baseUrl\":\"https://e.com/im\",\"altText\":\"alt\",\"baseSize\":"
    "{\"width\":1040,\"height\":1040},\"actions\":[{\"type\":\"uri\",\"linkUri\":\"https://e.com\","
    "\"area\":{\"x\":0,\"y\":0,\"width\":520,\"height\":1040}},{\"type\":\"message\",\"text\":"
    "\"hi\",\"area\":{\"x\":520,\"y\":0,\"width\":520,\"height\":1040}}]}]",
    "[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"buttons\",\"text\":\"t\","
    "\"actions\":[{\"type\":\"postback\",\"label\":\"Buy\",\"data\":\"action-set=1\"}]}}]",
    "[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"confirm\",\"text\":\"ok?"
    "\","
    "\"actions\":[{\"type\":\"message\",\"label\":\"Yes\",\"text\":\"yes\"},{\"type\":\"message\","
    "\"label\":\"No\",\"text\":\"no\"}]}}]",
    "[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"carousel\",\"columns\":"
    "[{\"text\":\"c\",\"actions\":[{\"type\":\"uri\",\"label\":\"Go\",\"uri\":\"https://"
    "e.com\"}]}]}}]",
    "[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"image_carousel\","
    "\"columns\":[{\"imageUrl\":\"https://e.com/i.jpg\",\"action\":{\"type\":\"uri\",\"uri\":"
    "\"https://e.com\"}}]}}]",
    "[{\"type\":\"flex\",\"altText\":\"alt\",\"contents\":{\"type\":\"bubble\",\"body\":{\"type\":"
    "\"box\",\"layout\":\"vertical\",\"contents\":[]}}}]",
    "[{\"type\":\"flex\",\"altText\":\"alt\",\"contents\":{\"type\":\"carousel\",\"contents\":"
    "[{\"type\":\"bubble\"},{\"type\":\"bubble\"}]}}]",
    "[{\"type\":\"coupon\",\"couponId\":\"c1\"}]",
    "[{\"type\":\"text\",\"text\":\"q\",\"quickReply\":{\"items\":[{\"type\":\"action\","
    "\"action\":{\"type\":\"camera\",\"label\":\"Camera\"}}]},\"sender\":{\"name\":\"Bot\"}}]",
    "[{\"type\":\"text\",\"text\":\"1\"},{\"type\":\"text\",\"text\":\"2\"},{\"type\":\"text\","
    "\"text\":\"3\"},{\"type\":\"text\",\"text\":\"4\"},{\"type\":\"text\",\"text\":\"5\"}]",
};

Test(line_message, valid_messages_of_every_type_pass)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct jsonf_error err;
        int rc = check(good[i], &vars, &err);
        cr_expect_eq(rc, 1, "case %zu: %s: %s", i, err.path, err.reason);
    }
}

struct bad_case {
    const char *messages;
    const char *path;
    const char *code;
};

static const struct bad_case bad[] = {
    {"[]", "messages", "invalid_value"},
    {"{}", "messages", "invalid_type"},
    {"[{\"type\":\"text\",\"text\":\"1\"},{\"type\":\"text\",\"text\":\"2\"},{\"type\":\"text\","
     "\"text\":\"3\"},{\"type\":\"text\",\"text\":\"4\"},{\"type\":\"text\",\"text\":\"5\"},"
     "{\"type\":\"text\",\"text\":\"6\"}]",
     "messages", "too_long"},
    {"[\"hello\"]", "messages[0]", "invalid_type"},
    {"[{\"text\":\"no type\"}]", "messages[0].type", "missing_field"},
    {"[{\"type\":\"fax\"}]", "messages[0].type", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"text\"}]", "messages[1].text",
     "missing_field"},
    {"[{\"type\":\"text\",\"text\":\"\"}]", "messages[0].text", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":5}]", "messages[0].text", "invalid_type"},
    {"[{\"type\":\"text\",\"text\":\"hi {{nickname}}\"}]", "messages[0].text", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"hi {{display_name\"}]", "messages[0].text", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"{{field:unknown}}\"}]", "messages[0].text", "unknown_field"},
    {"[{\"type\":\"text\",\"text\":\"{{field:}}\"}]", "messages[0].text", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"{{link:a b}}\"}]", "messages[0].text", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"x\",\"emojis\":[{\"index\":0}]}]",
     "messages[0].emojis[0].productId", "missing_field"},
    {"[{\"type\":\"sticker\",\"packageId\":\"1\"}]", "messages[0].stickerId", "missing_field"},
    {"[{\"type\":\"sticker\",\"packageId\":1,\"stickerId\":\"2\"}]", "messages[0].packageId",
     "invalid_type"},
    {"[{\"type\":\"image\",\"originalContentUrl\":\"http://e.com/a.jpg\",\"previewImageUrl\":"
     "\"https://e.com/p.jpg\"}]",
     "messages[0].originalContentUrl", "invalid_value"},
    {"[{\"type\":\"image\",\"originalContentUrl\":\"https://e.com/a.jpg\"}]",
     "messages[0].previewImageUrl", "missing_field"},
    {"[{\"type\":\"video\",\"originalContentUrl\":\"https://e.com/a b.mp4\",\"previewImageUrl\":"
     "\"https://e.com/p.jpg\"}]",
     "messages[0].originalContentUrl", "invalid_value"},
    {"[{\"type\":\"audio\",\"originalContentUrl\":\"https://e.com/a.m4a\",\"duration\":0}]",
     "messages[0].duration", "invalid_value"},
    {"[{\"type\":\"location\",\"title\":\"t\",\"address\":\"a\",\"latitude\":91,\"longitude\":0}]",
     "messages[0].latitude", "invalid_value"},
    {"[{\"type\":\"location\",\"title\":\"t\",\"latitude\":1,\"longitude\":0}]",
     "messages[0].address", "missing_field"},
    {"[{\"type\":\"imagemap\",\"baseUrl\":\"https://e.com/im\",\"altText\":\"alt\",\"baseSize\":"
     "{\"width\":1040,\"height\":1040},\"actions\":[{\"type\":\"uri\",\"area\":{\"x\":0,\"y\":0,"
     "\"width\":1,\"height\":1}}]}]",
     "messages[0].actions[0].linkUri", "missing_field"},
    {"[{\"type\":\"template\",\"template\":{\"type\":\"buttons\",\"text\":\"t\",\"actions\":[]}}]",
     "messages[0].altText", "missing_field"},
    {"[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"buttons\",\"text\":"
     "\"t\","
     "\"actions\":[]}}]",
     "messages[0].template.actions", "invalid_value"},
    {"[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"confirm\",\"text\":"
     "\"t\","
     "\"actions\":[{\"type\":\"message\",\"text\":\"y\"}]}}]",
     "messages[0].template.actions", "invalid_value"},
    {"[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"buttons\",\"text\":"
     "\"t\","
     "\"actions\":[{\"type\":\"postback\"}]}}]",
     "messages[0].template.actions[0].data", "missing_field"},
    {"[{\"type\":\"template\",\"altText\":\"alt\",\"template\":{\"type\":\"list\"}}]",
     "messages[0].template.type", "invalid_value"},
    {"[{\"type\":\"flex\",\"altText\":\"alt\"}]", "messages[0].contents", "missing_field"},
    {"[{\"type\":\"flex\",\"altText\":\"alt\",\"contents\":{\"type\":\"carousel\",\"contents\":"
     "[{\"type\":\"box\"}]}}]",
     "messages[0].contents.contents[0].type", "invalid_value"},
    {"[{\"type\":\"flex\",\"contents\":{\"type\":\"bubble\"}}]", "messages[0].altText",
     "missing_field"},
    {"[{\"type\":\"text\",\"text\":\"q\",\"quickReply\":{\"items\":[{\"action\":{\"type\":\"uri\","
     "\"uri\":\"ftp://x\"}}]}}]",
     "messages[0].quickReply.items[0].action.uri", "invalid_value"},
    {"[{\"type\":\"text\",\"text\":\"q\",\"sender\":{\"name\":\"123456789012345678901\"}}]",
     "messages[0].sender.name", "too_long"},
};

Test(line_message, bad_messages_are_refused_with_the_path_of_the_fault)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct jsonf_error err;
        int rc = check(bad[i].messages, &vars, &err);
        cr_expect_eq(rc, -1, "case %zu is refused", i);
        cr_expect_str_eq(err.path, bad[i].path, "case %zu path (%s)", i, err.reason);
        cr_expect_str_eq(jsonf_kind_code(err.kind), bad[i].code, "case %zu code (%s)", i,
                         err.reason);
    }
}

Test(line_message, text_is_capped_at_5000_characters)
{
    static char text[5001 * 3 + 64];
    size_t n = 0;
    for (int i = 0; i < 5000; i++, n += 3)
        memcpy(text + n, "あ", 3);
    text[n] = '\0';
    static char doc[sizeof text + 64];
    snprintf(doc, sizeof doc, "[{\"type\":\"text\",\"text\":\"%s\"}]", text);
    struct jsonf_error err;
    cr_expect_eq(check(doc, &vars, &err), 1, "5000 characters: %s", err.reason);
    snprintf(doc, sizeof doc, "[{\"type\":\"text\",\"text\":\"%sx\"}]", text);
    cr_expect_eq(check(doc, &vars, &err), -1, "5001 characters");
    cr_expect_str_eq(err.path, "messages[0].text");
}

Test(line_message, a_failing_field_lookup_is_the_callers_error)
{
    struct jsonf_error err;
    struct line_message_vars v = {.field_known = failing};
    cr_expect_eq(check("[{\"type\":\"text\",\"text\":\"{{field:score}}\"}]", &v, &err), -2);
    cr_expect_eq(check("[{\"type\":\"text\",\"text\":\"{{field:any}}\"}]", NULL, &err), 1,
                 "without a callback field names are not checked");
}

static int resolve(void *ctx, enum line_var_kind kind, const char *name, size_t len, char *out,
                   size_t cap)
{
    (void)ctx;
    if (kind == LINE_VAR_DISPLAY_NAME)
        return snprintf(out, cap, "Hanako"), 1;
    if (kind == LINE_VAR_LINK)
        return snprintf(out, cap, "https://k.example/r/%.*s", (int)len, name), 1;
    if (len == 5 && memcmp(name, "score", 5) == 0)
        return snprintf(out, cap, "42"), 1;
    return 0;
}

Test(line_message, variables_render_with_values_and_fallbacks)
{
    char *s = line_text_render(
        "{{display_name}}さん {{field:score}}点 {{field:rank|一般}}/{{field:rank}}/ {{link:L1}} "
        "{{{display_name}}} {{bad}}",
        resolve, NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "Hanakoさん 42点 一般// https://k.example/r/L1 {Hanako} {{bad}}");
    free(s);
}
