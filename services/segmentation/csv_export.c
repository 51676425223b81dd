/* GET /v1/channels/{c}/friends.csv (csv_routes.h): the chosen columns of
 * everyone, or of a saved segment, streamed in keyset pages. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin_api.h"
#include "csv.h"
#include "csv_routes.h"
#include "db.h"
#include "db_pool.h"
#include "fields.h"
#include "filter.h"
#include "log.h"
#include "tags.h"

/* The `columns` query argument's bytes. */
#define EXPORT_COLUMNS_ARG_MAX 4096
#define EXPORT_DEFAULT_COLUMNS "user_id,display_name,added_at,blocked,route,tags"
/* The SQL of a page, columns and filter included. */
#define EXPORT_SQL_MAX (64 * 1024)
/* Parameters before the columns' own: $1 channel, $2 last id, $3 limit. */
#define EXPORT_FIXED_PARAMS 3

/* Exports streaming now (SEG_CSV_EXPORTS_MAX). */
static atomic_int exports_running;

/* What a column reads; each is one expression of the page's SELECT. */
static const struct {
    const char *name;
    const char *sql;
} basic_columns[] = {
    {"user_id", "f.user_id"},
    {"display_name", "f.display_name"},
    {"added_at", "to_char(f.added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"},
    {"blocked", "CASE WHEN f.blocked THEN '1' ELSE '0' END"},
    {"route", "f.route"},
    /* The tag ids ("{3,7}"); export_tags_cell writes the names sorted,
     * joined by '/', which a tag name cannot contain. Names from a map of
     * the channel's tags cost half the page's time of a join per row. */
    {"tags", "ARRAY(SELECT tag_id FROM friend_tags WHERE friend_id = f.id)::text"},
};

