/* Unit tests for services/ingest/registry_input: what a /v1/channels body
 * must be (types, caps, patterns, required and unknown fields), time zone
 * names checked against a zoneinfo folder built here, channel ids, and the
 * displayed fingerprint of a secret. No network, no database. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/registry_input.h"

#define BOT "U8e742f61d673b39c7fff3cecb7536ef0"
#define REST                                                                     \
    "\"name\":\"Shop\",\"channel_secret\":\"8c570fa6dd201bb328f1c1eac23a96d8\"," \
    "\"access_token\":\"tok\",\"bot_user_id\":\"" BOT "\""

static char zoneinfo[64];

static void write_file(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", zoneinfo, rel);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(content, f);
    fclose(f);
}

/* A miniature zoneinfo: two zones, a folder, and a table that is not TZif. */
static void zoneinfo_setup(void)
{
    snprintf(zoneinfo, sizeof zoneinfo, "/tmp/kz-zoneinfo-XXXXXX");
    cr_assert_not_null(mkdtemp(zoneinfo));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/Asia", zoneinfo);
    cr_assert_eq(mkdir(dir, 0755), 0);
    write_file("Asia/Tokyo", "TZif2...");
    write_file("UTC", "TZif2...");
    write_file("zone_tab", "JP\t+353916+1394441\tAsia/Tokyo\n");
}

static void zoneinfo_teardown(void)
{
    char path[256];
    const char *files[] = {"Asia/Tokyo", "UTC", "zone_tab"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", zoneinfo, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/Asia", zoneinfo);
    rmdir(path);
    rmdir(zoneinfo);
}

TestSuite(registry_input, .init = zoneinfo_setup, .fini = zoneinfo_teardown);

static int parse(const char *body, enum registry_input_mode mode, struct registry_input *in,
                 struct registry_input_error *err)
{
    return registry_input_parse(body, strlen(body), mode, zoneinfo, in, err);
}

Test(registry_input, create_body_is_parsed_and_defaults_are_filled_in)
{
    struct registry_input in;
    struct registry_input_error err;
    int rc = parse("{\"channel_id\":\"1234567890\"," REST "}", REGISTRY_INPUT_CREATE, &in, &err);
    cr_assert_eq(rc, 0, "%s (%s)", err.message, err.field);
    cr_assert_str_eq(in.channel_id, "1234567890");
    cr_assert_str_eq(in.name, "Shop");
    cr_assert_str_eq(in.channel_secret, "8c570fa6dd201bb328f1c1eac23a96d8");
    cr_assert_str_eq(in.access_token, "tok");
    cr_assert_str_eq(in.bot_user_id, BOT);
    cr_assert_str_eq(in.timezone, "Asia/Tokyo");
    cr_assert_eq(in.monthly_quota, 0);
    cr_assert_eq(in.present, REGISTRY_F_CHANNEL_ID | REGISTRY_F_NAME | REGISTRY_F_SECRET |
                                 REGISTRY_F_TOKEN | REGISTRY_F_BOT_USER_ID | REGISTRY_F_TIMEZONE |
                                 REGISTRY_F_QUOTA);
    registry_input_wipe(&in);
    cr_assert_eq(in.channel_secret[0], '\0');
}

Test(registry_input, given_timezone_and_quota_win_over_defaults)
{
    struct registry_input in;
    struct registry_input_error err;
    int rc = parse("{\"channel_id\":\"1\"," REST ",\"timezone\":\"UTC\",\"monthly_quota\":"
                   "9007199254740993}",
                   REGISTRY_INPUT_CREATE, &in, &err);
    cr_assert_eq(rc, 0, "%s", err.message);
    cr_assert_str_eq(in.timezone, "UTC");
    cr_assert_eq(in.monthly_quota, 9007199254740993LL, "integers are not squeezed through double");
}

Test(registry_input, patch_sets_only_the_fields_it_names)
{
    struct registry_input in;
    struct registry_input_error err;
    cr_assert_eq(parse("{\"access_token\":\"new-token\",\"monthly_quota\":5}", REGISTRY_INPUT_PATCH,
                       &in, &err),
                 0, "%s", err.message);
    cr_assert_eq(in.present, REGISTRY_F_TOKEN | REGISTRY_F_QUOTA);
    cr_assert_str_eq(in.access_token, "new-token");
    cr_assert_eq(in.monthly_quota, 5);
    cr_assert_eq(in.name[0], '\0');
}

