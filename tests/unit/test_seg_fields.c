/* Unit tests for segmentation's field value checks (fields.c): each type's
 * good values and the stored text they become, then a table of bad values
 * that must be refused with a reason, whether they come as JSON (the API)
 * or as a CSV cell's text; and the tag and field name rules. */
#include <criterion/criterion.h>

#include <string.h>

#include "segmentation/fields.h"
#include "segmentation/tags.h"

static struct field_def def_of(enum field_type type)
{
    struct field_def def = {.id = 7, .type = type};
    snprintf(def.name, sizeof def.name, "f");
    if (type == FIELD_CHOICE)
        def.choices = json_pack("[sss]", "gold", "silver", "ゴールド");
    return def;
}

struct value_case {
    enum field_type type;
    const char *json; /* the value as JSON text (NULL: text only) */
    const char *text; /* the value as a CSV cell (NULL: JSON only) */
    const char *stored;
};

static const struct value_case good[] = {
    {FIELD_TEXT, "\"hello\"", "hello", "hello"},
    {FIELD_TEXT, "\"\"", "", ""},
    {FIELD_TEXT, "\"あいう\\n2行目\"", NULL, "あいう\n2行目"},
    {FIELD_NUMBER, "12", "12", "12"},
    {FIELD_NUMBER, "-3.5", "-3.5", "-3.5"},
    {FIELD_NUMBER, "0.1", "0.1", "0.1"},
    {FIELD_NUMBER, "1000000000000000", "1000000000000000", "1000000000000000"},
    {FIELD_NUMBER, NULL, "+7", "7"},
    {FIELD_NUMBER, NULL, "1.25e3", "1.25e3"},
    {FIELD_DATE, "\"2026-12-02\"", "2026-12-02", "2026-12-02"},
    {FIELD_DATE, "\"2024-02-29\"", "2024-02-29", "2024-02-29"},
    {FIELD_DATETIME, "\"2026-12-02T09:30:00+09:00\"", "2026-12-02T09:30:00+09:00",
     "2026-12-02T00:30:00Z"},
    {FIELD_DATETIME, "\"2026-12-02T00:30:00Z\"", NULL, "2026-12-02T00:30:00Z"},
    {FIELD_DATETIME, "\"2026-01-01T01:00:00.250+02:00\"", NULL, "2025-12-31T23:00:00.250Z"},
    {FIELD_DATETIME, "\"2026-12-02t10:00:00.123456789z\"", NULL, "2026-12-02T10:00:00.123Z"},
    {FIELD_DATETIME, "\"2026-12-01T20:00:00-05:30\"", NULL, "2026-12-02T01:30:00Z"},
    {FIELD_CHOICE, "\"gold\"", "gold", "gold"},
    {FIELD_CHOICE, "\"ゴールド\"", "ゴールド", "ゴールド"},
};

Test(seg_fields, good_values_are_stored_in_their_canonical_text)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const struct value_case *c = &good[i];
        struct field_def def = def_of(c->type);
        struct field_value out;
        const char *why = NULL;
        if (c->json) {
            json_t *v = json_loads(c->json, JSON_DECODE_ANY, NULL);
            cr_assert_not_null(v, "case %zu", i);
            cr_expect_eq(field_value_from_json(&def, v, &out, &why), 0, "json case %zu: %s", i,
                         why ? why : "");
            cr_expect_str_eq(out.text, c->stored, "json case %zu", i);
            json_decref(v);
        }
        if (c->text) {
            cr_expect_eq(field_value_from_text(&def, c->text, &out, &why), 0, "text case %zu: %s",
                         i, why ? why : "");
            cr_expect_str_eq(out.text, c->stored, "text case %zu", i);
        }
        field_def_clear(&def);
    }
}

struct bad_case {
    enum field_type type;
    const char *json; /* NULL: text only */
    const char *text; /* NULL: JSON only */
};

