/* Unit tests for the filter compiler (services/segmentation/filter.c) over
 * a catalog held in the test: every operator on every field type, nesting,
 * empty groups, not, saved segments inlined and their cycles, the depth
 * limit, and hostile values (SQL, LIKE metacharacters, backslashes, NUL,
 * invalid UTF-8, huge numbers, wrong types), which must reach the
 * parameters and never the SQL text. Bad trees are a table of their own,
 * each with the JSON path its error must name. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "segmentation/filter.h"

/* ---- the catalog --------------------------------------------------------- */

#define SEG_A "11111111-1111-1111-1111-111111111111"
#define SEG_B "22222222-2222-2222-2222-222222222222"
#define SEG_C "33333333-3333-3333-3333-333333333333"
#define SEG_LOOP1 "44444444-4444-4444-4444-444444444444"
#define SEG_LOOP2 "55555555-5555-5555-5555-555555555555"
#define SEG_SELF "66666666-6666-6666-6666-666666666666"
#define SEG_BROKEN "77777777-7777-7777-7777-777777777777"

static const struct {
    const char *name;
    int64_t id;
} tags[] = {{"vip", 7}, {"new", 8}, {"' OR 1=1 --", 9}};

static const struct {
    const char *name;
    int64_t id;
    enum field_type type;
} fields[] = {{"score", 10, FIELD_NUMBER},
              {"birthday", 11, FIELD_DATE},
              {"visit", 12, FIELD_DATETIME},
              {"city", 13, FIELD_TEXT},
              {"plan", 14, FIELD_CHOICE}};

static const struct {
    const char *id;
    const char *filter;
} segments[] = {
    {SEG_A, "{\"tag\":\"vip\"}"},
    {SEG_B, "{\"all\":[{\"segment\":\"" SEG_A "\"},{\"blocked\":false}]}"},
    {SEG_C, "{\"not\":{\"segment\":\"" SEG_B "\"}}"},
    {SEG_LOOP1, "{\"any\":[{\"tag\":\"new\"},{\"segment\":\"" SEG_LOOP2 "\"}]}"},
    {SEG_LOOP2, "{\"segment\":\"" SEG_LOOP1 "\"}"},
    {SEG_SELF, "{\"tag\":\"vip\"}"},
    {SEG_BROKEN, "{\"all\":[{\"tag\":\"gone\"}]}"},
};

static int catalog_calls_fail; /* the next lookup fails like a database */

static int64_t cat_tag(void *ctx, const char *name)
{
    (void)ctx;
    if (catalog_calls_fail)
        return -1;
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (strcmp(tags[i].name, name) == 0)
            return tags[i].id;
    return 0;
}

static int cat_field(void *ctx, const char *name, struct filter_field *def)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].name, name) == 0) {
            def->id = fields[i].id;
            def->type = fields[i].type;
            def->choices = fields[i].type == FIELD_CHOICE ? json_pack("[ss]", "free", "pro") : NULL;
            return 1;
        }
    return 0;
}

static int cat_segment(void *ctx, const char *id, json_t **filter)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof segments / sizeof segments[0]; i++)
        if (strcmp(segments[i].id, id) == 0) {
            *filter = json_loads(segments[i].filter, 0, NULL);
            return 1;
        }
    return 0;
}

static const struct filter_catalog catalog = {
    .tag_id = cat_tag, .field = cat_field, .segment = cat_segment};

/* 2026-01-01T00:00:00Z */
#define NOW_MS 1767225600000LL

static json_t *tree(const char *text)
{
    json_error_t jerr;
    json_t *t = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    cr_assert_not_null(t, "test JSON %s: %s", text, jerr.text);
    return t;
}

static int compile_text(const char *text, struct filter_sql *q, struct jsonf_error *err)
{
    json_t *t = tree(text);
    int rc = filter_compile_with(&catalog, t, "filter", 2, NULL, NOW_MS, q, err);
    json_decref(t);
    return rc;
}

static void params_expect(const struct filter_sql *q, const char *const *want, int n)
{
    cr_assert_eq(q->nparams, n, "params: %d, want %d (sql %s)", q->nparams, n, q->sql);
    for (int i = 0; i < n; i++)
        cr_expect_str_eq(q->params[i], want[i], "param $%d", i + 2);
}