/* A field's value in the text form fields.h uses, from friend_fields. */
static const char *const field_expr[] = {
    /* text */ "text_value",
    /* number */ "number_value::text",
    /* date */ "to_char(date_value, 'YYYY-MM-DD')",
    /* datetime, as fields.c prints it */
    "CASE WHEN extract(milliseconds FROM time_value)::numeric % 1000 = 0 "
    "THEN to_char(time_value AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "ELSE to_char(time_value AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END",
    /* choice */ "text_value",
};

/* One export in flight: owns its pool connection until export_free. */
struct export
{
    struct db_pool *pool;
    struct db *db;
    char channel_id[SEG_ID_MAX + 1];
    char *sql;
    char **params; /* [0] channel, [1] last id (rewritten per page), [2] limit, then the
                      columns' and the filter's */
    int nparams;
    char last_id[24];
    int ncolumns;
    char *header[SEG_CSV_COLUMNS_MAX];
    bool bom;
    bool header_sent;
    bool done;
    struct csv_out out;
    size_t sent; /* of out */
    long rows;
    int tags_col;   /* the `tags` column's index, or -1 */
    int tags_loads; /* reloads after a miss (one per page at most) */
    /* The channel's tags by id, each with its rank in name order. */
    struct export_tag *tags;
    size_t ntags;
    char **names_by_rank;
    size_t *ranks; /* scratch: one row's tags, ntags at most */
    struct csv_out cell;
};

struct export_tag {
    int64_t id;
    size_t rank;
};

static void export_tags_clear(struct export *e)
{
    for (size_t i = 0; i < e->ntags; i++)
        free(e->names_by_rank[i]);
    free(e->names_by_rank);
    free(e->tags);
    free(e->ranks);
    e->names_by_rank = NULL;
    e->tags = NULL;
    e->ranks = NULL;
    e->ntags = 0;
}

static int tag_by_id(const void *a, const void *b)
{
    const struct export_tag *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* (Re)loads the channel's tags. 0, or -1 on a database error or out of
 * memory. */
static int export_tags_load(struct export *e)
{
    export_tags_clear(e);
    struct db_result *res = NULL;
    const char *params[] = {e->channel_id};
    if (db_exec(e->db, "SELECT id, name FROM tags WHERE channel_id = $1 ORDER BY name, id", 1,
                params, &res) != DB_OK)
        return -1;
    size_t n = (size_t)db_result_rows(res);
    e->tags = calloc(n ? n : 1, sizeof *e->tags);
    e->names_by_rank = calloc(n ? n : 1, sizeof *e->names_by_rank);
    e->ranks = calloc(n ? n : 1, sizeof *e->ranks);
    int rc = e->tags && e->names_by_rank && e->ranks ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        e->tags[i].id = strtoll(db_result_value(res, (int)i, 0), NULL, 10);
        e->tags[i].rank = i;
        e->names_by_rank[i] = strdup(db_result_value(res, (int)i, 1));
        e->ntags = i + 1;
        if (!e->names_by_rank[i])
            rc = -1;
    }
    db_result_free(&res);
    if (rc == 0)
        qsort(e->tags, e->ntags, sizeof *e->tags, tag_by_id);
    return rc;
}

static int rank_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Writes the names of the tag ids in ids ("{3,7}") sorted, joined by '/'.
 * *missing is set when an id is not in the map (a tag made since it was
 * loaded). */
static void export_tags_cell(struct export *e, const char *ids, bool *missing)
{
    size_t n = 0;
    for (const char *p = ids; *p;) {
        if (*p < '0' || *p > '9') {
            p++;
            continue;
        }
        char *end;
        struct export_tag key = {.id = strtoll(p, &end, 10)};
        p = end;
        const struct export_tag *t = bsearch(&key, e->tags, e->ntags, sizeof *e->tags, tag_by_id);
        if (!t)
            *missing = true;
        else if (n < e->ntags)
            e->ranks[n++] = t->rank;
    }
    qsort(e->ranks, n, sizeof *e->ranks, rank_cmp);
    csv_out_reset(&e->cell);
    for (size_t i = 0; i < n; i++) {
        const char *name = e->names_by_rank[e->ranks[i]];
        if (i > 0)
            csv_out_raw(&e->cell, "/", 1);
        csv_out_raw(&e->cell, name, strlen(name));
    }
    csv_out_field(&e->out, e->cell.data, e->cell.len);
}

static void export_free(void *ctx)
{
    struct export *e = ctx;
    if (!e)
        return;
    if (!e->done)
        log_info("csv export ended before its last row", "channel_id", e->channel_id);
    db_pool_release(e->pool, &e->db);
    for (int i = 0; i < e->nparams; i++)
        free(e->params[i]);
    free(e->params);
    for (int i = 0; i < e->ncolumns; i++)
        free(e->header[i]);
    free(e->sql);
    csv_out_free(&e->out);
    export_tags_clear(e);
    csv_out_free(&e->cell);
    free(e);
    atomic_fetch_sub(&exports_running, 1);
}

/* Runs one page into e->out. 0, or -1 on a database error. */
static int export_page(struct export *e)
{
    struct db_result *res = NULL;
    e->params[1] = e->last_id;
    enum db_status st = db_exec(e->db, e->sql, e->nparams, (const char *const *)e->params, &res);
    e->params[1] = NULL;
    if (st != DB_OK) {
        log_error("csv export page failed", "channel_id", e->channel_id, "error",
                  db_error_message(e->db));
        return -1;
    }
    int rows = db_result_rows(res);
    csv_out_reset(&e->out);
    e->sent = 0;
    bool missing = false;
    if (e->tags_col >= 0 && !e->tags && export_tags_load(e) != 0) {
        db_result_free(&res);
        return -1;
    }
    for (int i = 0; i < rows; i++) {
        for (int c = 0; c < e->ncolumns; c++) {
            if (c == e->tags_col)
                export_tags_cell(e, db_result_value(res, i, c + 1), &missing);
            else if (db_result_isnull(res, i, c + 1))
                csv_out_field(&e->out, NULL, 0);
            else
                csv_out_field(&e->out, db_result_value(res, i, c + 1),
                              db_result_length(res, i, c + 1));
        }
        csv_out_row_end(&e->out);
    }
    if (missing && e->tags_loads == 0) {
        /* A tag made during the export: load the map again and redo the
         * page, once (a tag made between the two is left out). */
        db_result_free(&res);
        e->tags_loads++;
        return export_tags_load(e) == 0 ? export_page(e) : -1;
    }
    e->tags_loads = 0;
    if (rows > 0)
        snprintf(e->last_id, sizeof e->last_id, "%s", db_result_value(res, rows - 1, 0));
    e->rows += rows;
    e->done = rows < SEG_CSV_PAGE;
    db_result_free(&res);
    return e->out.failed ? -1 : 0;
}

/* httpd_stream_read_fn: the header first, then page after page. */
static long export_read(void *ctx, char *buf, size_t max)
{
    struct export *e = ctx;
    while (e->sent >= e->out.len) {
        if (!e->header_sent) {
            csv_out_reset(&e->out);
            e->sent = 0;
            if (e->bom)
                csv_out_bom(&e->out);
            for (int c = 0; c < e->ncolumns; c++)
                csv_out_cell(&e->out, e->header[c]);
            csv_out_row_end(&e->out);
            e->header_sent = true;
            if (e->out.failed)
                return HTTPD_STREAM_ERROR;
            continue;
        }
        if (e->done)
            return HTTPD_STREAM_END;
        if (export_page(e) != 0) {
            e->done = false;
            return HTTPD_STREAM_ERROR;
        }
    }
    size_t n = e->out.len - e->sent;
    if (n > max)
        n = max;
    memcpy(buf, e->out.data + e->sent, n);
    e->sent += n;
    return (long)n;
}

/* Appends printf-style text to the SQL; false when it does not fit. */
__attribute__((format(printf, 3, 4))) static bool sql_add(char *sql, size_t *len, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql + *len, EXPORT_SQL_MAX - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= EXPORT_SQL_MAX - *len)
        return false;
    *len += (size_t)n;
    return true;
}

