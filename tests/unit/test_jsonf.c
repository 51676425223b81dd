/* Unit tests for common/jsonf: each typed read on a table of good values,
 * a separate table of bad ones (wrong type, missing, out of range, too
 * long, bad enum word, unknown member), and a scenario body shaped like the
 * scheduler's, whose errors must name their place as a path such as
 * "steps[2].timing.at". */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "jsonf.h"

static json_t *doc_load(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(doc, "test JSON %s: %s", text, jerr.text);
    return doc;
}

/* ---- one typed read per case -------------------------------------------- */

enum op { OP_STRING, OP_INT, OP_NUMBER, OP_BOOL, OP_ENUM, OP_OBJECT, OP_ARRAY };

static const char *const colors[] = {"red", "green", "blue"};

struct read_case {
    const char *name;
    const char *doc; /* an object; the read is of its member "v" */
    enum op op;
    unsigned flags;
    int64_t min, max; /* OP_INT; max is the cap for strings and arrays */
};

/* What a read produced, as text, so one table column checks every type. */
static int read_run(const struct read_case *c, struct jsonf_reader *reader, char *got, size_t cap)
{
    json_t *doc = doc_load(c->doc);
    struct jsonf root, child;
    jsonf_root(&root, reader, doc);
    const char *s = "(unset)";
    int64_t i = -7;
    double d = -7;
    bool b = false;
    int idx = -7;
    int rc = -2;
    snprintf(got, cap, "(unset)");
    switch (c->op) {
    case OP_STRING:
        rc = jsonf_string(&root, "v", c->flags, (size_t)c->max, &s, NULL);
        snprintf(got, cap, "%s", s);
        break;
    case OP_INT:
        rc = jsonf_int(&root, "v", c->flags, c->min, c->max, &i);
        snprintf(got, cap, "%lld", (long long)i);
        break;
    case OP_NUMBER:
        rc = jsonf_number(&root, "v", c->flags, &d);
        snprintf(got, cap, "%g", d);
        break;
    case OP_BOOL:
        rc = jsonf_bool(&root, "v", c->flags, &b);
        snprintf(got, cap, "%s", b ? "true" : "false");
        break;
    case OP_ENUM:
        rc = jsonf_enum(&root, "v", c->flags, colors, 3, &idx);
        snprintf(got, cap, "%d", idx);
        break;
    case OP_OBJECT:
        rc = jsonf_object(&root, "v", c->flags, &child);
        snprintf(got, cap, "%s", child.node ? "object" : "none");
        break;
    case OP_ARRAY:
        rc = jsonf_array(&root, "v", c->flags, (size_t)c->max, &child);
        snprintf(got, cap, "%zu", jsonf_size(&child));
        break;
    }
    json_decref(doc);
    return rc;
}

struct good_case {
    struct read_case read;
    int rc;          /* 1 present, 0 absent */
    const char *got; /* the value read, as read_run prints it */
};