/* ---- good trees: the SQL and its parameters ------------------------------ */

struct good_case {
    const char *name;
    const char *filter;
    const char *sql;
    const char *params[4];
    int nparams;
};

static const struct good_case good_cases[] = {
    {"empty all holds for everyone", "{\"all\":[]}", "TRUE", {0}, 0},
    {"empty any holds for no one", "{\"any\":[]}", "FALSE", {0}, 0},
    {"tag is a semi-join on friend_tags",
     "{\"tag\":\"vip\"}",
     "EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = $2::bigint)",
     {"7"},
     1},
    {"not wraps its child",
     "{\"not\":{\"tag\":\"new\"}}",
     "(NOT EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = "
     "$2::bigint))",
     {"8"},
     1},
    {"blocked true", "{\"blocked\":true}", "f.blocked", {0}, 0},
    {"blocked false", "{\"blocked\":false}", "(NOT f.blocked)", {0}, 0},
    {"route",
     "{\"route\":\"ad_2026-x\"}",
     "(f.route IS NOT NULL AND f.route = $2::text)",
     {"ad_2026-x"},
     1},
    {"last message within counts back from now",
     "{\"last_message_within_s\":86400}",
     "(f.last_message_at IS NOT NULL AND f.last_message_at >= $2::timestamptz)",
     {"2025-12-31T00:00:00.000Z"},
     1},
    {"added_at both bounds",
     "{\"added_at\":{\"gte\":\"2025-12-01T00:00:00Z\",\"lt\":\"2026-01-01T09:00:00+09:00\"}}",
     "(f.added_at IS NOT NULL AND f.added_at >= $2::timestamptz AND f.added_at < "
     "$3::timestamptz)",
     {"2025-12-01T00:00:00Z", "2026-01-01T09:00:00+09:00"},
     2},
    {"lower-case t and z are sent upper-case",
     "{\"added_at\":{\"gte\":\"2026-01-01t00:00:00z\"}}",
     "(f.added_at IS NOT NULL AND f.added_at >= $2::timestamptz)",
     {"2026-01-01T00:00:00Z"},
     1},
    {"added_at one bound",
     "{\"added_at\":{\"lt\":\"2026-01-01T00:00:00.123456Z\"}}",
     "(f.added_at IS NOT NULL AND f.added_at < $2::timestamptz)",
     {"2026-01-01T00:00:00.123456Z"},
     1},
    {"added_at no bound is every friend with a follow",
     "{\"added_at\":{}}",
     "(f.added_at IS NOT NULL)",
     {0},
     0},
    {"all joins with AND",
     "{\"all\":[{\"blocked\":false},{\"tag\":\"vip\"}]}",
     "((NOT f.blocked) AND EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND "
     "t.tag_id = $2::bigint))",
     {"7"},
     1},
    {"any joins with OR",
     "{\"any\":[{\"blocked\":true},{\"all\":[]}]}",
     "(f.blocked OR TRUE)",
     {0},
     0},
    {"saved segment is inlined",
     "{\"segment\":\"" SEG_A "\"}",
     "EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = $2::bigint)",
     {"7"},
     1},
    {"saved segments nest",
     "{\"segment\":\"" SEG_C "\"}",
     "(NOT (EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = "
     "$2::bigint) AND (NOT f.blocked)))",
     {"7"},
     1},
    {"the same segment twice is no cycle",
     "{\"all\":[{\"segment\":\"" SEG_A "\"},{\"segment\":\"" SEG_A "\"}]}",
     "(EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = $2::bigint) "
     "AND EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = "
     "$3::bigint))",
     {"7", "7"},
     2},
};

#define FF "EXISTS (SELECT 1 FROM friend_fields v WHERE v.friend_id = f.id AND v.field_id = "

