/* POST /v1/channels/{c}/friends/import.csv (csv_routes.h): reads the whole
 * CSV, checks every row (the header's tags and fields exist, each user is a
 * friend of the channel and appears once, each cell fits its column), and
 * either answers 422 listing what is wrong and changes nothing, or applies
 * everything in one transaction (csv_apply.c). */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include <jansson.h>

#include "admin_api.h"
#include "csv.h"
#include "csv_import.h"
#include "csv_routes.h"
#include "db.h"
#include "log.h"
#include "outbox_relay.h"
#include "pgarray.h"
#include "tags.h"

/* Cells (rows times columns) an import may hold. */
#define IMPORT_CELLS_MAX 4000000
/* Errors kept while checking; the answer lists the first SEG_CSV_ERRORS_MAX. */
#define IMPORT_ERRORS_KEPT 10000
/* User ids per lookup statement. */
#define IMPORT_LOOKUP_BATCH 5000

/* Imports running now (SEG_CSV_IMPORTS_MAX). */
static atomic_int imports_running;

struct imp_error {
    long row; /* 0: the header */
    long seq; /* the order found, for a stable sort */
    char field[sizeof((struct imp_col *)0)->header];
    const char *message; /* static */
};

struct checker {
    struct imp imp;
    struct imp_error *errors;
    size_t nerrors; /* kept */
    long total;     /* found */
    size_t rows_cap;
};

static void error_add(struct checker *k, long row, const char *field, const char *message)
{
    k->total++;
    if (k->nerrors >= IMPORT_ERRORS_KEPT)
        return;
    if (!k->errors) {
        k->errors = calloc(IMPORT_ERRORS_KEPT, sizeof *k->errors);
        if (!k->errors)
            return;
    }
    struct imp_error *e = &k->errors[k->nerrors];
    e->row = row;
    e->seq = k->total;
    snprintf(e->field, sizeof e->field, "%s", field);
    e->message = message;
    k->nerrors++;
}

static void checker_free(struct checker *k)
{
    struct imp *imp = &k->imp;
    for (size_t i = 0; i < imp->nrows; i++) {
        free(imp->user_id[i]);
        for (int c = 0; c < imp->ncols; c++) {
            char *cell = imp->cell[i * (size_t)imp->ncols + (size_t)c];
            if (imp->cols[c].kind == IMP_FIELD)
                free(cell);
        }
    }
    for (int c = 0; c < imp->ncols; c++)
        field_def_clear(&imp->cols[c].def);
    free(imp->user_id);
    free(imp->friend_id);
    free(imp->cell);
    free(k->errors);
}

/* True for text/csv, with any parameters but a charset other than UTF-8. */
static bool content_type_csv(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "text/csv", 8) != 0)
        return false;
    const char *p = ct + 8;
    while (*p == ' ')
        p++;
    if (*p == '\0')
        return true;
    if (*p != ';')
        return false;
    const char *cs = strcasestr(p, "charset=");
    if (!cs)
        return true;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0;
}

/* Reads the header into imp->cols. true when good; false after answering
 * 400. Unknown tags and fields are row 0 errors, not a 400. -1 in *dberr
 * on a database error. */