static const struct good_case good_cases[] = {
    {{"string", "{\"v\":\"abc\"}", OP_STRING, 0, 0, 8}, 1, "abc"},
    {{"string at its byte cap", "{\"v\":\"abcdefgh\"}", OP_STRING, 0, 0, 8}, 1, "abcdefgh"},
    {{"empty string allowed", "{\"v\":\"\"}", OP_STRING, 0, 0, 8}, 1, ""},
    {{"UTF-8 at its character cap", "{\"v\":\"\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86\"}", OP_STRING,
      JSONF_CHARS, 0, 3},
     1,
     "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86"},
    {{"plain text with spaces", "{\"v\":\"a b\"}", OP_STRING, JSONF_PLAIN | JSONF_NONEMPTY, 0, 8},
     1,
     "a b"},
    {{"absent string keeps the default", "{}", OP_STRING, 0, 0, 8}, 0, "(unset)"},
    {{"nullable null is absent", "{\"v\":null}", OP_STRING, JSONF_NULLABLE, 0, 8}, 0, "(unset)"},
    {{"integer", "{\"v\":42}", OP_INT, 0, 0, 100}, 1, "42"},
    {{"integer at both bounds", "{\"v\":-5}", OP_INT, 0, -5, -5}, 1, "-5"},
    {{"int64 extremes", "{\"v\":-9223372036854775808}", OP_INT, 0, INT64_MIN, INT64_MAX},
     1,
     "-9223372036854775808"},
    {{"2^53 + 1 is exact", "{\"v\":9007199254740993}", OP_INT, 0, 0, INT64_MAX},
     1,
     "9007199254740993"},
    {{"absent integer", "{\"w\":1}", OP_INT, 0, 0, 1}, 0, "-7"},
    {{"real number", "{\"v\":35.5}", OP_NUMBER, 0, 0, 0}, 1, "35.5"},
    {{"integer as a number", "{\"v\":3}", OP_NUMBER, 0, 0, 0}, 1, "3"},
    {{"true", "{\"v\":true}", OP_BOOL, 0, 0, 0}, 1, "true"},
    {{"false", "{\"v\":false}", OP_BOOL, JSONF_REQUIRED, 0, 0}, 1, "false"},
    {{"enum word", "{\"v\":\"blue\"}", OP_ENUM, 0, 0, 0}, 1, "2"},
    {{"open enum keeps an unknown word", "{\"v\":\"mauve\"}", OP_ENUM, JSONF_OPEN, 0, 0}, 1, "-1"},
    {{"object", "{\"v\":{\"a\":1}}", OP_OBJECT, JSONF_REQUIRED, 0, 0}, 1, "object"},
    {{"absent object", "{}", OP_OBJECT, 0, 0, 0}, 0, "none"},
    {{"array at its item cap", "{\"v\":[1,2,3]}", OP_ARRAY, 0, 0, 3}, 1, "3"},
    {{"empty array", "{\"v\":[]}", OP_ARRAY, JSONF_REQUIRED, 0, 0}, 1, "0"},
};

Test(jsonf, good_values_are_read_with_their_type)
{
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const struct good_case *c = &good_cases[i];
        struct jsonf_error err;
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        char got[64];
        int rc = read_run(&c->read, &reader, got, sizeof got);
        cr_expect_eq(rc, c->rc, "%s: rc %d", c->read.name, rc);
        cr_expect_str_eq(got, c->got, "%s", c->read.name);
        cr_expect_eq(reader.n, 0, "%s: %zu errors", c->read.name, reader.n);
    }
}

struct bad_case {
    struct read_case read;
    enum jsonf_kind kind;
    const char *reason;
};