/* Adds a parameter (copied). */
static bool param_add(struct export *e, const char *v)
{
    char **grown = realloc(e->params, (size_t)(e->nparams + 1) * sizeof *grown);
    if (!grown)
        return false;
    e->params = grown;
    e->params[e->nparams] = v ? strdup(v) : NULL;
    if (v && !e->params[e->nparams])
        return false;
    e->nparams++;
    return true;
}

/* 400 naming a bad column (field "columns"). */
static void respond_bad_column(struct seg_request *r, const char *why, const char *name)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: \"%.100s\"", why, name);
    httpd_respond_error(r->resp, 400, "invalid_column", msg, "columns");
}

/* Resolves one column into the SELECT list. 1 added, 0 answered 400, -1
 * database error. */
static int export_column(struct seg_request *r, struct export *e, const char *name, char *sql,
                         size_t *len)
{
    for (int c = 0; c < e->ncolumns; c++)
        if (strcmp(e->header[c], name) == 0) {
            respond_bad_column(r, "column listed twice", name);
            return 0;
        }
    if (e->ncolumns >= SEG_CSV_COLUMNS_MAX) {
        respond_bad_column(r, "more than 64 columns", name);
        return 0;
    }
    const char *expr = NULL;
    for (size_t i = 0; i < sizeof basic_columns / sizeof basic_columns[0]; i++)
        if (strcmp(name, basic_columns[i].name) == 0)
            expr = basic_columns[i].sql;
    bool ok;
    if (expr) {
        ok = sql_add(sql, len, ", %s", expr);
        if (strcmp(name, "tags") == 0)
            e->tags_col = e->ncolumns;
    } else if (strncmp(name, "tag:", 4) == 0) {
        int64_t id = tag_lookup(r->db, r->channel_id, name + 4);
        if (id < 0)
            return -1;
        if (id == 0) {
            respond_bad_column(r, "no such tag", name);
            return 0;
        }
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%" PRId64, id);
        ok = param_add(e, idtext) &&
             sql_add(sql, len,
                     ", CASE WHEN EXISTS (SELECT 1 FROM friend_tags WHERE tag_id = $%d::bigint "
                     "AND friend_id = f.id) THEN '1' ELSE '0' END",
                     e->nparams);
    } else if (strncmp(name, "field:", 6) == 0) {
        struct field_def def = {0};
        int found = field_lookup(r->db, r->channel_id, name + 6, &def);
        if (found < 0)
            return -1;
        if (found == 0) {
            respond_bad_column(r, "no such field", name);
            return 0;
        }
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%" PRId64, def.id);
        enum field_type type = def.type;
        field_def_clear(&def);
        if ((unsigned)type > FIELD_CHOICE)
            type = FIELD_TEXT;
        ok = param_add(e, idtext) &&
             sql_add(sql, len,
                     ", (SELECT %s FROM friend_fields WHERE field_id = $%d::bigint AND "
                     "friend_id = f.id)",
                     field_expr[type], e->nparams);
    } else {
        respond_bad_column(r, "unknown column", name);
        return 0;
    }
    e->header[e->ncolumns] = strdup(name);
    if (!ok || !e->header[e->ncolumns]) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return 0;
    }
    e->ncolumns++;
    return 1;
}