static const struct good_case field_cases[] = {
    {"number eq",
     "{\"field\":\"score\",\"op\":\"eq\",\"value\":10}",
     FF "$2::bigint AND v.number_value = $3::numeric)",
     {"10", "10"},
     2},
    {"number ne",
     "{\"field\":\"score\",\"op\":\"ne\",\"value\":-1}",
     FF "$2::bigint AND v.number_value <> $3::numeric)",
     {"10", "-1"},
     2},
    {"number lt real",
     "{\"field\":\"score\",\"op\":\"lt\",\"value\":2.5}",
     FF "$2::bigint AND v.number_value < $3::numeric)",
     {"10", "2.5"},
     2},
    {"number le",
     "{\"field\":\"score\",\"op\":\"le\",\"value\":0}",
     FF "$2::bigint AND v.number_value <= $3::numeric)",
     {"10", "0"},
     2},
    {"number gt",
     "{\"field\":\"score\",\"op\":\"gt\",\"value\":100}",
     FF "$2::bigint AND v.number_value > $3::numeric)",
     {"10", "100"},
     2},
    {"number ge",
     "{\"field\":\"score\",\"op\":\"ge\",\"value\":1e3}",
     FF "$2::bigint AND v.number_value >= $3::numeric)",
     {"10", "1000"},
     2},
    {"number between",
     "{\"field\":\"score\",\"op\":\"between\",\"value\":[1,9]}",
     FF "$2::bigint AND v.number_value BETWEEN $3::numeric AND $4::numeric)",
     {"10", "1", "9"},
     3},
    {"number is_set",
     "{\"field\":\"score\",\"op\":\"is_set\"}",
     FF "$2::bigint AND v.number_value IS NOT NULL)",
     {"10"},
     1},
    {"a decimal fraction is sent as written",
     "{\"field\":\"score\",\"op\":\"eq\",\"value\":0.1}",
     FF "$2::bigint AND v.number_value = $3::numeric)",
     {"10", "0.1"},
     2},
    {"a negative fraction",
     "{\"field\":\"score\",\"op\":\"le\",\"value\":-1234.5678}",
     FF "$2::bigint AND v.number_value <= $3::numeric)",
     {"10", "-1234.5678"},
     2},
    {"huge number stays a parameter",
     "{\"field\":\"score\",\"op\":\"gt\",\"value\":1e308}",
     FF "$2::bigint AND v.number_value > $3::numeric)",
     {"10", "1e+308"},
     2},
    {"date eq",
     "{\"field\":\"birthday\",\"op\":\"eq\",\"value\":\"2000-02-29\"}",
     FF "$2::bigint AND v.date_value = $3::date)",
     {"11", "2000-02-29"},
     2},
    {"date between",
     "{\"field\":\"birthday\",\"op\":\"between\",\"value\":[\"1990-01-01\",\"1999-12-31\"]}",
     FF "$2::bigint AND v.date_value BETWEEN $3::date AND $4::date)",
     {"11", "1990-01-01", "1999-12-31"},
     3},
    {"date is_set",
     "{\"field\":\"birthday\",\"op\":\"is_set\"}",
     FF "$2::bigint AND v.date_value IS NOT NULL)",
     {"11"},
     1},
    {"datetime ge",
     "{\"field\":\"visit\",\"op\":\"ge\",\"value\":\"2026-01-01T10:00:00+09:00\"}",
     FF "$2::bigint AND v.time_value >= $3::timestamptz)",
     {"12", "2026-01-01T10:00:00+09:00"},
     2},
    {"datetime lt",
     "{\"field\":\"visit\",\"op\":\"lt\",\"value\":\"2026-01-01T00:00:00Z\"}",
     FF "$2::bigint AND v.time_value < $3::timestamptz)",
     {"12", "2026-01-01T00:00:00Z"},
     2},
    {"text eq",
     "{\"field\":\"city\",\"op\":\"eq\",\"value\":\"Tokyo\"}",
     FF "$2::bigint AND v.text_value = $3::text)",
     {"13", "Tokyo"},
     2},
    {"text ne empty",
     "{\"field\":\"city\",\"op\":\"ne\",\"value\":\"\"}",
     FF "$2::bigint AND v.text_value <> $3::text)",
     {"13", ""},
     2},
    {"text contains uses strpos",
     "{\"field\":\"city\",\"op\":\"contains\",\"value\":\"kyo\"}",
     FF "$2::bigint AND strpos(lower(v.text_value), lower($3::text)) > 0)",
     {"13", "kyo"},
     2},
    {"text is_set",
     "{\"field\":\"city\",\"op\":\"is_set\"}",
     FF "$2::bigint AND v.text_value IS NOT NULL)",
     {"13"},
     1},
    {"choice eq",
     "{\"field\":\"plan\",\"op\":\"eq\",\"value\":\"pro\"}",
     FF "$2::bigint AND v.text_value = $3::text)",
     {"14", "pro"},
     2},
    {"choice ne",
     "{\"field\":\"plan\",\"op\":\"ne\",\"value\":\"free\"}",
     FF "$2::bigint AND v.text_value <> $3::text)",
     {"14", "free"},
     2},
    {"choice is_set",
     "{\"field\":\"plan\",\"op\":\"is_set\"}",
     FF "$2::bigint AND v.text_value IS NOT NULL)",
     {"14"},
     1},
};