static const struct bad_case bad_cases[] = {
    {{"string missing", "{}", OP_STRING, JSONF_REQUIRED, 0, 8}, JSONF_MISSING, "missing"},
    {{"required null", "{\"v\":null}", OP_STRING, JSONF_REQUIRED | JSONF_NULLABLE, 0, 8},
     JSONF_MISSING,
     "missing"},
    {{"null is a wrong type", "{\"v\":null}", OP_STRING, 0, 0, 8}, JSONF_TYPE, "must be a string"},
    {{"number for a string", "{\"v\":7}", OP_STRING, 0, 0, 8}, JSONF_TYPE, "must be a string"},
    {{"string one byte long", "{\"v\":\"abcdefghi\"}", OP_STRING, 0, 0, 8},
     JSONF_TOO_LONG,
     "longer than 8 bytes"},
    {{"bytes are not characters", "{\"v\":\"\xe3\x81\x82\xe3\x81\x84\"}", OP_STRING, 0, 0, 3},
     JSONF_TOO_LONG,
     "longer than 3 bytes"},
    {{"characters over the cap", "{\"v\":\"\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86x\"}", OP_STRING,
      JSONF_CHARS, 0, 3},
     JSONF_TOO_LONG,
     "longer than 3 characters"},
    {{"empty when nonempty", "{\"v\":\"\"}", OP_STRING, JSONF_NONEMPTY, 0, 8},
     JSONF_VALUE,
     "must not be empty"},
    {{"newline in plain text", "{\"v\":\"a\\nb\"}", OP_STRING, JSONF_PLAIN, 0, 8},
     JSONF_VALUE,
     "must not contain control characters"},
    {{"DEL in plain text", "{\"v\":\"a\\u007f\"}", OP_STRING, JSONF_PLAIN, 0, 8},
     JSONF_VALUE,
     "must not contain control characters"},
    {{"string for an integer", "{\"v\":\"5\"}", OP_INT, 0, 0, 9}, JSONF_TYPE, "must be an integer"},
    {{"real for an integer", "{\"v\":1.0}", OP_INT, 0, 0, 9}, JSONF_TYPE, "must be an integer"},
    {{"exponent for an integer", "{\"v\":1e3}", OP_INT, 0, 0, 9999},
     JSONF_TYPE,
     "must be an integer"},
    {{"integer below", "{\"v\":-1}", OP_INT, 0, 0, INT64_MAX},
     JSONF_VALUE,
     "out of range (0 or more)"},
    {{"integer above", "{\"v\":61}", OP_INT, 0, INT64_MIN, 60},
     JSONF_VALUE,
     "out of range (60 or less)"},
    {{"integer outside both", "{\"v\":3000000000}", OP_INT, 0, INT32_MIN, INT32_MAX},
     JSONF_VALUE,
     "out of range (-2147483648 to 2147483647)"},
    {{"integer missing", "{}", OP_INT, JSONF_REQUIRED, 0, 1}, JSONF_MISSING, "missing"},
    {{"string for a number", "{\"v\":\"35\"}", OP_NUMBER, 0, 0, 0}, JSONF_TYPE, "must be a number"},
    {{"string for a boolean", "{\"v\":\"true\"}", OP_BOOL, 0, 0, 0},
     JSONF_TYPE,
     "must be a boolean"},
    {{"zero for a boolean", "{\"v\":0}", OP_BOOL, 0, 0, 0}, JSONF_TYPE, "must be a boolean"},
    {{"word not in the enum", "{\"v\":\"mauve\"}", OP_ENUM, 0, 0, 0},
     JSONF_VALUE,
     "must be one of red, green, blue"},
    {{"enum words are case-sensitive", "{\"v\":\"Red\"}", OP_ENUM, 0, 0, 0},
     JSONF_VALUE,
     "must be one of red, green, blue"},
    {{"number for an enum", "{\"v\":1}", OP_ENUM, JSONF_OPEN, 0, 0},
     JSONF_TYPE,
     "must be a string"},
    {{"array for an object", "{\"v\":[]}", OP_OBJECT, 0, 0, 0}, JSONF_TYPE, "must be an object"},
    {{"object missing", "{}", OP_OBJECT, JSONF_REQUIRED, 0, 0}, JSONF_MISSING, "missing"},
    {{"object for an array", "{\"v\":{}}", OP_ARRAY, 0, 0, 9}, JSONF_TYPE, "must be an array"},
    {{"array one item long", "{\"v\":[1,2,3,4]}", OP_ARRAY, 0, 0, 3},
     JSONF_TOO_LONG,
     "more than 3 items"},
};

Test(jsonf, bad_values_are_refused_with_kind_path_and_reason)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct jsonf_error err;
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        char got[64];
        int rc = read_run(&c->read, &reader, got, sizeof got);
        cr_expect_eq(rc, -1, "%s: rc %d", c->read.name, rc);
        cr_expect_eq(reader.n, 1, "%s: %zu errors", c->read.name, reader.n);
        cr_expect_eq(err.kind, c->kind, "%s: kind %d", c->read.name, err.kind);
        cr_expect_str_eq(err.path, "v", "%s", c->read.name);
        cr_expect_str_eq(err.reason, c->reason, "%s", c->read.name);
        /* A refused read leaves the output alone. */
        cr_expect(strcmp(got, "(unset)") == 0 || strcmp(got, "-7") == 0 ||
                      strcmp(got, "false") == 0 || strcmp(got, "none") == 0 ||
                      strcmp(got, "0") == 0,
                  "%s: output written: %s", c->read.name, got);
    }
}

/* ---- nested paths: a scenario as the scheduler takes it ------------------- */

static const char *const reentry_words[] = {"once", "always"};
static const char *const from_words[] = {"start", "previous"};
static const char *const scenario_fields[] = {"name", "reentry", "steps"};
static const char *const step_fields[] = {"timing", "messages"};

struct scenario {
    const char *name;
    int reentry;
    size_t steps;
    int64_t after_s_sum;
    const char *last_at;
};

