/* Unit tests for common/csv (the CSV of segmentation's export and import):
 * the writer quotes what needs it and ends rows with CRLF, the parser reads
 * quotes, doubled quotes, commas and line breaks inside quotes, CRLF, LF and
 * a leading BOM, and every bad input in the table is refused with its
 * error and record number. What the writer writes, the parser reads back. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

TestSuite(seg_csv, .timeout = 10);

/* The writer's output as a NUL-terminated string (copied). */
static char *out_text(struct csv_out *o)
{
    char *s = malloc(o->len + 1);
    cr_assert_not_null(s);
    memcpy(s, o->data ? o->data : "", o->len);
    s[o->len] = '\0';
    return s;
}

Test(seg_csv, writer_quotes_only_fields_that_need_it_and_ends_rows_with_crlf)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"two\nlines", "\"two\nlines\""},
        {"cr\rhere", "\"cr\rhere\""},
        {"crlf\r\n", "\"crlf\r\n\""},
        {" padded ", "\" padded \""},
        {"\"", "\"\"\"\""},
        {"日本語", "日本語"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct csv_out o = {0};
        csv_out_cell(&o, cases[i].in);
        char *got = out_text(&o);
        cr_expect_str_eq(got, cases[i].out, "case %zu", i);
        free(got);
        csv_out_free(&o);
    }
}

Test(seg_csv, writer_separates_fields_and_rows_and_writes_a_bom_on_request)
{
    struct csv_out o = {0};
    csv_out_bom(&o);
    csv_out_cell(&o, "user_id");
    csv_out_cell(&o, "tags");
    csv_out_row_end(&o);
    csv_out_cell(&o, "U1");
    csv_out_cell(&o, NULL);
    csv_out_cell(&o, "x");
    csv_out_row_end(&o);
    char *got = out_text(&o);
    cr_expect_str_eq(got, "\xEF\xBB\xBFuser_id,tags\r\nU1,,x\r\n");
    free(got);
    csv_out_reset(&o);
    cr_expect_eq(o.len, 0);
    csv_out_cell(&o, "again");
    csv_out_row_end(&o);
    got = out_text(&o);
    cr_expect_str_eq(got, "again\r\n", "a reset starts a fresh row");
    free(got);
    csv_out_free(&o);
}

/* Parses text and writes every record as "cell|cell;" into out. Returns
 * the parser's result for the last call (0 end, -1 error). */
static int parse_all(const char *text, size_t len, size_t row_max, char *out, size_t cap,
                     struct csv_parser *ps)
{
    cr_assert_eq(csv_parser_init(ps, text, len, row_max), 0);
    size_t n, used = 0;
    int rc;
    out[0] = '\0';
    while ((rc = csv_parser_next(ps, &n)) == 1) {
        for (size_t i = 0; i < n; i++) {
            size_t clen;
            const char *c = csv_parser_cell(ps, i, &clen);
            cr_assert_lt(used + clen + 2, cap);
            memcpy(out + used, c, clen);
            used += clen;
            out[used++] = i + 1 < n ? '|' : ';';
        }
        out[used] = '\0';
    }
    return rc;
}

Test(seg_csv, parser_reads_quotes_escapes_and_line_breaks_inside_quotes)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a,b,c\r\n1,2,3\r\n", "a|b|c;1|2|3;"},
        {"a,b\n1,2\n", "a|b;1|2;"},
        {"a,b\n1,2", "a|b;1|2;"},
        {"\xEF\xBB\xBFuser_id,x\r\nU1,1\r\n", "user_id|x;U1|1;"},
        {"\"a,b\",c\r\n", "a,b|c;"},
        {"\"say \"\"hi\"\"\",x\n", "say \"hi\"|x;"},
        {"\"two\r\nlines\",x\r\nnext,y\r\n", "two\r\nlines|x;next|y;"},
        {"\"lf\nonly\"\n", "lf\nonly;"},
        {"a,,\n", "a||;"},
        {",\n", "|;"},
        {"\"\",x\n", "|x;"},
        {"a\r\n\r\n\nb\r\n", "a;b;"},
        {"a\rb\r", "a;b;"},
        {"日本,語\n", "日本|語;"},
        {"\"\"\"\"\n", "\";"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct csv_parser ps;
        char out[512];
        int rc = parse_all(cases[i].in, strlen(cases[i].in), 0, out, sizeof out, &ps);
        cr_expect_eq(rc, 0, "case %zu: %s", i, csv_error_str(ps.error));
        cr_expect_str_eq(out, cases[i].out, "case %zu", i);
        csv_parser_free(&ps);
    }
}