static void good_check(const struct good_case *c)
{
    struct filter_sql q;
    struct jsonf_error err;
    int rc = compile_text(c->filter, &q, &err);
    cr_assert_eq(rc, 0, "%s: refused at %s: %s", c->name, err.path, err.reason);
    cr_expect_str_eq(q.sql, c->sql, "%s", c->name);
    params_expect(&q, c->params, c->nparams);
    filter_sql_free(&q);
}

TestSuite(seg_filter);

Test(seg_filter, groups_leaves_and_segments_compile_to_parameterised_sql)
{
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++)
        good_check(&good_cases[i]);
}

Test(seg_filter, every_operator_of_every_field_type_compiles)
{
    for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++)
        good_check(&field_cases[i]);
}

Test(seg_filter, parameters_are_numbered_from_first_param)
{
    json_t *t = tree("{\"all\":[{\"tag\":\"vip\"},{\"tag\":\"new\"}]}");
    struct filter_sql q;
    struct jsonf_error err;
    cr_assert_eq(filter_compile_with(&catalog, t, "filter", 5, NULL, NOW_MS, &q, &err), 0);
    cr_expect(strstr(q.sql, "$5::bigint") && strstr(q.sql, "$6::bigint"), "%s", q.sql);
    cr_expect_null(strstr(q.sql, "$2"), "%s", q.sql);
    filter_sql_free(&q);
    json_decref(t);
}

static json_t *nested_not(int depth)
{
    json_t *node = json_pack("{s:b}", "blocked", 0);
    for (int i = 1; i < depth; i++)
        node = json_pack("{s:o}", "not", node);
    return node;
}

Test(seg_filter, depth_16_is_accepted_and_17_refused_at_the_deepest_node)
{
    struct filter_sql q;
    struct jsonf_error err;
    json_t *ok = nested_not(FILTER_DEPTH_MAX);
    cr_expect_eq(filter_compile_with(&catalog, ok, "filter", 1, NULL, NOW_MS, &q, &err), 0,
                 "%s: %s", err.path, err.reason);
    filter_sql_free(&q);
    json_decref(ok);

    json_t *deep = nested_not(FILTER_DEPTH_MAX + 1);
    cr_expect_eq(filter_compile_with(&catalog, deep, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    char want[JSONF_PATH_MAX] = "filter";
    for (int i = 0; i < FILTER_DEPTH_MAX; i++)
        strncat(want, ".not", sizeof want - strlen(want) - 1);
    cr_expect_str_eq(err.path, want);
    cr_expect_null(q.sql);
    json_decref(deep);
}

Test(seg_filter, groups_over_the_cap_and_too_many_conditions_are_refused)
{
    json_t *wide = json_array();
    for (int i = 0; i <= FILTER_GROUP_MAX; i++)
        json_array_append_new(wide, json_pack("{s:b}", "blocked", 1));
    json_t *t = json_pack("{s:o}", "any", wide);
    struct filter_sql q;
    struct jsonf_error err;
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    cr_expect_str_eq(err.path, "filter.any");
    json_decref(t);

    /* 6 groups of 99 conditions: under each group's cap, over the tree's. */
    json_t *outer = json_array();
    for (int g = 0; g < 6; g++) {
        json_t *inner = json_array();
        for (int i = 0; i < FILTER_GROUP_MAX - 1; i++)
            json_array_append_new(inner, json_pack("{s:b}", "blocked", 1));
        json_array_append_new(outer, json_pack("{s:o}", "all", inner));
    }
    t = json_pack("{s:o}", "any", outer);
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    cr_expect_eq(err.kind, JSONF_TOO_LONG, "%s: %s", err.path, err.reason);
    json_decref(t);
}

Test(seg_filter, a_segment_referring_back_to_the_one_being_stored_is_a_cycle)
{
    json_t *t = tree("{\"any\":[{\"blocked\":true},{\"segment\":\"" SEG_B "\"}]}");
    struct filter_sql q;
    struct jsonf_error err;
    /* Storing A as a tree that reaches A again through B. */
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, SEG_A, NOW_MS, &q, &err), -1);
    cr_expect_str_eq(err.path, "filter.any[1].segment");
    cr_expect(strstr(err.reason, "cycle"), "%s", err.reason);
    /* Stored as anything else, the same tree is fine. */
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, SEG_SELF, NOW_MS, &q, &err), 0);
    filter_sql_free(&q);
    json_decref(t);
}