static bool header_read(struct seg_request *r, struct checker *k, struct csv_parser *ps, int *dberr)
{
    size_t n = 0;
    int rc = csv_parser_next(ps, &n);
    if (rc == 0) {
        httpd_respond_error(r->resp, 400, "missing_header",
                            "the body has no header row (user_id,tag:NAME,field:NAME,...)", "body");
        return false;
    }
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "the header row: %s", csv_error_str(ps->error));
        httpd_respond_error(r->resp, 400, "invalid_csv", msg, "body");
        return false;
    }
    if (strcmp(csv_parser_cell(ps, 0, NULL), "user_id") != 0) {
        httpd_respond_error(r->resp, 400, "missing_header",
                            "the first column of the header row must be user_id", "header");
        return false;
    }
    if (n - 1 > SEG_CSV_COLUMNS_MAX - 1) {
        httpd_respond_error(r->resp, 400, "invalid_column", "more than 64 columns", "header");
        return false;
    }
    struct imp *imp = &k->imp;
    for (size_t i = 1; i < n; i++) {
        size_t len;
        const char *h = csv_parser_cell(ps, i, &len);
        struct imp_col *col = &imp->cols[imp->ncols];
        char msg[sizeof col->header + 64];
        bool tag = strncmp(h, "tag:", 4) == 0, field = strncmp(h, "field:", 6) == 0;
        bool ok =
            (tag && tag_name_valid(h + 4, len - 4)) || (field && field_name_valid(h + 6, len - 6));
        for (int c = 0; ok && c < imp->ncols; c++)
            if (strcmp(imp->cols[c].header, h) == 0) {
                snprintf(msg, sizeof msg, "column listed twice: \"%s\"", h);
                httpd_respond_error(r->resp, 400, "invalid_column", msg, "header");
                return false;
            }
        if (!ok) {
            snprintf(msg, sizeof msg, "unknown column \"%.100s\" (user_id, tag:NAME or field:NAME)",
                     h);
            httpd_respond_error(r->resp, 400, "invalid_column", msg, "header");
            return false;
        }
        snprintf(col->header, sizeof col->header, "%s", h);
        col->kind = tag ? IMP_TAG : IMP_FIELD;
        col->name = col->header + (tag ? 4 : 6);
        imp->ncols++;
        if (tag) {
            col->tag_id = tag_lookup(r->db, r->channel_id, col->name);
            col->known = col->tag_id > 0;
        } else {
            int found = field_lookup(r->db, r->channel_id, col->name, &col->def);
            col->known = found == 1;
            if (found < 0)
                col->tag_id = -1;
        }
        if (col->tag_id < 0) {
            *dberr = -1;
            return false;
        }
        if (!col->known)
            error_add(k, 0, col->header, tag ? "no such tag" : "no such field");
    }
    return true;
}

/* Makes room for one more row. */
static bool rows_grow(struct checker *k)
{
    struct imp *imp = &k->imp;
    if (imp->nrows < k->rows_cap)
        return true;
    size_t want = k->rows_cap ? k->rows_cap * 2 : 1024;
    char **u = realloc(imp->user_id, want * sizeof *u);
    if (!u)
        return false;
    imp->user_id = u;
    char **cells = realloc(imp->cell, want * (size_t)(imp->ncols ? imp->ncols : 1) * sizeof *cells);
    if (!cells)
        return false;
    imp->cell = cells;
    k->rows_cap = want;
    return true;
}

/* Reads and checks one row's cells (record n cells). false when out of memory. */
static bool row_read(struct checker *k, struct csv_parser *ps, size_t n, struct field_value *fv)
{
    struct imp *imp = &k->imp;
    long row = (long)imp->nrows + 1;
    size_t base = imp->nrows * (size_t)imp->ncols;
    size_t ulen;
    const char *user = csv_parser_cell(ps, 0, &ulen);
    if (n != (size_t)imp->ncols + 1)
        error_add(k, row, "", "the row does not have as many cells as the header");
    if (ulen == 0)
        error_add(k, row, "user_id", "is empty");
    else if (ulen > SEG_ID_MAX)
        error_add(k, row, "user_id", "is over 64 bytes");
    imp->user_id[imp->nrows] = strdup(ulen <= SEG_ID_MAX ? user : "");
    if (!imp->user_id[imp->nrows])
        return false;
    for (int c = 0; c < imp->ncols; c++) {
        struct imp_col *col = &imp->cols[c];
        const char *cell = (size_t)c + 1 < n ? csv_parser_cell(ps, (size_t)c + 1, NULL) : "";
        char *kept = NULL;
        if (col->kind == IMP_TAG) {
            if (strcmp(cell, "1") == 0)
                kept = (char *)"1";
            else if (strcmp(cell, "0") == 0)
                kept = (char *)"0";
            else if (*cell)
                error_add(k, row, col->header, "must be 1 (add), 0 (remove) or empty (leave)");
        } else if (*cell && col->known) {
            const char *why = NULL;
            if (field_value_from_text(&col->def, cell, fv, &why) != 0)
                error_add(k, row, col->header, why ? why : "is not a valid value");
            else if (!(kept = strdup(fv->text)))
                return false;
        }
        imp->cell[base + (size_t)c] = kept;
    }
    imp->nrows++;
    return true;
}

static int user_cmp(const void *a, const void *b, void *users)
{
    char **u = users;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(u[ia], u[ib]);
    return c ? c : (ia > ib) - (ia < ib);
}