/* "HH:MM", 00:00 to 23:59. */
static bool clock_valid(const char *s)
{
    return strlen(s) == 5 && s[0] >= '0' && s[0] <= '2' && s[1] >= '0' && s[1] <= '9' &&
           (s[0] < '2' || s[1] <= '3') && s[2] == ':' && s[3] >= '0' && s[3] <= '5' &&
           s[4] >= '0' && s[4] <= '9';
}

static int timing_read(const struct jsonf *step, struct scenario *out)
{
    struct jsonf timing;
    const char *at = NULL;
    int64_t after_s = 0, day = 0;
    int from = 1;
    if (jsonf_object(step, "timing", JSONF_REQUIRED, &timing) < 0)
        return -1;
    if (jsonf_int(&timing, "after_s", 0, 0, 365 * 86400, &after_s) < 0 ||
        jsonf_enum(&timing, "from", 0, from_words, 2, &from) < 0 ||
        jsonf_int(&timing, "day", 0, 0, 365, &day) < 0 ||
        jsonf_string(&timing, "at", 0, 5, &at, NULL) < 0)
        return -1;
    if (at && !clock_valid(at))
        return jsonf_fail(&timing, "at", JSONF_VALUE, "must be a string of form HH:MM");
    out->after_s_sum += after_s;
    if (at)
        out->last_at = at;
    return 0;
}

static int scenario_read(struct jsonf_reader *reader, json_t *doc, struct scenario *out)
{
    struct jsonf root, steps, step, messages;
    jsonf_root(&root, reader, doc);
    if (!json_is_object(doc))
        return jsonf_fail(&root, NULL, JSONF_TYPE, "must be an object");
    if (jsonf_known(&root, scenario_fields, 3) < 0 ||
        jsonf_string(&root, "name", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN, 100, &out->name,
                     NULL) < 0 ||
        jsonf_enum(&root, "reentry", 0, reentry_words, 2, &out->reentry) < 0 ||
        jsonf_array(&root, "steps", JSONF_REQUIRED, 4, &steps) < 0)
        return -1;
    for (size_t i = 0; i < jsonf_size(&steps); i++) {
        if (jsonf_item_object(&steps, i, &step) < 0 || jsonf_known(&step, step_fields, 2) < 0 ||
            timing_read(&step, out) < 0 || jsonf_array(&step, "messages", 0, 2, &messages) < 0)
            return -1;
        for (size_t m = 0; m < jsonf_size(&messages); m++) {
            const char *text;
            if (jsonf_item_string(&messages, m, JSONF_NONEMPTY, 20, &text, NULL) < 0)
                return -1;
        }
        out->steps++;
    }
    return 0;
}

struct scenario_good {
    const char *name;
    const char *doc;
    int reentry;
    size_t steps;
    int64_t after_s_sum;
    const char *last_at;
};

static const struct scenario_good scenario_goods[] = {
    {"minimal", "{\"name\":\"w\",\"steps\":[]}", 0, 0, 0, NULL},
    {"three steps",
     "{\"name\":\"welcome\",\"reentry\":\"always\",\"steps\":["
     "{\"timing\":{\"after_s\":0,\"from\":\"start\"},\"messages\":[\"hi\"]},"
     "{\"timing\":{\"after_s\":3600}},"
     "{\"timing\":{\"day\":2,\"at\":\"09:30\"},\"messages\":[\"a\",\"b\"]}]}",
     1, 3, 3600, "09:30"},
    {"midnight and the last minute",
     "{\"name\":\"n\",\"steps\":[{\"timing\":{\"at\":\"00:00\"}},{\"timing\":{\"at\":\"23:59\"}}]}",
     0, 2, 0, "23:59"},
};

Test(jsonf, a_good_scenario_is_read_through_every_level)
{
    for (size_t i = 0; i < sizeof scenario_goods / sizeof scenario_goods[0]; i++) {
        const struct scenario_good *c = &scenario_goods[i];
        struct jsonf_error err = {0};
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        struct scenario got = {.reentry = 0};
        json_t *doc = doc_load(c->doc);
        int rc = scenario_read(&reader, doc, &got);
        cr_expect_eq(rc, 0, "%s: %s: %s", c->name, err.path, err.reason);
        cr_expect_eq(got.reentry, c->reentry, "%s", c->name);
        cr_expect_eq(got.steps, c->steps, "%s", c->name);
        cr_expect_eq(got.after_s_sum, c->after_s_sum, "%s", c->name);
        if (c->last_at)
            cr_expect(got.last_at && strcmp(got.last_at, c->last_at) == 0, "%s", c->name);
        json_decref(doc);
    }
}

