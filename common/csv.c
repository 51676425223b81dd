/* RFC 4180 CSV writer and strict parser (csv.h). */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* --- writer ------------------------------------------------------------- */

/* Room for n more bytes; false (and failed) when out of memory. */
static bool out_reserve(struct csv_out *o, size_t n)
{
    if (o->failed)
        return false;
    if (o->len + n <= o->cap)
        return true;
    size_t want = o->cap ? o->cap : 4096;
    while (want < o->len + n)
        want *= 2;
    char *grown = realloc(o->data, want);
    if (!grown) {
        o->failed = true;
        return false;
    }
    o->data = grown;
    o->cap = want;
    return true;
}

static void out_put(struct csv_out *o, const char *s, size_t n)
{
    if (n == 0 || !out_reserve(o, n))
        return;
    memcpy(o->data + o->len, s, n);
    o->len += n;
}

void csv_out_bom(struct csv_out *o)
{
    out_put(o, CSV_BOM, sizeof CSV_BOM - 1);
}

static bool field_needs_quotes(const char *s, size_t len)
{
    if (len == 0)
        return false;
    if (s[0] == ' ' || s[len - 1] == ' ')
        return true;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
            return true;
    return false;
}

void csv_out_field(struct csv_out *o, const char *s, size_t len)
{
    if (o->in_row)
        out_put(o, ",", 1);
    o->in_row = true;
    if (!s || len == 0)
        return;
    if (!field_needs_quotes(s, len)) {
        out_put(o, s, len);
        return;
    }
    /* At worst every byte is a doubled quote, plus the two around. */
    if (!out_reserve(o, 2 * len + 2))
        return;
    char *w = o->data + o->len;
    *w++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            *w++ = '"';
        *w++ = s[i];
    }
    *w++ = '"';
    o->len = (size_t)(w - o->data);
}

void csv_out_cell(struct csv_out *o, const char *s)
{
    csv_out_field(o, s, s ? strlen(s) : 0);
}

void csv_out_raw(struct csv_out *o, const char *s, size_t len)
{
    out_put(o, s, len);
}

void csv_out_row_end(struct csv_out *o)
{
    out_put(o, "\r\n", 2);
    o->in_row = false;
}

void csv_out_reset(struct csv_out *o)
{
    o->len = 0;
    o->in_row = false;
    o->failed = false;
}

void csv_out_free(struct csv_out *o)
{
    free(o->data);
    memset(o, 0, sizeof *o);
}

/* --- parser ------------------------------------------------------------- */

int csv_parser_init(struct csv_parser *ps, const char *data, size_t len, size_t row_max)
{
    memset(ps, 0, sizeof *ps);
    ps->p = data;
    ps->end = data + len;
    ps->row_max = row_max ? row_max : CSV_ROW_MAX_DEFAULT;
    if (len >= 3 && memcmp(data, CSV_BOM, 3) == 0)
        ps->p += 3;
    /* Cell bytes never outnumber the record's bytes; one NUL per cell. */
    ps->buf = malloc(ps->row_max + CSV_CELLS_MAX + 2);
    ps->cells_cap = 64;
    ps->offs = malloc(ps->cells_cap * sizeof *ps->offs);
    if (!ps->buf || !ps->offs) {
        csv_parser_free(ps);
        return -1;
    }
    return 0;
}

void csv_parser_free(struct csv_parser *ps)
{
    free(ps->buf);
    free(ps->offs);
    ps->buf = NULL;
    ps->offs = NULL;
    ps->ncells = 0;
    ps->cells_cap = 0;
}

static int parse_fail(struct csv_parser *ps, enum csv_error e)
{
    ps->error = e;
    ps->ncells = 0;
    return -1;
}

/* Starts cell ps->ncells at write position w. */
static bool cell_begin(struct csv_parser *ps, size_t w)
{
    if (ps->ncells >= CSV_CELLS_MAX)
        return false;
    if (ps->ncells == ps->cells_cap) {
        size_t want = ps->cells_cap * 2;
        size_t *grown = realloc(ps->offs, want * sizeof *grown);
        if (!grown)
            return false;
        ps->offs = grown;
        ps->cells_cap = want;
    }
    ps->offs[ps->ncells] = w;
    return true;
}

int csv_parser_next(struct csv_parser *ps, size_t *ncells)
{
    if (ps->error != CSV_OK || !ps->buf)
        return -1;
    ps->ncells = 0;
    while (ps->p < ps->end && (*ps->p == '\r' || *ps->p == '\n'))
        ps->p++; /* blank lines */
    if (ps->p >= ps->end)
        return 0;
    ps->record++;
    const char *p = ps->p, *end = ps->end, *start = p;
    size_t w = 0;
    for (;;) {
        if (!cell_begin(ps, w))
            return parse_fail(ps, ps->ncells >= CSV_CELLS_MAX ? CSV_ERR_CELLS : CSV_ERR_MEMORY);
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end)
                    return parse_fail(ps, CSV_ERR_QUOTE);
                if ((size_t)(p - start) >= ps->row_max)
                    return parse_fail(ps, CSV_ERR_ROW_TOO_LONG);
                char c = *p;
                if (c == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        ps->buf[w++] = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (c == '\0')
                    return parse_fail(ps, CSV_ERR_NUL);
                ps->buf[w++] = c;
                p++;
            }
            if (p < end && *p != ',' && *p != '\r' && *p != '\n')
                return parse_fail(ps, CSV_ERR_QUOTE);
        } else {
            while (p < end && *p != ',' && *p != '\r' && *p != '\n') {
                if ((size_t)(p - start) >= ps->row_max)
                    return parse_fail(ps, CSV_ERR_ROW_TOO_LONG);
                if (*p == '"')
                    return parse_fail(ps, CSV_ERR_QUOTE);
                if (*p == '\0')
                    return parse_fail(ps, CSV_ERR_NUL);
                ps->buf[w++] = *p++;
            }
        }
        size_t off = ps->offs[ps->ncells];
        if (!utf8_valid(ps->buf + off, w - off))
            return parse_fail(ps, CSV_ERR_UTF8);
        ps->buf[w++] = '\0';
        ps->ncells++;
        if (p < end && *p == ',') {
            if ((size_t)(p - start) >= ps->row_max)
                return parse_fail(ps, CSV_ERR_ROW_TOO_LONG);
            p++;
            continue;
        }
        break;
    }
    /* The line end: CRLF, LF or a lone CR. */
    if (p < end && *p == '\r') {
        p++;
        if (p < end && *p == '\n')
            p++;
    } else if (p < end && *p == '\n') {
        p++;
    }
    ps->p = p;
    *ncells = ps->ncells;
    return 1;
}

const char *csv_parser_cell(const struct csv_parser *ps, size_t i, size_t *len)
{
    if (i >= ps->ncells) {
        if (len)
            *len = 0;
        return "";
    }
    const char *s = ps->buf + ps->offs[i];
    if (len)
        *len = strlen(s);
    return s;
}

const char *csv_error_str(enum csv_error e)
{
    switch (e) {
    case CSV_OK:
        return "no error";
    case CSV_ERR_QUOTE:
        return "a quote is not closed, or a field has a quote it does not start with, or text "
               "follows a closing quote";
    case CSV_ERR_ROW_TOO_LONG:
        return "the row is over the size cap";
    case CSV_ERR_UTF8:
        return "the row is not valid UTF-8";
    case CSV_ERR_NUL:
        return "the row holds a NUL byte";
    case CSV_ERR_CELLS:
        return "the row has too many cells";
    case CSV_ERR_MEMORY:
        return "out of memory";
    }
    return "unknown error";
}