/* Each user once: a repeat is an error on its later rows. */
static bool users_check_repeats(struct checker *k)
{
    struct imp *imp = &k->imp;
    size_t *order = malloc((imp->nrows ? imp->nrows : 1) * sizeof *order);
    if (!order)
        return false;
    for (size_t i = 0; i < imp->nrows; i++)
        order[i] = i;
    qsort_r(order, imp->nrows, sizeof *order, user_cmp, imp->user_id);
    for (size_t i = 1; i < imp->nrows; i++)
        if (imp->user_id[order[i]][0] &&
            strcmp(imp->user_id[order[i]], imp->user_id[order[i - 1]]) == 0)
            error_add(k, (long)order[i] + 1, "user_id", "repeats an earlier row's user");
    free(order);
    return true;
}

/* Resolves every user to its friend id, in batches; an unknown one is an
 * error. 0, or -1 on a database error. */
static int users_resolve(struct seg_request *r, struct checker *k)
{
    struct imp *imp = &k->imp;
    imp->friend_id = calloc(imp->nrows ? imp->nrows : 1, sizeof *imp->friend_id);
    if (!imp->friend_id)
        return -1;
    for (size_t from = 0; from < imp->nrows; from += IMPORT_LOOKUP_BATCH) {
        size_t to =
            from + IMPORT_LOOKUP_BATCH < imp->nrows ? from + IMPORT_LOOKUP_BATCH : imp->nrows;
        struct pgarray users;
        pgarray_init(&users, PGARRAY_TEXT_OID);
        for (size_t i = from; i < to; i++)
            pgarray_add_text(&users, imp->user_id[i]);
        int len = 0;
        const char *arr = pgarray_finish(&users, &len);
        const char *values[] = {r->channel_id, arr};
        const int lengths[] = {0, len};
        const int binary[] = {0, 1};
        struct db_result *res = NULL;
        enum db_status st =
            arr ? db_execv(r->db,
                           "SELECT x.n, f.id FROM unnest($2::text[]) WITH ORDINALITY AS x(u, n) "
                           "JOIN friends f ON f.channel_id = $1 AND f.user_id = x.u",
                           2, values, lengths, binary, false, &res)
                : DB_FATAL;
        pgarray_free(&users);
        if (st != DB_OK)
            return -1;
        for (int i = 0; i < db_result_rows(res); i++) {
            long long n = strtoll(db_result_value(res, i, 0), NULL, 10);
            if (n >= 1 && (size_t)n <= to - from)
                imp->friend_id[from + (size_t)n - 1] =
                    strtoll(db_result_value(res, i, 1), NULL, 10);
        }
        db_result_free(&res);
        for (size_t i = from; i < to; i++)
            if (imp->friend_id[i] == 0 && imp->user_id[i][0])
                error_add(k, (long)i + 1, "user_id", "no such friend in this channel");
    }
    return 0;
}

static int error_cmp(const void *a, const void *b)
{
    const struct imp_error *x = a, *y = b;
    if (x->row != y->row)
        return (x->row > y->row) - (x->row < y->row);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* 422 with the first errors, by row. */
static void respond_rows(struct seg_request *r, struct checker *k)
{
    qsort(k->errors, k->nerrors, sizeof *k->errors, error_cmp);
    json_t *rows = json_array();
    for (size_t i = 0; i < k->nerrors && i < SEG_CSV_ERRORS_MAX; i++)
        json_array_append_new(rows, json_pack("{s:I,s:s,s:s}", "row", (json_int_t)k->errors[i].row,
                                              "field", k->errors[i].field, "message",
                                              k->errors[i].message));
    char msg[160];
    snprintf(msg, sizeof msg, "%ld problem%s in the file; nothing was applied", k->total,
             k->total == 1 ? "" : "s");
    json_t *body =
        json_pack("{s:{s:s,s:s,s:s},s:o,s:I}", "error", "code", "invalid_rows", "message", msg,
                  "field", "body", "rows", rows, "errors", (json_int_t)k->total);
    admin_api_respond_json(r->resp, 422, body);
}

/* Reads and checks the body. true with k ready to apply or listing errors;
 * false after answering. */
static bool import_check(struct seg_request *r, struct checker *k, const char *body, size_t len)
{
    struct csv_parser ps;
    if (csv_parser_init(&ps, body, len, SEG_CSV_ROW_MAX) != 0) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return false;
    }
    int dberr = 0;
    bool ok = header_read(r, k, &ps, &dberr);
    struct field_value *fv = ok ? malloc(sizeof *fv) : NULL;
    if (ok && !fv) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        ok = false;
    }
    size_t n = 0;
    int rc = 0;
    while (ok && (rc = csv_parser_next(&ps, &n)) == 1) {
        if (k->imp.nrows >= SEG_CSV_IMPORT_ROWS_MAX ||
            (k->imp.nrows + 1) * (size_t)(k->imp.ncols + 1) > IMPORT_CELLS_MAX) {
            httpd_respond_error(r->resp, 413, "body_too_large",
                                "over 500000 rows or 4000000 cells; split the file", "body");
            ok = false;
        } else if (!rows_grow(k) || !row_read(k, &ps, n, fv)) {
            httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
            ok = false;
        }
    }
    if (ok && rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "row %ld: %s", ps.record - 1, csv_error_str(ps.error));
        httpd_respond_error(r->resp, 400, "invalid_csv", msg, "body");
        ok = false;
    }
    free(fv);
    csv_parser_free(&ps);
    if (dberr)
        seg_respond_db_error(r, "csv import header");
    if (!ok)
        return false;
    if (!users_check_repeats(k)) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return false;
    }
    if (users_resolve(r, k) != 0) {
        seg_respond_db_error(r, "csv import users");
        return false;
    }
    return true;
}