Test(seg_filter, a_database_failure_in_the_catalog_is_minus_two)
{
    catalog_calls_fail = 1;
    struct filter_sql q;
    struct jsonf_error err;
    cr_expect_eq(compile_text("{\"all\":[{\"tag\":\"vip\"}]}", &q, &err), -2);
    catalog_calls_fail = 0;
    cr_expect_null(q.sql);
}

/* ---- hostile values: only ever parameters -------------------------------- */

struct hostile_case {
    const char *name;
    const char *filter;
    const char *value; /* must be a parameter, exactly */
};

static const struct hostile_case hostile_cases[] = {
    {"quote and comment in text", "{\"field\":\"city\",\"op\":\"eq\",\"value\":\"' OR 1=1 --\"}",
     "' OR 1=1 --"},
    {"percent in contains", "{\"field\":\"city\",\"op\":\"contains\",\"value\":\"100%\"}", "100%"},
    {"underscore in contains", "{\"field\":\"city\",\"op\":\"contains\",\"value\":\"a_b\"}", "a_b"},
    {"backslashes in contains",
     "{\"field\":\"city\",\"op\":\"contains\",\"value\":\"\\\\%\\\\_\\\\\\\\\"}", "\\%\\_\\\\"},
    {"dollar quoting",
     "{\"field\":\"city\",\"op\":\"eq\",\"value\":\"$$; DROP TABLE friends; $$\"}",
     "$$; DROP TABLE friends; $$"},
    {"parameter lookalike", "{\"field\":\"city\",\"op\":\"eq\",\"value\":\"$1\"}", "$1"},
    {"route-like text in contains",
     "{\"field\":\"city\",\"op\":\"contains\",\"value\":\"x') OR ('a'='a\"}", "x') OR ('a'='a"},
    {"semicolon statement",
     "{\"field\":\"city\",\"op\":\"ne\",\"value\":\"1; SELECT pg_sleep(9)\"}",
     "1; SELECT pg_sleep(9)"},
};

Test(seg_filter, hostile_values_reach_only_the_parameters)
{
    for (size_t i = 0; i < sizeof hostile_cases / sizeof hostile_cases[0]; i++) {
        const struct hostile_case *c = &hostile_cases[i];
        struct filter_sql q;
        struct jsonf_error err;
        cr_assert_eq(compile_text(c->filter, &q, &err), 0, "%s: %s: %s", c->name, err.path,
                     err.reason);
        bool in_params = false;
        for (int p = 0; p < q.nparams; p++)
            in_params = in_params || strcmp(q.params[p], c->value) == 0;
        cr_expect(in_params, "%s: the value is a parameter", c->name);
        cr_expect_null(strchr(q.sql, '\''), "%s: no quote in %s", c->name, q.sql);
        cr_expect_null(strstr(q.sql, c->value), "%s: the value is not in %s", c->name, q.sql);
        cr_expect_null(strstr(q.sql, "LIKE"), "%s: no LIKE in %s", c->name, q.sql);
        filter_sql_free(&q);
    }
}

Test(seg_filter, a_tag_named_like_sql_is_resolved_to_its_id)
{
    struct filter_sql q;
    struct jsonf_error err;
    cr_assert_eq(compile_text("{\"tag\":\"' OR 1=1 --\"}", &q, &err), 0);
    const char *want[] = {"9"};
    params_expect(&q, want, 1);
    cr_expect_null(strstr(q.sql, "OR 1=1"));
    filter_sql_free(&q);
}