/* The saved segment's filter as a predicate appended to sql. 1 done, 0
 * answered (404, 422), -1 database error. */
static int export_segment(struct seg_request *r, struct export *e, const char *segment_id,
                          char *sql, size_t *len)
{
    size_t n = strlen(segment_id);
    bool uuid_form = n == 36;
    for (size_t i = 0; uuid_form && i < n; i++)
        uuid_form = (i == 8 || i == 13 || i == 18 || i == 23)
                        ? segment_id[i] == '-'
                        : strchr("0123456789abcdefABCDEF", segment_id[i]) && segment_id[i];
    if (!uuid_form) {
        httpd_respond_error(r->resp, 404, "not_found", "no such segment", "segment");
        return 0;
    }
    struct db_result *res = NULL;
    const char *params[] = {segment_id, r->channel_id};
    if (db_exec(r->db, "SELECT filter::text FROM segments WHERE id = $1::uuid AND channel_id = $2",
                2, params, &res) != DB_OK)
        return -1;
    if (db_result_rows(res) != 1) {
        db_result_free(&res);
        httpd_respond_error(r->resp, 404, "not_found", "no such segment", "segment");
        return 0;
    }
    json_t *filter = json_loads(db_result_value(res, 0, 0), 0, NULL);
    db_result_free(&res);
    if (!filter)
        return -1;
    struct filter_sql q = {0};
    struct jsonf_error err = {0};
    int rc =
        filter_compile(r->db, r->channel_id, filter, "segment.filter", e->nparams + 1, &q, &err);
    json_decref(filter);
    if (rc == -2)
        return -1;
    if (rc == -1) {
        /* Saved once valid, but a tag or field it names is gone since. */
        char msg[JSONF_PATH_MAX + JSONF_REASON_MAX + 64];
        char text[JSONF_PATH_MAX + JSONF_REASON_MAX + 8];
        snprintf(msg, sizeof msg, "the segment's filter no longer holds: %s",
                 jsonf_error_text(&err, text, sizeof text));
        httpd_respond_error(r->resp, 422, "invalid_filter", msg, "segment");
        return 0;
    }
    bool ok = sql_add(sql, len, " AND (%s)", q.sql);
    for (int i = 0; ok && i < q.nparams; i++)
        ok = param_add(e, q.params[i]);
    filter_sql_free(&q);
    if (!ok) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return 0;
    }
    return 1;
}