static const struct bad_case bad[] = {
    {FIELD_TEXT, "12", NULL},
    {FIELD_TEXT, "null", NULL},
    {FIELD_TEXT, "[\"a\"]", NULL},
    {FIELD_TEXT, "\"a\\u0000b\"", NULL},
    {FIELD_TEXT, NULL, "\xff\xfe"},
    {FIELD_NUMBER, "\"12\"", "abc"},
    {FIELD_NUMBER, "true", ""},
    {FIELD_NUMBER, "1e16", "1e16"},
    {FIELD_NUMBER, "-2000000000000000", "-2000000000000000"},
    {FIELD_NUMBER, NULL, "0x10"},
    {FIELD_NUMBER, NULL, "inf"},
    {FIELD_NUMBER, NULL, "nan"},
    {FIELD_NUMBER, NULL, " 1"},
    {FIELD_NUMBER, NULL, "1."},
    {FIELD_NUMBER, NULL, ".5"},
    {FIELD_NUMBER, NULL, "1e"},
    {FIELD_NUMBER, NULL, "1,000"},
    {FIELD_NUMBER, NULL, "' OR 1=1 --"},
    {FIELD_DATE, "20261202", "2026-13-01"},
    {FIELD_DATE, "\"2026-02-29\"", "2026-02-29"},
    {FIELD_DATE, "\"2026-12-32\"", "2026-12-32"},
    {FIELD_DATE, "\"0000-01-01\"", "0000-01-01"},
    {FIELD_DATE, "\"2026-1-02\"", "2026-1-02"},
    {FIELD_DATE, "\"2026-12-02T00:00:00Z\"", "2026/12/02"},
    {FIELD_DATETIME, "1764633600000", "2026-12-02"},
    {FIELD_DATETIME, "\"2026-12-02T09:30:00\"", "2026-12-02 09:30:00Z"},
    {FIELD_DATETIME, "\"2026-12-02T24:00:00Z\"", "2026-12-02T23:60:00Z"},
    {FIELD_DATETIME, "\"2026-12-02T23:59:60Z\"", "2026-12-02T09:30:00+0900"},
    {FIELD_DATETIME, "\"2026-12-02T09:30:00+24:00\"", "2026-12-02T09:30:00.Z"},
    {FIELD_DATETIME, "\"2026-02-30T09:30:00Z\"", "2026-12-02T09:30:00.1234567890Z"},
    {FIELD_DATETIME, "\"0001-01-01T00:00:00+01:00\"", NULL},
    {FIELD_CHOICE, "\"bronze\"", "bronze"},
    {FIELD_CHOICE, "1", "Gold"},
    {FIELD_CHOICE, "\"\"", ""},
};

Test(seg_fields, bad_values_are_refused_with_a_reason)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct bad_case *c = &bad[i];
        struct field_def def = def_of(c->type);
        struct field_value out;
        if (c->json) {
            const char *why = NULL;
            json_t *v = json_loads(c->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            cr_assert_not_null(v, "case %zu", i);
            cr_expect_eq(field_value_from_json(&def, v, &out, &why), -1, "json case %zu (%s)", i,
                         c->json);
            cr_expect_not_null(why, "json case %zu has a reason", i);
            json_decref(v);
        }
        if (c->text) {
            const char *why = NULL;
            cr_expect_eq(field_value_from_text(&def, c->text, &out, &why), -1, "text case %zu (%s)",
                         i, c->text);
            cr_expect_not_null(why, "text case %zu has a reason", i);
        }
        field_def_clear(&def);
    }
}

Test(seg_fields, text_is_capped_in_characters_not_bytes)
{
    struct field_def def = def_of(FIELD_TEXT);
    static char s[FIELD_TEXT_MAX * 3 + 4];
    for (int i = 0; i < FIELD_TEXT_MAX; i++)
        memcpy(s + i * 3, "あ", 3);
    s[FIELD_TEXT_MAX * 3] = '\0';
    struct field_value out;
    const char *why = NULL;
    cr_expect_eq(field_value_from_text(&def, s, &out, &why), 0, "2000 characters fit");
    memcpy(s + FIELD_TEXT_MAX * 3, "x", 2);
    cr_expect_eq(field_value_from_text(&def, s, &out, &why), -1, "2001 do not");
}

Test(seg_fields, numbers_answer_as_json_numbers)
{
    json_t *v = field_value_json(FIELD_NUMBER, "12");
    cr_expect(json_is_integer(v) && json_integer_value(v) == 12);
    json_decref(v);
    v = field_value_json(FIELD_NUMBER, "12.50");
    cr_expect(json_is_real(v) && json_real_value(v) == 12.5);
    json_decref(v);
    v = field_value_json(FIELD_DATE, "2026-12-02");
    cr_expect_str_eq(json_string_value(v), "2026-12-02");
    json_decref(v);
    cr_expect_null(field_value_json(FIELD_TEXT, NULL));
}

struct name_case {
    const char *name;
    bool tag_ok, field_ok;
};

static const struct name_case names[] = {
    {"vip", true, true},
    {"購入済み", true, true},
    {"", false, false},
    {"a/b", false, false},
    {"a|b", true, false},
    {"{x}", true, false},
    {"tab\there", false, false},
    {"del\x7f", false, false},
    {"\xc3\x28", false, false},
    {"1234567890123456789012345678901234567890123456789012345678901234", true, true},
    {"12345678901234567890123456789012345678901234567890123456789012345", false, false},
};

Test(seg_fields, tag_and_field_names_follow_their_rules)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = strlen(names[i].name);
        cr_expect_eq(tag_name_valid(names[i].name, len), names[i].tag_ok, "tag %zu", i);
        cr_expect_eq(field_name_valid(names[i].name, len), names[i].field_ok, "field %zu", i);
    }
}

Test(seg_fields, type_names_round_trip)
{
    for (int t = FIELD_TEXT; t <= FIELD_CHOICE; t++) {
        enum field_type back;
        cr_expect_eq(field_type_parse(field_type_name((enum field_type)t), &back), 0);
        cr_expect_eq((int)back, t);
    }
    enum field_type x;
    cr_expect_eq(field_type_parse("bool", &x), -1);
}