Test(seg_csv, bad_input_is_refused_with_its_error_and_record_number)
{
    static const struct {
        const char *name;
        const char *in;
        size_t len; /* 0: strlen */
        size_t row_max;
        enum csv_error error;
        long record;
    } cases[] = {
        {"a quote left open", "a,b\n\"open,x\n", 0, 0, CSV_ERR_QUOTE, 2},
        {"a quote left open at the very end", "a\n\"", 0, 0, CSV_ERR_QUOTE, 2},
        {"a quote inside an unquoted field", "a,b\nx\"y,z\n", 0, 0, CSV_ERR_QUOTE, 2},
        {"text after a closing quote", "\"a\"b,c\n", 0, 0, CSV_ERR_QUOTE, 1},
        {"a row over the cap", "ok\n0123456789abcdef\n", 0, 10, CSV_ERR_ROW_TOO_LONG, 2},
        {"a quoted row over the cap", "ok\n\"0123456789,abcdef\"\n", 0, 10, CSV_ERR_ROW_TOO_LONG,
         2},
        {"commas past the cap", "ok\n,,,,,,,,,,,,,,,,,,\n", 0, 10, CSV_ERR_ROW_TOO_LONG, 2},
        {"invalid UTF-8", "a\n\xff\xfe,x\n", 0, 0, CSV_ERR_UTF8, 2},
        {"an overlong UTF-8 sequence", "\xC0\xAF\n", 0, 0, CSV_ERR_UTF8, 1},
        {"a truncated UTF-8 sequence", "x,\xE6\x97\n", 0, 0, CSV_ERR_UTF8, 1},
        {"invalid UTF-8 inside quotes", "\"\xed\xa0\x80\"\n", 0, 0, CSV_ERR_UTF8, 1},
        {"a NUL byte", "a\nb\0c\n", 6, 0, CSV_ERR_NUL, 2},
        {"a NUL byte inside quotes", "\"b\0c\"\n", 6, 0, CSV_ERR_NUL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct csv_parser ps;
        char out[512];
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        int rc = parse_all(cases[i].in, len, cases[i].row_max, out, sizeof out, &ps);
        cr_expect_eq(rc, -1, "%s: accepted", cases[i].name);
        cr_expect_eq(ps.error, cases[i].error, "%s: got %s", cases[i].name,
                     csv_error_str(ps.error));
        cr_expect_eq(ps.record, cases[i].record, "%s: record %ld", cases[i].name, ps.record);
        cr_expect_eq(csv_parser_next(&ps, &(size_t){0}), -1, "%s: the parser stays in error",
                     cases[i].name);
        csv_parser_free(&ps);
    }
}

Test(seg_csv, a_row_exactly_at_the_cap_is_accepted)
{
    struct csv_parser ps;
    char out[64];
    cr_expect_eq(parse_all("0123456789\r\n", 12, 10, out, sizeof out, &ps), 0);
    cr_expect_str_eq(out, "0123456789;");
    csv_parser_free(&ps);
}

Test(seg_csv, too_many_cells_are_refused)
{
    size_t n = CSV_CELLS_MAX + 1;
    char *text = malloc(n + 2);
    cr_assert_not_null(text);
    memset(text, ',', n);
    text[n] = '\n';
    text[n + 1] = '\0';
    struct csv_parser ps;
    cr_assert_eq(csv_parser_init(&ps, text, n + 1, 0), 0);
    size_t cells;
    cr_expect_eq(csv_parser_next(&ps, &cells), -1);
    cr_expect_eq(ps.error, CSV_ERR_CELLS);
    csv_parser_free(&ps);
    free(text);
}

Test(seg_csv, what_the_writer_writes_the_parser_reads_back)
{
    static const char *const fields[] = {
        "U1", "", "a,b", "say \"hi\"", "line\r\nbreak", "lf\n", " lead", "trail ", "\"", "日本語",
    };
    size_t nf = sizeof fields / sizeof fields[0];
    struct csv_out o = {0};
    csv_out_bom(&o);
    for (int row = 0; row < 3; row++) {
        for (size_t i = 0; i < nf; i++)
            csv_out_cell(&o, fields[i]);
        csv_out_row_end(&o);
    }
    cr_assert(!o.failed);
    struct csv_parser ps;
    cr_assert_eq(csv_parser_init(&ps, o.data, o.len, 0), 0);
    size_t n;
    int rows = 0;
    while (csv_parser_next(&ps, &n) == 1) {
        cr_assert_eq(n, nf);
        for (size_t i = 0; i < nf; i++)
            cr_expect_str_eq(csv_parser_cell(&ps, i, NULL), fields[i], "row %d cell %zu", rows, i);
        rows++;
    }
    cr_expect_eq(ps.error, CSV_OK);
    cr_expect_eq(rows, 3);
    csv_parser_free(&ps);
    csv_out_free(&o);
}