Test(seg_filter, invalid_utf8_is_refused_at_its_path)
{
    json_t *t = json_pack("{s:s,s:s,s:o}", "field", "city", "op", "eq", "value",
                          json_stringn_nocheck("a\xff\xfe", 3));
    struct filter_sql q;
    struct jsonf_error err;
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    cr_expect_str_eq(err.path, "filter.value");
    cr_expect_eq(err.kind, JSONF_VALUE);
    json_decref(t);

    t = json_pack("{s:o}", "tag", json_stringn_nocheck("\xc0\xaf", 2));
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    cr_expect_str_eq(err.path, "filter.tag");
    json_decref(t);
}

/* ---- bad trees: refused, with the node's path ---------------------------- */

struct bad_case {
    const char *name;
    const char *filter;
    const char *path;
    enum jsonf_kind kind;
};

static const struct bad_case bad_cases[] = {
    {"not an object", "[]", "filter", JSONF_TYPE},
    {"a bare string", "\"vip\"", "filter", JSONF_TYPE},
    {"an empty object", "{}", "filter", JSONF_MISSING},
    {"two conditions in one node", "{\"tag\":\"vip\",\"blocked\":true}", "filter", JSONF_UNKNOWN},
    {"unknown condition", "{\"color\":\"red\"}", "filter", JSONF_UNKNOWN},
    {"unknown tag in a group", "{\"all\":[{\"blocked\":true},{\"tag\":\"gold\"}]}",
     "filter.all[1].tag", JSONF_VALUE},
    {"tag not a string", "{\"tag\":7}", "filter.tag", JSONF_TYPE},
    {"empty tag", "{\"tag\":\"\"}", "filter.tag", JSONF_VALUE},
    {"tag name too long",
     "{\"tag\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
     "filter.tag", JSONF_TOO_LONG},
    {"NUL inside a tag", "{\"tag\":\"vip\\u0000 OR 1=1\"}", "filter.tag", JSONF_VALUE},
    {"NUL inside a text value", "{\"field\":\"city\",\"op\":\"eq\",\"value\":\"a\\u0000b\"}",
     "filter.value", JSONF_VALUE},
    {"all not an array", "{\"all\":{\"tag\":\"vip\"}}", "filter.all", JSONF_TYPE},
    {"any item not an object", "{\"any\":[{\"tag\":\"vip\"},3]}", "filter.any[1]", JSONF_TYPE},
    {"not of a list", "{\"not\":[]}", "filter.not", JSONF_TYPE},
    {"unknown field", "{\"field\":\"age\",\"op\":\"eq\",\"value\":1}", "filter.field", JSONF_VALUE},
    {"field name not a string", "{\"field\":1,\"op\":\"eq\",\"value\":1}", "filter.field",
     JSONF_TYPE},
    {"missing op", "{\"field\":\"score\",\"value\":1}", "filter.op", JSONF_MISSING},
    {"unknown op", "{\"field\":\"score\",\"op\":\"like\",\"value\":1}", "filter.op", JSONF_VALUE},
    {"op not a string", "{\"field\":\"score\",\"op\":1,\"value\":1}", "filter.op", JSONF_TYPE},
    {"contains on a number", "{\"field\":\"score\",\"op\":\"contains\",\"value\":1}", "filter.op",
     JSONF_VALUE},
    {"lt on text", "{\"field\":\"city\",\"op\":\"lt\",\"value\":\"a\"}", "filter.op", JSONF_VALUE},
    {"between on choice", "{\"field\":\"plan\",\"op\":\"between\",\"value\":[\"a\",\"b\"]}",
     "filter.op", JSONF_VALUE},
    {"contains on choice", "{\"field\":\"plan\",\"op\":\"contains\",\"value\":\"p\"}", "filter.op",
     JSONF_VALUE},
    {"contains on a date", "{\"field\":\"birthday\",\"op\":\"contains\",\"value\":\"2\"}",
     "filter.op", JSONF_VALUE},
    {"a member a field condition lacks",
     "{\"field\":\"score\",\"op\":\"eq\",\"value\":1,\"or\":\"1=1\"}", "filter", JSONF_UNKNOWN},
    {"missing value", "{\"field\":\"score\",\"op\":\"eq\"}", "filter.value", JSONF_MISSING},
    {"is_set with a value", "{\"field\":\"score\",\"op\":\"is_set\",\"value\":true}",
     "filter.value", JSONF_UNKNOWN},
    {"number as a string", "{\"field\":\"score\",\"op\":\"eq\",\"value\":\"1 OR 1=1\"}",
     "filter.value", JSONF_TYPE},
    {"number as a bool", "{\"field\":\"score\",\"op\":\"gt\",\"value\":true}", "filter.value",
     JSONF_TYPE},
    {"number null", "{\"field\":\"score\",\"op\":\"gt\",\"value\":null}", "filter.value",
     JSONF_TYPE},
    {"between not a pair", "{\"field\":\"score\",\"op\":\"between\",\"value\":[1]}", "filter.value",
     JSONF_TYPE},
    {"between of three", "{\"field\":\"score\",\"op\":\"between\",\"value\":[1,2,3]}",
     "filter.value", JSONF_TYPE},
    {"between with a bad high", "{\"field\":\"score\",\"op\":\"between\",\"value\":[1,\"x\"]}",
     "filter.value[1]", JSONF_TYPE},
    {"date of a bad form", "{\"field\":\"birthday\",\"op\":\"eq\",\"value\":\"2026/01/01\"}",
     "filter.value", JSONF_VALUE},
    {"date that does not exist", "{\"field\":\"birthday\",\"op\":\"eq\",\"value\":\"2025-02-29\"}",
     "filter.value", JSONF_VALUE},
    {"date with trailing SQL",
     "{\"field\":\"birthday\",\"op\":\"eq\",\"value\":\"2025-01-01'); --\"}", "filter.value",
     JSONF_TOO_LONG},
    {"date as a number", "{\"field\":\"birthday\",\"op\":\"eq\",\"value\":20250101}",
     "filter.value", JSONF_TYPE},
    {"datetime without a zone",
     "{\"field\":\"visit\",\"op\":\"eq\",\"value\":\"2026-01-01T00:00:00\"}", "filter.value",
     JSONF_VALUE},
    {"datetime with hour 24",
     "{\"field\":\"visit\",\"op\":\"eq\",\"value\":\"2026-01-01T24:00:00Z\"}", "filter.value",
     JSONF_VALUE},
    {"datetime with junk after",
     "{\"field\":\"visit\",\"op\":\"eq\",\"value\":\"2026-01-01T00:00:00Z OR\"}", "filter.value",
     JSONF_VALUE},
    {"choice not among the choices", "{\"field\":\"plan\",\"op\":\"eq\",\"value\":\"gold\"}",
     "filter.value", JSONF_VALUE},
    {"text as a number", "{\"field\":\"city\",\"op\":\"eq\",\"value\":1}", "filter.value",
     JSONF_TYPE},
    {"text as an object", "{\"field\":\"city\",\"op\":\"contains\",\"value\":{\"a\":1}}",
     "filter.value", JSONF_TYPE},
    {"added_at not an object", "{\"added_at\":\"2026-01-01T00:00:00Z\"}", "filter.added_at",
     JSONF_TYPE},
    {"added_at unknown bound", "{\"added_at\":{\"gt\":\"2026-01-01T00:00:00Z\"}}",
     "filter.added_at", JSONF_UNKNOWN},
    {"added_at bad time", "{\"all\":[{\"added_at\":{\"gte\":\"yesterday\"}}]}",
     "filter.all[0].added_at.gte", JSONF_VALUE},
    {"added_at number", "{\"added_at\":{\"lt\":1700000000}}", "filter.added_at.lt", JSONF_TYPE},
    {"blocked as a string", "{\"blocked\":\"true\"}", "filter.blocked", JSONF_TYPE},
    {"blocked as 1", "{\"blocked\":1}", "filter.blocked", JSONF_TYPE},
    {"route with a quote", "{\"route\":\"a' OR '1\"}", "filter.route", JSONF_VALUE},
    {"route too long", "{\"route\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "filter.route",
     JSONF_TOO_LONG},
    {"within zero", "{\"last_message_within_s\":0}", "filter.last_message_within_s", JSONF_VALUE},
    {"within negative", "{\"last_message_within_s\":-5}", "filter.last_message_within_s",
     JSONF_VALUE},
    {"within huge", "{\"last_message_within_s\":9223372036854775807}",
     "filter.last_message_within_s", JSONF_VALUE},
    {"within a real", "{\"last_message_within_s\":1.5}", "filter.last_message_within_s",
     JSONF_TYPE},
    {"within a string", "{\"last_message_within_s\":\"60\"}", "filter.last_message_within_s",
     JSONF_TYPE},
    {"segment not a uuid", "{\"segment\":\"x' OR 1=1 --\"}", "filter.segment", JSONF_VALUE},
    {"segment unknown", "{\"segment\":\"99999999-9999-9999-9999-999999999999\"}", "filter.segment",
     JSONF_VALUE},
    {"cycle through saved segments",
     "{\"all\":[{\"blocked\":false},{\"segment\":\"" SEG_LOOP1 "\"}]}", "filter.all[1].segment",
     JSONF_VALUE},
    {"a saved segment gone bad is named at the reference",
     "{\"not\":{\"segment\":\"" SEG_BROKEN "\"}}", "filter.not.segment", JSONF_VALUE},
};