Test(registry_input, name_may_be_any_utf8_text_up_to_the_cap)
{
    struct registry_input in;
    struct registry_input_error err;
    cr_assert_eq(parse("{\"name\":\"\xe3\x82\xb7\xe3\x83\xa7\xe3\x83\x83\xe3\x83\x97 "
                       "\xf0\x9f\x8d\xa3\"}",
                       REGISTRY_INPUT_PATCH, &in, &err),
                 0, "%s", err.message);
    char body[512];
    memset(body, 0, sizeof body);
    int off = snprintf(body, sizeof body, "{\"name\":\"");
    memset(body + off, 'x', REGISTRY_NAME_MAX);
    snprintf(body + off + REGISTRY_NAME_MAX, sizeof body - (size_t)off - REGISTRY_NAME_MAX, "\"}");
    cr_assert_eq(parse(body, REGISTRY_INPUT_PATCH, &in, &err), 0, "exactly the cap is fine");
    cr_assert_eq(strlen(in.name), REGISTRY_NAME_MAX);
}

struct bad_body {
    const char *what;
    enum registry_input_mode mode;
    const char *body;
    const char *code;
    const char *field; /* "" when none */
};

static const struct bad_body bad_bodies[] = {
    {"empty", REGISTRY_INPUT_CREATE, "", "invalid_json", ""},
    {"truncated", REGISTRY_INPUT_CREATE, "{\"channel_id\":\"1\"", "invalid_json", ""},
    {"trailing garbage", REGISTRY_INPUT_CREATE, "{} x", "invalid_json", ""},
    {"array", REGISTRY_INPUT_CREATE, "[]", "invalid_json", ""},
    {"string", REGISTRY_INPUT_CREATE, "\"x\"", "invalid_json", ""},
    {"duplicate key", REGISTRY_INPUT_PATCH, "{\"name\":\"a\",\"name\":\"b\"}", "invalid_json", ""},
    {"bad UTF-8", REGISTRY_INPUT_PATCH, "{\"name\":\"\xff\"}", "invalid_utf8", ""},
    {"overlong UTF-8", REGISTRY_INPUT_PATCH, "{\"name\":\"\xc0\xaf\"}", "invalid_utf8", ""},
    {"UTF-16 surrogate as UTF-8", REGISTRY_INPUT_PATCH, "{\"name\":\"\xed\xa0\x80\"}",
     "invalid_utf8", ""},
    {"escaped NUL", REGISTRY_INPUT_PATCH, "{\"name\":\"a\\u0000\"}", "invalid_json", ""},
    {"missing channel_id", REGISTRY_INPUT_CREATE, "{" REST "}", "missing_field", "channel_id"},
    {"missing name", REGISTRY_INPUT_CREATE,
     "{\"channel_id\":\"1\",\"channel_secret\":\"s\",\"access_token\":\"t\","
     "\"bot_user_id\":\"" BOT "\"}",
     "missing_field", "name"},
    {"missing access_token", REGISTRY_INPUT_CREATE,
     "{\"channel_id\":\"1\",\"name\":\"n\",\"channel_secret\":\"s\",\"bot_user_id\":\"" BOT "\"}",
     "missing_field", "access_token"},
    {"missing bot_user_id", REGISTRY_INPUT_CREATE,
     "{\"channel_id\":\"1\",\"name\":\"n\",\"channel_secret\":\"s\",\"access_token\":\"t\"}",
     "missing_field", "bot_user_id"},
    {"channel_id number", REGISTRY_INPUT_CREATE, "{\"channel_id\":1," REST "}", "invalid_type",
     "channel_id"},
    {"channel_id signed", REGISTRY_INPUT_CREATE, "{\"channel_id\":\"-1\"," REST "}",
     "invalid_value", "channel_id"},
    {"channel_id empty", REGISTRY_INPUT_CREATE, "{\"channel_id\":\"\"," REST "}", "invalid_value",
     "channel_id"},
    {"channel_id 21 digits", REGISTRY_INPUT_CREATE,
     "{\"channel_id\":\"123456789012345678901\"," REST "}", "too_long", "channel_id"},
    {"channel_id in a patch", REGISTRY_INPUT_PATCH, "{\"channel_id\":\"1\"}", "immutable_field",
     "channel_id"},
    {"name null", REGISTRY_INPUT_PATCH, "{\"name\":null}", "invalid_type", "name"},
    {"name object", REGISTRY_INPUT_PATCH, "{\"name\":{}}", "invalid_type", "name"},
    {"name newline", REGISTRY_INPUT_PATCH, "{\"name\":\"a\\nb\"}", "invalid_value", "name"},
    {"name DEL", REGISTRY_INPUT_PATCH, "{\"name\":\"a\\u007fb\"}", "invalid_value", "name"},
    {"secret empty", REGISTRY_INPUT_PATCH, "{\"channel_secret\":\"\"}", "invalid_value",
     "channel_secret"},
    {"secret non-ASCII", REGISTRY_INPUT_PATCH, "{\"channel_secret\":\"s\xc3\xa9\"}",
     "invalid_value", "channel_secret"},
    {"secret tab", REGISTRY_INPUT_PATCH, "{\"channel_secret\":\"a\\tb\"}", "invalid_value",
     "channel_secret"},
    {"token boolean", REGISTRY_INPUT_PATCH, "{\"access_token\":true}", "invalid_type",
     "access_token"},
    {"bot_user_id upper-case hex", REGISTRY_INPUT_PATCH,
     "{\"bot_user_id\":\"U8E742F61D673B39C7FFF3CECB7536EF0\"}", "invalid_value", "bot_user_id"},
    {"bot_user_id short", REGISTRY_INPUT_PATCH, "{\"bot_user_id\":\"U8e742f\"}", "invalid_value",
     "bot_user_id"},
    {"bot_user_id group id", REGISTRY_INPUT_PATCH,
     "{\"bot_user_id\":\"C8e742f61d673b39c7fff3cecb7536ef0\"}", "invalid_value", "bot_user_id"},
    {"quota negative", REGISTRY_INPUT_PATCH, "{\"monthly_quota\":-5}", "invalid_value",
     "monthly_quota"},
    {"quota real", REGISTRY_INPUT_PATCH, "{\"monthly_quota\":10.0}", "invalid_type",
     "monthly_quota"},
    {"quota exponent", REGISTRY_INPUT_PATCH, "{\"monthly_quota\":1e3}", "invalid_type",
     "monthly_quota"},
    {"quota beyond int64", REGISTRY_INPUT_PATCH, "{\"monthly_quota\":99999999999999999999}",
     "invalid_json", ""},
    {"quota string", REGISTRY_INPUT_PATCH, "{\"monthly_quota\":\"5\"}", "invalid_type",
     "monthly_quota"},
    {"timezone unknown", REGISTRY_INPUT_PATCH, "{\"timezone\":\"Asia/Atlantis\"}", "invalid_value",
     "timezone"},
    {"timezone folder", REGISTRY_INPUT_PATCH, "{\"timezone\":\"Asia\"}", "invalid_value",
     "timezone"},
    {"timezone not TZif", REGISTRY_INPUT_PATCH, "{\"timezone\":\"zone_tab\"}", "invalid_value",
     "timezone"},
    {"timezone traversal", REGISTRY_INPUT_PATCH, "{\"timezone\":\"Asia/../UTC\"}", "invalid_value",
     "timezone"},
    {"unknown field", REGISTRY_INPUT_CREATE, "{\"channel_id\":\"1\"," REST ",\"plan\":\"pro\"}",
     "unknown_field", "plan"},
    {"unknown field first", REGISTRY_INPUT_PATCH, "{\"tenant_id\":\"other\",\"name\":\"n\"}",
     "unknown_field", "tenant_id"},
    {"empty patch", REGISTRY_INPUT_PATCH, "{}", "empty_patch", ""},
};