struct scenario_bad {
    const char *name;
    const char *doc;
    const char *text; /* jsonf_error_text of the first error */
    enum jsonf_kind kind;
};

#define STEP_OK "{\"timing\":{\"after_s\":1}}"

static const struct scenario_bad scenario_bads[] = {
    {"not an object", "[]", "must be an object", JSONF_TYPE},
    {"name missing", "{\"steps\":[]}", "name: missing", JSONF_MISSING},
    {"name empty", "{\"name\":\"\",\"steps\":[]}", "name: must not be empty", JSONF_VALUE},
    {"unknown top-level member", "{\"name\":\"n\",\"stpes\":[]}",
     "stpes: unknown field; allowed: name, reentry, steps", JSONF_UNKNOWN},
    {"reentry not a word", "{\"name\":\"n\",\"reentry\":\"twice\",\"steps\":[]}",
     "reentry: must be one of once, always", JSONF_VALUE},
    {"steps an object", "{\"name\":\"n\",\"steps\":{}}", "steps: must be an array", JSONF_TYPE},
    {"too many steps",
     "{\"name\":\"n\",\"steps\":[" STEP_OK "," STEP_OK "," STEP_OK "," STEP_OK "," STEP_OK "]}",
     "steps: more than 4 items", JSONF_TOO_LONG},
    {"third step not an object", "{\"name\":\"n\",\"steps\":[" STEP_OK "," STEP_OK ",7]}",
     "steps[2]: must be an object", JSONF_TYPE},
    {"third step without timing", "{\"name\":\"n\",\"steps\":[" STEP_OK "," STEP_OK ",{}]}",
     "steps[2].timing: missing", JSONF_MISSING},
    {"third step's at is a number",
     "{\"name\":\"n\",\"steps\":[" STEP_OK "," STEP_OK ",{\"timing\":{\"at\":930}}]}",
     "steps[2].timing.at: must be a string", JSONF_TYPE},
    {"third step's at is not a clock time",
     "{\"name\":\"n\",\"steps\":[" STEP_OK "," STEP_OK ",{\"timing\":{\"at\":\"24:00\"}}]}",
     "steps[2].timing.at: must be a string of form HH:MM", JSONF_VALUE},
    {"at too long", "{\"name\":\"n\",\"steps\":[{\"timing\":{\"at\":\"09:30:00\"}}]}",
     "steps[0].timing.at: longer than 5 bytes", JSONF_TOO_LONG},
    {"after_s negative", "{\"name\":\"n\",\"steps\":[" STEP_OK ",{\"timing\":{\"after_s\":-1}}]}",
     "steps[1].timing.after_s: out of range (0 to 31536000)", JSONF_VALUE},
    {"from not a word", "{\"name\":\"n\",\"steps\":[{\"timing\":{\"from\":\"end\"}}]}",
     "steps[0].timing.from: must be one of start, previous", JSONF_VALUE},
    {"unknown member of a step", "{\"name\":\"n\",\"steps\":[{\"timing\":{},\"when\":1}]}",
     "steps[0].when: unknown field; allowed: timing, messages", JSONF_UNKNOWN},
    {"second message not a string",
     "{\"name\":\"n\",\"steps\":[{\"timing\":{},\"messages\":[\"a\",{}]}]}",
     "steps[0].messages[1]: must be a string", JSONF_TYPE},
    {"message empty", "{\"name\":\"n\",\"steps\":[{\"timing\":{},\"messages\":[\"\"]}]}",
     "steps[0].messages[0]: must not be empty", JSONF_VALUE},
    {"too many messages",
     "{\"name\":\"n\",\"steps\":[{\"timing\":{},\"messages\":[\"a\",\"b\",\"c\"]}]}",
     "steps[0].messages: more than 2 items", JSONF_TOO_LONG},
};

