/* Unit tests for common/log: JSON escaping (quotes, control characters,
 * invalid UTF-8 as U+FFFD, truncation that never splits an escape or a
 * character), level parsing and filtering, and lines that stay one valid
 * JSON object whatever the caller passes. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "utest.h"

static size_t line_count(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* --- escaping ------------------------------------------------------------------ */

struct escape_case {
    const char *name;
    const char *in;
    const char *out;
};

static const struct escape_case escape_cases[] = {
    {"plain text", "hello world", "hello world"},
    {"empty", "", ""},
    {"double quote", "say \"hi\"", "say \\\"hi\\\""},
    {"backslash", "C:\\path", "C:\\\\path"},
    {"newline, tab, CR", "a\nb\tc\rd", "a\\u000ab\\u0009c\\u000dd"},
    {"other control characters", "\x01\x1f\x1b", "\\u0001\\u001f\\u001b"},
    {"DEL is legal JSON", "\x7f", "\x7f"},
    {"slash is left alone", "a/b", "a/b"},
    {"two-byte UTF-8", "caf\xc3\xa9", "caf\xc3\xa9"},
    {"three-byte UTF-8", "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"four-byte UTF-8", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    {"largest code point", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
};

/* Invalid UTF-8: each offending byte becomes one U+FFFD escape. */
static const struct escape_case escape_bad_utf8[] = {
    {"lone 0xff", "a\xff!", "a\\ufffd!"},
    {"lone 0xfe", "\xfe", "\\ufffd"},
    {"lone continuation byte", "\x80", "\\ufffd"},
    {"truncated two-byte at end", "a\xc3", "a\\ufffd"},
    {"truncated three-byte at end", "\xe6\x97", "\\ufffd\\ufffd"},
    {"lead byte then ASCII", "\xc3(", "\\ufffd("},
    {"overlong NUL (C0 80)", "\xc0\x80", "\\ufffd\\ufffd"},
    {"overlong slash (C1 AF)", "\xc1\xaf", "\\ufffd\\ufffd"},
    {"overlong three-byte (E0 80 AF)", "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},
    {"overlong four-byte (F0 80 80 AF)", "\xf0\x80\x80\xaf", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    {"UTF-16 surrogate (ED A0 80)", "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},
    {"above U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    {"F5 lead byte", "\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    {"Latin-1 text", "caf\xe9!", "caf\\ufffd!"},
};

static void escape_check(const struct escape_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char out[256];
        size_t w = log_json_escape(out, sizeof out, cases[i].in);
        cr_expect_str_eq(out, cases[i].out, "%s", cases[i].name);
        cr_expect_eq(w, strlen(out), "%s: return value is the length", cases[i].name);
    }
}

Test(log, escape_writes_valid_json_string_content)
{
    escape_check(escape_cases, sizeof escape_cases / sizeof escape_cases[0]);
}

Test(log, escape_replaces_invalid_utf8_with_ufffd)
{
    escape_check(escape_bad_utf8, sizeof escape_bad_utf8 / sizeof escape_bad_utf8[0]);
}

Test(log, escaped_text_parses_back_to_the_original)
{
    const char *in = "q\"b\\n\n\x01 \xe6\x97\xa5 \xf0\x9f\x98\x80";
    char json[256] = "\"";
    log_json_escape(json + 1, sizeof json - 2, in);
    size_t len = strlen(json);
    json[len] = '"';
    json[len + 1] = '\0';
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(v, "%s", json);
    cr_expect_str_eq(json_string_value(v), in);
    json_decref(v);
}

/* Truncation keeps whole escapes and whole characters, and the NUL. */
static const struct {
    const char *name;
    const char *in;
    size_t cap;
    const char *out;
} escape_truncate_cases[] = {
    {"ASCII cut", "abcdef", 4, "abc"},
    {"exact fit", "abc", 4, "abc"},
    {"quote escape not split", "a\"b", 3, "a"},
    {"quote escape fits", "a\"b", 4, "a\\\""},
    {"control escape not split", "a\n", 7, "a"},
    {"control escape fits", "a\n", 8, "a\\u000a"},
    {"UTF-8 character not split", "\xe6\x97\xa5\xe6\x9c\xac", 6, "\xe6\x97\xa5"},
    {"four-byte character not split", "x\xf0\x9f\x98\x80", 5, "x"},
    {"U+FFFD escape not split", "\xff", 6, ""},
    {"cap 1 leaves only the NUL", "abc", 1, ""},
};

Test(log, escape_truncates_without_splitting)
{
    for (size_t i = 0; i < sizeof escape_truncate_cases / sizeof escape_truncate_cases[0]; i++) {
        char out[64];
        memset(out, '#', sizeof out);
        size_t cap = escape_truncate_cases[i].cap;
        size_t w = log_json_escape(out, cap, escape_truncate_cases[i].in);
        cr_expect_str_eq(out, escape_truncate_cases[i].out, "%s", escape_truncate_cases[i].name);
        cr_expect_eq(w, strlen(escape_truncate_cases[i].out), "%s", escape_truncate_cases[i].name);
        cr_expect_eq(out[cap], '#', "%s: wrote past cap", escape_truncate_cases[i].name);
    }
}

Test(log, escape_handles_zero_cap_and_null)
{
    char out[4] = "###";
    cr_expect_eq(log_json_escape(out, 0, "abc"), 0);
    cr_expect_eq(out[0], '#', "cap 0 writes nothing");
    cr_expect_eq(log_json_escape(out, sizeof out, NULL), 0);
    cr_expect_str_eq(out, "");
}

/* --- levels --------------------------------------------------------------------- */

Test(log, level_parse_knows_four_names_in_any_case)
{
    const struct {
        const char *name;
        int level;
    } cases[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
        {"error", LOG_ERROR}, {"INFO", LOG_INFO}, {"Error", LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(log_level_parse(cases[i].name), cases[i].level, "%s", cases[i].name);
}

Test(log, level_parse_rejects_bad_input)
{
    const char *bad[] = {NULL, "", "warning", "err", "fatal", "trace", " info", "info ", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(log_level_parse(bad[i]), -1, "%s", bad[i] ? bad[i] : "NULL");
}

static void write_each_level(void *arg)
{
    (void)arg;
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
}

Test(log, lines_below_the_minimum_level_are_dropped)
{
    log_init("svc-a", LOG_WARN);
    char *out = utest_stderr_capture(write_each_level, NULL);
    cr_expect_eq(line_count(out), 2, "%s", out);
    cr_expect(strstr(out, "\"msg\":\"w\"") && strstr(out, "\"msg\":\"e\""), "%s", out);
    free(out);

    log_init("svc-a", LOG_DEBUG);
    out = utest_stderr_capture(write_each_level, NULL);
    cr_expect_eq(line_count(out), 4, "%s", out);
    free(out);
}

/* --- lines ---------------------------------------------------------------------- */

static void write_context(void *arg)
{
    (void)arg;
    log_warn("delivery \"failed\"\n", "tenant", "t-1", "event_id", NULL, "detail",
             "bad \xff byte\ttab", "k\"ey", "v");
}

Test(log, line_is_one_json_object_with_context_pairs)
{
    log_init("dispatcher", LOG_INFO);
    char *out = utest_stderr_capture(write_context, NULL);
    cr_assert_eq(line_count(out), 1, "%s", out);
    cr_expect_eq(out[strlen(out) - 1], '\n');

    json_error_t err;
    json_t *obj = json_loads(out, 0, &err);
    cr_assert_not_null(obj, "%s: %s", err.text, out);
    cr_expect(json_is_string(json_object_get(obj, "ts")));
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    cr_expect(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z', "ts %s", ts);
    cr_expect_str_eq(json_string_value(json_object_get(obj, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "svc")), "dispatcher");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "msg")), "delivery \"failed\"\n");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "tenant")), "t-1");
    cr_expect(json_is_null(json_object_get(obj, "event_id")), "NULL value is JSON null");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "detail")),
                     "bad \xef\xbf\xbd byte\ttab");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "k\"ey")), "v");
    json_decref(obj);
    free(out);
}