Test(registry_input, bad_bodies_are_refused_with_code_and_field)
{
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        const struct bad_body *c = &bad_bodies[i];
        struct registry_input in;
        struct registry_input_error err;
        int rc = parse(c->body, c->mode, &in, &err);
        cr_assert_eq(rc, -1, "%s: accepted", c->what);
        cr_assert_eq(err.status, 400, "%s", c->what);
        cr_assert_str_eq(err.code, c->code, "%s: code %s (%s)", c->what, err.code, err.message);
        cr_assert_str_eq(err.field, c->field, "%s: field '%s'", c->what, err.field);
        cr_assert_neq(err.message[0], '\0', "%s: no message", c->what);
        cr_assert_eq(in.channel_secret[0], '\0', "%s: input not wiped", c->what);
    }
}

Test(registry_input, oversized_fields_are_refused_by_their_cap)
{
    struct {
        const char *field;
        size_t cap;
    } caps[] = {{"name", REGISTRY_NAME_MAX},
                {"channel_secret", REGISTRY_SECRET_MAX},
                {"access_token", REGISTRY_TOKEN_MAX},
                {"timezone", REGISTRY_TIMEZONE_MAX}};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        size_t cap = 64 + caps[i].cap;
        char *body = malloc(cap);
        int off = snprintf(body, cap, "{\"%s\":\"", caps[i].field);
        memset(body + off, 'a', caps[i].cap + 1);
        snprintf(body + off + caps[i].cap + 1, cap - (size_t)off - caps[i].cap - 1, "\"}");
        struct registry_input in;
        struct registry_input_error err;
        cr_assert_eq(parse(body, REGISTRY_INPUT_PATCH, &in, &err), -1, "%s", caps[i].field);
        cr_assert_str_eq(err.code, "too_long", "%s: %s", caps[i].field, err.code);
        cr_assert_str_eq(err.field, caps[i].field);
        free(body);
    }
}