Test(jsonf, a_bad_scenario_names_the_offending_member_by_its_path)
{
    for (size_t i = 0; i < sizeof scenario_bads / sizeof scenario_bads[0]; i++) {
        const struct scenario_bad *c = &scenario_bads[i];
        struct jsonf_error err = {0};
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        struct scenario got = {.reentry = 0};
        json_t *doc = doc_load(c->doc);
        char text[JSONF_PATH_MAX + JSONF_REASON_MAX];
        cr_expect_eq(scenario_read(&reader, doc, &got), -1, "%s: accepted", c->name);
        cr_expect_str_eq(jsonf_error_text(&err, text, sizeof text), c->text, "%s", c->name);
        cr_expect_eq(err.kind, c->kind, "%s: kind %d", c->name, err.kind);
        json_decref(doc);
    }
}

/* ---- the reader ----------------------------------------------------------- */

Test(jsonf, a_reader_with_room_collects_every_error_in_order)
{
    json_t *doc = doc_load("{\"a\":1,\"b\":\"x\",\"c\":true,\"zz\":0,\"yy\":0}");
    struct jsonf_error errs[3];
    struct jsonf_reader reader = {.errors = errs, .cap = 3};
    struct jsonf root;
    const char *s;
    int64_t i;
    static const char *const known[] = {"a", "b", "c"};
    jsonf_root(&root, &reader, doc);
    /* Each read is made, whatever the one before answered. */
    int bad = (jsonf_string(&root, "a", 0, 9, &s, NULL) < 0) +
              (jsonf_int(&root, "b", 0, 0, 9, &i) < 0) + (jsonf_known(&root, known, 3) < 0) +
              (jsonf_string(&root, "d", JSONF_REQUIRED, 9, &s, NULL) < 0);
    cr_assert_eq(bad, 4);
    cr_assert_eq(reader.n, 5, "counted past the room: %zu", reader.n);
    cr_assert_str_eq(errs[0].path, "a");
    cr_assert_str_eq(errs[1].path, "b");
    cr_assert_str_eq(errs[2].path, "zz", "unknown members in the document's order");
    cr_assert_str_eq(jsonf_error_first(&reader)->path, "a");
    json_decref(doc);
}

Test(jsonf, reader_flags_apply_to_every_read)
{
    json_t *doc = doc_load("{\"s\":null,\"o\":null,\"i\":null}");
    struct jsonf_error err;
    struct jsonf_reader reader = {.flags = JSONF_NULLABLE, .errors = &err, .cap = 1};
    struct jsonf root, child;
    const char *s = "default";
    int64_t i = 5;
    jsonf_root(&root, &reader, doc);
    cr_assert_eq(jsonf_string(&root, "s", 0, 9, &s, NULL), 0);
    cr_assert_eq(jsonf_object(&root, "o", 0, &child), 0);
    cr_assert_eq(jsonf_int(&root, "i", 0, 0, 9, &i), 0);
    cr_assert_str_eq(s, "default");
    cr_assert_eq(i, 5);
    /* Reads under an absent object are absent too, and still have a path. */
    cr_assert_eq(jsonf_string(&child, "x", 0, 9, &s, NULL), 0);
    cr_assert_eq(jsonf_string(&child, "x", JSONF_REQUIRED, 9, &s, NULL), -1);
    cr_assert_str_eq(err.path, "o.x");
    cr_assert_null(jsonf_error_first(&(struct jsonf_reader){0}));
    json_decref(doc);
}