struct big_args {
    const char *value;
    int extra; /* add a pair after the big value */
};

static void write_big(void *arg)
{
    const struct big_args *a = arg;
    if (a->extra)
        log_info("big", "body", a->value, "request_id", "r-1");
    else
        log_info("big", "body", a->value);
}

Test(log, huge_value_is_truncated_to_one_valid_line)
{
    size_t len = 100000;
    char *big = malloc(len + 1);
    memset(big, 'x', len);
    big[len] = '\0';
    struct big_args args = {big, 0};
    char *out = utest_stderr_capture(write_big, &args);

    cr_expect_eq(line_count(out), 1);
    cr_expect_leq(strlen(out), 8192, "line of %zu bytes", strlen(out));
    json_t *obj = json_loads(out, 0, NULL);
    cr_assert_not_null(obj, "not JSON");
    const char *body = json_string_value(json_object_get(obj, "body"));
    cr_assert_not_null(body);
    cr_expect_gt(strlen(body), 8000, "most of the line is used");
    cr_expect(strspn(body, "x") == strlen(body));
    json_decref(obj);
    free(out);
    free(big);
}

/* Whatever the sizes, a line must stay valid JSON: sweep the value length
 * across the point where the line fills up, with a pair after it and with
 * escapes that take six bytes each. */
Test(log, line_stays_valid_json_at_every_truncation_point)
{
    char *big = malloc(8300);
    for (int escaped = 0; escaped < 2; escaped++) {
        size_t from = escaped ? 1300 : 8050, to = escaped ? 1400 : 8200;
        for (size_t len = from; len <= to; len++) {
            memset(big, escaped ? '\n' : 'y', len);
            big[len] = '\0';
            struct big_args args = {big, 1};
            char *out = utest_stderr_capture(write_big, &args);
            cr_expect_leq(strlen(out), 8192);
            json_t *obj = json_loads(out, 0, NULL);
            cr_expect_not_null(obj, "value of %zu %s: line is not JSON: ...%s", len,
                               escaped ? "newlines" : "bytes",
                               strlen(out) > 40 ? out + strlen(out) - 40 : out);
            json_decref(obj);
            free(out);
        }
    }
    free(big);
}