/* Sets e up from the query. true when ready; false after answering. */
static bool export_prepare(struct seg_request *r, struct export *e, char *sql)
{
    size_t len = 0;
    const char *columns = httpd_request_query(r->req, "columns");
    const char *segment = httpd_request_query(r->req, "segment");
    const char *bom = httpd_request_query(r->req, "bom");
    if (!columns || !*columns)
        columns = EXPORT_DEFAULT_COLUMNS;
    if (strlen(columns) > EXPORT_COLUMNS_ARG_MAX) {
        httpd_respond_error(r->resp, 400, "too_long", "columns is over 4096 bytes", "columns");
        return false;
    }
    if (bom && strcmp(bom, "1") != 0 && strcmp(bom, "0") != 0) {
        httpd_respond_error(r->resp, 400, "invalid_value", "bom must be 1 or 0", "bom");
        return false;
    }
    e->bom = bom && strcmp(bom, "1") == 0;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SEG_CSV_PAGE);
    if (!param_add(e, r->channel_id) || !param_add(e, NULL) || !param_add(e, limit) ||
        !sql_add(sql, &len, "SELECT f.id")) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return false;
    }
    char name[EXPORT_COLUMNS_ARG_MAX + 1];
    for (const char *p = columns;;) {
        size_t n = strcspn(p, ",");
        memcpy(name, p, n);
        name[n] = '\0';
        int rc = export_column(r, e, name, sql, &len);
        if (rc < 0) {
            seg_respond_db_error(r, "csv export columns");
            return false;
        }
        if (rc == 0)
            return false;
        if (!p[n])
            break;
        p += n + 1;
    }
    if (!sql_add(sql, &len, " FROM friends f WHERE f.channel_id = $1 AND f.id > $2::bigint")) {
        respond_bad_column(r, "too many columns", columns);
        return false;
    }
    if (segment) {
        int rc = export_segment(r, e, segment, sql, &len);
        if (rc < 0) {
            seg_respond_db_error(r, "csv export segment");
            return false;
        }
        if (rc == 0)
            return false;
    }
    if (!sql_add(sql, &len, " ORDER BY f.id LIMIT $3::int")) {
        httpd_respond_error(r->resp, 400, "too_long", "the segment is too large to export",
                            "segment");
        return false;
    }
    e->sql = strdup(sql);
    if (!e->sql) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return false;
    }
    return true;
}

bool csv_route_export(struct seg_request *r)
{
    static const struct admin_method methods[] = {{"GET", "admin"}};
    if (strcmp(r->rest, "friends.csv") != 0)
        return false;
    if (admin_api_route(r->claims, r->req, r->resp, methods, 1) < 0)
        return true;
    if (atomic_fetch_add(&exports_running, 1) >= SEG_CSV_EXPORTS_MAX) {
        atomic_fetch_sub(&exports_running, 1);
        httpd_response_header(r->resp, "Retry-After", "5");
        httpd_respond_error(r->resp, 503, "busy",
                            "two CSV exports are streaming already; try again later", NULL);
        return true;
    }
    struct export *e = calloc(1, sizeof *e);
    char *sql = malloc(EXPORT_SQL_MAX);
    if (!e || !sql) {
        free(e);
        free(sql);
        atomic_fetch_sub(&exports_running, 1);
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return true;
    }
    e->pool = r->app->pool;
    snprintf(e->channel_id, sizeof e->channel_id, "%s", r->channel_id);
    snprintf(e->last_id, sizeof e->last_id, "0");
    e->tags_col = -1;
    bool ready = export_prepare(r, e, sql);
    free(sql);
    if (!ready) {
        e->done = true; /* nothing was streamed: no "ended early" log */
        export_free(e);
        return true;
    }
    /* The stream owns the connection from here; seg_api releases NULL. */
    e->db = r->db;
    r->db = NULL;
    char disposition[SEG_ID_MAX + 64];
    char safe[SEG_ID_MAX + 1];
    size_t k = 0;
    for (const char *p = r->channel_id; *p && k < SEG_ID_MAX; p++)
        if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            *p == '-' || *p == '_')
            safe[k++] = *p;
    safe[k] = '\0';
    snprintf(disposition, sizeof disposition, "attachment; filename=\"friends-%s.csv\"", safe);
    httpd_response_header(r->resp, "Content-Disposition", disposition);
    httpd_response_header(r->resp, "Cache-Control", "no-store");
    httpd_respond_stream(r->resp, 200, "text/csv; charset=utf-8", export_read, e, export_free);
    return true;
}