Test(registry_input, an_unknown_fields_name_is_quoted_capped)
{
    char body[512];
    char name[200];
    memset(name, 'k', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(body, sizeof body, "{\"%s\":1}", name);
    struct registry_input in;
    struct registry_input_error err;
    cr_assert_eq(parse(body, REGISTRY_INPUT_PATCH, &in, &err), -1);
    cr_assert_str_eq(err.code, "unknown_field");
    cr_assert_eq(strlen(err.field), REGISTRY_FIELD_NAME_MAX);
}

Test(registry_input, messages_never_quote_the_body)
{
    static const char *bodies[] = {
        "{\"channel_secret\":\"SECRET-XYZ\",\"access_token\":SECRET-XYZ}",
        "{\"channel_secret\":\"SECRET-XYZ\" \"access_token\":\"x\"}",
        "{\"channel_secret\":\"SECRET-XYZ\",\"bot_user_id\":\"SECRET-XYZ\"}",
        "{\"access_token\":\"SECRET-XYZ\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct registry_input in;
        struct registry_input_error err;
        cr_assert_eq(parse(bodies[i], REGISTRY_INPUT_PATCH, &in, &err), -1, "body %zu", i);
        cr_assert_null(strstr(err.message, "SECRET"), "body %zu: %s", i, err.message);
        cr_assert_null(strstr(err.field, "SECRET"), "body %zu: %s", i, err.field);
    }
}

Test(registry_input, timezone_names_follow_a_strict_pattern)
{
    static const char *good[] = {"Asia/Tokyo", "UTC",        "America/Argentina/Buenos_Aires",
                                 "Etc/GMT+9",  "Etc/GMT-14", "America/Port-au-Prince"};
    static const char *bad[] = {
        "",
        "/etc/passwd",
        "../UTC",
        "Asia/../UTC",
        "Asia//Tokyo",
        "Asia/",
        "./UTC",
        "Asia/Tokyo ",
        "Asia\\Tokyo",
        "9Asia",
        "Asia/To.kyo",
        "_UTC",
        "Asia/Tōkyō",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(registry_timezone_valid(good[i], NULL), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(registry_timezone_valid(bad[i], NULL), "%s", bad[i]);
    cr_assert_not(registry_timezone_valid(NULL, NULL));
}

Test(registry_input, timezones_must_exist_as_tzif_files_in_the_zoneinfo_folder)
{
    cr_assert(registry_timezone_valid("Asia/Tokyo", zoneinfo));
    cr_assert(registry_timezone_valid("UTC", zoneinfo));
    cr_assert_not(registry_timezone_valid("Asia/Seoul", zoneinfo), "missing");
    cr_assert_not(registry_timezone_valid("Asia", zoneinfo), "a folder");
    cr_assert_not(registry_timezone_valid("zone_tab", zoneinfo), "not TZif");
    cr_assert_not(registry_timezone_valid("Asia/Tokyo", "/nonexistent-zoneinfo"));
}

Test(registry_input, channel_ids_are_1_to_20_decimal_digits)
{
    static const char *good[] = {"0", "1234567890", "12345678901234567890"};
    static const char *bad[] = {
        "", "123456789012345678901", "12a", " 1", "1 ", "-1", "+1", "1.0", "１２３"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(registry_channel_id_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(registry_channel_id_valid(bad[i]), "%s", bad[i]);
    cr_assert_not(registry_channel_id_valid(NULL));
}

Test(registry_input, fingerprint_is_the_documented_hmac_prefix)
{
    /* printf %s SECRET | openssl dgst -sha256 -hmac kizuna-fingerprint-v1 */
    static const char secret[] = "8c570fa6dd201bb328f1c1eac23a96d8";
    char fp[REGISTRY_FINGERPRINT_LEN + 1];
    registry_fingerprint(secret, strlen(secret), fp);
    cr_assert_str_eq(fp, "4e1f2746");
    char other[REGISTRY_FINGERPRINT_LEN + 1];
    registry_fingerprint("8c570fa6dd201bb328f1c1eac23a96d9", strlen(secret), other);
    cr_assert_str_neq(fp, other);
}