Test(seg_filter, bad_trees_are_refused_with_the_nodes_path)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct filter_sql q;
        struct jsonf_error err;
        int rc = compile_text(c->filter, &q, &err);
        cr_expect_eq(rc, -1, "%s: refused (got %d, sql %s)", c->name, rc, rc == 0 ? q.sql : "");
        if (rc == 0) {
            filter_sql_free(&q);
            continue;
        }
        cr_expect_str_eq(err.path, c->path, "%s: path (reason %s)", c->name, err.reason);
        cr_expect_eq(err.kind, c->kind, "%s: kind %d, want %d (%s)", c->name, err.kind, c->kind,
                     err.reason);
        cr_expect_null(q.sql, "%s: no SQL", c->name);
    }
}

Test(seg_filter, an_error_inside_a_saved_segment_tells_where_in_it)
{
    struct filter_sql q;
    struct jsonf_error err;
    cr_assert_eq(compile_text("{\"segment\":\"" SEG_BROKEN "\"}", &q, &err), -1);
    cr_expect_str_eq(err.path, "filter.segment");
    cr_expect(strstr(err.reason, "segments[" SEG_BROKEN "].filter.all[0].tag"), "%s", err.reason);
}

Test(seg_filter, uuid_form_is_checked)
{
    cr_expect(filter_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    cr_expect(filter_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    cr_expect_not(filter_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
    cr_expect_not(filter_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e0"));
    cr_expect_not(filter_uuid_valid("0f8fad5bxd9cb-469f-a165-70867728950e"));
    cr_expect_not(filter_uuid_valid(""));
}

Test(seg_filter, names_are_capped_in_characters_not_bytes)
{
    /* 64 three-byte characters: at the cap, so looked up (and unknown). */
    char name[64 * 3 + 1] = "";
    for (int i = 0; i < 64; i++)
        memcpy(name + i * 3, "\xe3\x81\x82", 4);
    json_t *t = json_pack("{s:s}", "tag", name);
    struct filter_sql q;
    struct jsonf_error err;
    cr_expect_eq(filter_compile_with(&catalog, t, "filter", 1, NULL, NOW_MS, &q, &err), -1);
    cr_expect_eq(err.kind, JSONF_VALUE, "%s", err.reason);
    json_decref(t);
}

static int cat_route(void *ctx, const char *code)
{
    (void)ctx;
    return strcmp(code, "ad1") == 0;
}

Test(seg_filter, routes_are_checked_when_the_catalog_knows_them)
{
    struct filter_catalog with_routes = catalog;
    with_routes.route = cat_route;
    struct filter_sql q;
    struct jsonf_error err;
    json_t *known = tree("{\"route\":\"ad1\"}");
    cr_expect_eq(filter_compile_with(&with_routes, known, "filter", 1, NULL, NOW_MS, &q, &err), 0);
    filter_sql_free(&q);
    json_decref(known);
    json_t *unknown = tree("{\"any\":[{\"route\":\"ad2\"}]}");
    cr_expect_eq(filter_compile_with(&with_routes, unknown, "filter", 1, NULL, NOW_MS, &q, &err),
                 -1);
    cr_expect_str_eq(err.path, "filter.any[0].route");
    json_decref(unknown);
}