static void import_apply(struct seg_request *r, struct checker *k)
{
    uuid_t uu;
    char causation[48];
    uuid_generate_random(uu);
    memcpy(causation, "csv-import:", 11);
    uuid_unparse_lower(uu, causation + 11);
    struct imp_result res;
    if (db_begin(r->db) != DB_OK ||
        csv_import_apply(r->db, r->claims->tenant, r->channel_id, causation, &k->imp, &res) != 0 ||
        db_commit(r->db) != DB_OK) {
        seg_respond_db_error(r, "csv import apply");
        db_rollback(r->db);
        return;
    }
    if (res.tags_added + res.tags_removed + res.fields_changed > 0)
        outbox_relay_kick(r->app->relay);
    char rows[24], changes[24];
    snprintf(rows, sizeof rows, "%zu", k->imp.nrows);
    snprintf(changes, sizeof changes, "%ld",
             res.tags_added + res.tags_removed + res.fields_changed);
    log_info("csv import applied", "channel_id", r->channel_id, "rows", rows, "changes", changes,
             "causation_id", causation);
    admin_api_respond_json(r->resp, 200,
                           json_pack("{s:I,s:I,s:I,s:I}", "rows", (json_int_t)k->imp.nrows,
                                     "tags_added", (json_int_t)res.tags_added, "tags_removed",
                                     (json_int_t)res.tags_removed, "fields_changed",
                                     (json_int_t)res.fields_changed));
}

bool csv_route_import(struct seg_request *r)
{
    static const struct admin_method methods[] = {{"POST", "admin"}};
    if (strcmp(r->rest, "friends/import.csv") != 0)
        return false;
    if (admin_api_route(r->claims, r->req, r->resp, methods, 1) < 0)
        return true;
    if (!content_type_csv(httpd_request_header(r->req, "Content-Type"))) {
        httpd_respond_error(r->resp, 415, "unsupported_media_type",
                            "send the body as text/csv (UTF-8)", "Content-Type");
        return true;
    }
    size_t len = 0;
    const char *body = httpd_request_body(r->req, &len);
    if (len > SEG_CSV_IMPORT_MAX) {
        httpd_respond_error(r->resp, 413, "body_too_large", "the CSV is over 16 MiB", "body");
        return true;
    }
    if (atomic_fetch_add(&imports_running, 1) >= SEG_CSV_IMPORTS_MAX) {
        atomic_fetch_sub(&imports_running, 1);
        httpd_response_header(r->resp, "Retry-After", "5");
        httpd_respond_error(r->resp, 503, "busy", "a CSV import is running; try again later", NULL);
        return true;
    }
    struct checker *k = calloc(1, sizeof *k);
    if (!k) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
    } else {
        if (import_check(r, k, body, len)) {
            if (k->total > 0)
                respond_rows(r, k);
            else
                import_apply(r, k);
        }
        checker_free(k);
        free(k);
    }
    atomic_fetch_sub(&imports_running, 1);
    return true;
}