Test(jsonf, long_paths_and_word_lists_are_cut_not_overrun)
{
    char key[400];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    char text[600];
    snprintf(text, sizeof text, "{\"%s\":1}", key);
    json_t *doc = doc_load(text);
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    static const char *const many[] = {
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "cccccccccccccccccccccccccccccc", "dddddddddddddddddddddddddddddd",
        "eeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "ffffffffffffffffffffffffffffff"};
    jsonf_root(&root, &reader, doc);
    cr_assert_eq(jsonf_known(&root, many, 6), -1);
    cr_assert_eq(strlen(err.path), JSONF_PATH_MAX - 1);
    cr_assert_lt(strlen(err.reason), (size_t)JSONF_REASON_MAX);
    cr_assert_not_null(strstr(err.reason, "unknown field; allowed: aaaa"));
    json_decref(doc);
}

struct grid_bad {
    const char *doc;
    const char *text;
};

static const struct grid_bad grid_bads[] = {
    {"{\"grid\":[[1,2],[3,\"x\"]]}", "grid[1][1]: must be an integer"},
    {"{\"grid\":[[1,2],[3,99]]}", "grid[1][1]: out of range (0 to 9)"},
    {"{\"grid\":[[1,2],7]}", "grid[1]: must be an array"},
    {"{\"grid\":[[1,2,3,4]]}", "grid[0]: more than 3 items"},
    {"{\"grid\":[[1,1]]}", "grid[0][1]: repeats grid[0][0]"},
    {"{\"grid\":[[1],null]}", "grid[1]: must be an array"},
};

/* grid: up to 3 rows of up to 3 distinct integers 0..9. */
static int grid_read(struct jsonf_reader *reader, json_t *doc, int64_t *sum)
{
    struct jsonf root, grid, row;
    jsonf_root(&root, reader, doc);
    if (jsonf_array(&root, "grid", JSONF_REQUIRED | JSONF_NULLABLE, 3, &grid) < 0)
        return -1;
    for (size_t r = 0; r < jsonf_size(&grid); r++) {
        int64_t prev = -1, v;
        if (jsonf_item_array(&grid, r, 3, &row) < 0)
            return -1;
        for (size_t c = 0; c < jsonf_size(&row); c++) {
            if (jsonf_item_int(&row, c, 0, 9, &v) < 0)
                return -1;
            if (v == prev)
                return jsonf_item_fail(&row, c, JSONF_VALUE, "repeats grid[%zu][%zu]", r, c - 1);
            prev = v;
            *sum += v;
        }
    }
    return 0;
}

Test(jsonf, items_of_nested_arrays_are_named_by_their_indexes)
{
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    int64_t sum = 0;
    json_t *good = doc_load("{\"grid\":[[1,2,3],[],[9]]}");
    cr_assert_eq(grid_read(&reader, good, &sum), 0, "%s: %s", err.path, err.reason);
    cr_assert_eq(sum, 15);
    json_decref(good);
    for (size_t i = 0; i < sizeof grid_bads / sizeof grid_bads[0]; i++) {
        char text[JSONF_PATH_MAX + JSONF_REASON_MAX];
        json_t *doc = doc_load(grid_bads[i].doc);
        reader.n = 0;
        cr_expect_eq(grid_read(&reader, doc, &sum), -1, "%s: accepted", grid_bads[i].doc);
        cr_expect_str_eq(jsonf_error_text(&err, text, sizeof text), grid_bads[i].text);
        json_decref(doc);
    }
}

Test(jsonf, a_document_that_is_an_array_has_paths_from_its_first_index)
{
    json_t *doc = doc_load("[{\"name\":\"a\"},{}]");
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root, item;
    const char *name;
    jsonf_root(&root, &reader, doc);
    cr_assert_eq(jsonf_item_object(&root, 0, &item), 1);
    cr_assert_eq(jsonf_string(&item, "name", JSONF_REQUIRED, 9, &name, NULL), 1);
    cr_assert_eq(jsonf_item_object(&root, 1, &item), 1);
    cr_assert_eq(jsonf_string(&item, "name", JSONF_REQUIRED, 9, &name, NULL), -1);
    cr_assert_str_eq(err.path, "[1].name");
    cr_assert_eq(jsonf_fail(&item, NULL, JSONF_VALUE, "bad item"), -1);
    cr_assert_eq(reader.n, 2);
    json_decref(doc);
}

Test(jsonf, every_kind_has_its_api_code)
{
    cr_assert_str_eq(jsonf_kind_code(JSONF_MISSING), "missing_field");
    cr_assert_str_eq(jsonf_kind_code(JSONF_TYPE), "invalid_type");
    cr_assert_str_eq(jsonf_kind_code(JSONF_TOO_LONG), "too_long");
    cr_assert_str_eq(jsonf_kind_code(JSONF_VALUE), "invalid_value");
    cr_assert_str_eq(jsonf_kind_code(JSONF_UNKNOWN), "unknown_field");
}
