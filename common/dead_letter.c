/* Dead letters (dead_letter.h): reading a record's envelope without its
 * type, and the admin listing every service serves. The envelope is read
 * from the protobuf wire format directly because the relay that moves a row
 * knows only its topic and bytes, and every Kizuna event carries the
 * Envelope as field 1 (proto/kizuna/v1/envelope.proto). */
#include "dead_letter.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "auth.h"
#include "db.h"
#include "httpd.h"
#include "log.h"

#define DEAD_LETTERS_LIST_DEFAULT 100
#define DEAD_LETTERS_LIST_MAX 500
/* Protobuf wire types. */
#define WIRE_VARINT 0
#define WIRE_FIXED64 1
#define WIRE_BYTES 2
#define WIRE_FIXED32 5

struct dead_letters {
    pthread_mutex_t mu; /* guards db */
    struct db *db;      /* NULL until the first request, or after a failed connect */
    char *dsn;
};

/* --- the envelope ------------------------------------------------------------ */

struct wire {
    const uint8_t *p, *end;
};

/* One varint; false past the end or beyond 10 bytes. */
static bool wire_varint(struct wire *w, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The next field's number and wire type; for WIRE_BYTES also its bytes.
 * Other wire types are skipped. False on malformed input or at the end. */
static bool wire_next(struct wire *w, uint32_t *field, const uint8_t **bytes, size_t *len)
{
    uint64_t tag, n;
    if (w->p >= w->end || !wire_varint(w, &tag))
        return false;
    *field = (uint32_t)(tag >> 3);
    *bytes = NULL;
    *len = 0;
    switch (tag & 7) {
    case WIRE_VARINT:
        return wire_varint(w, &n);
    case WIRE_FIXED64:
        if (w->end - w->p < 8)
            return false;
        w->p += 8;
        return true;
    case WIRE_FIXED32:
        if (w->end - w->p < 4)
            return false;
        w->p += 4;
        return true;
    case WIRE_BYTES:
        if (!wire_varint(w, &n) || n > (uint64_t)(w->end - w->p))
            return false;
        *bytes = w->p;
        *len = (size_t)n;
        w->p += n;
        return true;
    default: /* groups (deprecated) and reserved types: not ours */
        return false;
    }
}

/* Copies a string field that fits and has no NUL; leaves dst alone otherwise. */
static void wire_string(char *dst, size_t cap, const uint8_t *bytes, size_t len)
{
    if (len >= cap || memchr(bytes, '\0', len))
        return;
    memcpy(dst, bytes, len);
    dst[len] = '\0';
}

bool dead_letter_envelope_read(const void *payload, size_t len, struct dead_letter_envelope *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *start = payload;
    struct wire top = {start, start ? start + len : start};
    uint32_t field;
    const uint8_t *bytes;
    size_t n;
    while (wire_next(&top, &field, &bytes, &n)) {
        if (field != 1 || !bytes)
            continue;
        /* Repeated occurrences of a message field merge: later values win. */
        struct wire env = {bytes, bytes + n};
        const uint8_t *v;
        size_t vlen;
        while (wire_next(&env, &field, &v, &vlen)) {
            if (!v)
                continue;
            if (field == 1)
                wire_string(out->event_id, sizeof out->event_id, v, vlen);
            else if (field == 2)
                wire_string(out->tenant_id, sizeof out->tenant_id, v, vlen);
            else if (field == 3)
                wire_string(out->channel_id, sizeof out->channel_id, v, vlen);
        }
    }
    if (!out->tenant_id[0]) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

/* --- the listing ---------------------------------------------------------------- */

struct dead_letters *dead_letters_new(const char *dsn, char *errstr, size_t errcap)
{
    struct dead_letters *dl = calloc(1, sizeof *dl);
    if (!dl || !dsn || !(dl->dsn = strdup(dsn))) {
        free(dl);
        snprintf(errstr, errcap, "%s", dsn ? "out of memory" : "dead letters need a database URL");
        return NULL;
    }
    pthread_mutex_init(&dl->mu, NULL);
    return dl;
}

void dead_letters_free(struct dead_letters **dl)
{
    if (!dl || !*dl)
        return;
    db_free(&(*dl)->db);
    pthread_mutex_destroy(&(*dl)->mu);
    free((*dl)->dsn);
    free(*dl);
    *dl = NULL;
}

/* 1..max decimal digits and nothing else. */
static bool digits_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9' || n >= max)
            return false;
    return n > 0;
}

static json_t *text_or_null(const struct db_result *r, int row, int col)
{
    return db_result_isnull(r, row, col) ? json_null() : json_string(db_result_value(r, row, col));
}

static json_t *int_of(const struct db_result *r, int row, int col)
{
    return json_integer((json_int_t)strtoll(db_result_value(r, row, col), NULL, 10));
}

/* The rows as the API's JSON (openapi.yaml, DeadLetter); NULL: out of memory. */
static json_t *dead_letters_json(const struct db_result *r, int limit)
{
    json_t *list = json_array();
    json_t *root = json_object();
    int rows = db_result_rows(r);
    for (int i = 0; list && i < rows; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(db_result_value(r, i, 0)));
        json_object_set_new(o, "table", json_string(db_result_value(r, i, 1)));
        json_object_set_new(o, "topic", json_string(db_result_value(r, i, 2)));
        json_object_set_new(o, "key_bytes", int_of(r, i, 3));
        json_object_set_new(o, "payload_bytes", int_of(r, i, 4));
        json_object_set_new(o, "error", json_string(db_result_value(r, i, 5)));
        json_object_set_new(o, "tenant_id", json_string(db_result_value(r, i, 6)));
        json_object_set_new(o, "channel_id", text_or_null(r, i, 7));
        json_object_set_new(o, "event_id", text_or_null(r, i, 8));
        json_object_set_new(o, "created_at", json_string(db_result_value(r, i, 9)));
        json_object_set_new(o, "dead_at", json_string(db_result_value(r, i, 10)));
        json_array_append_new(list, o);
    }
    if (!list || !root) {
        json_decref(list);
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "dead_letters", list);
    json_object_set_new(root, "next_cursor",
                        rows == limit && rows > 0 ? json_string(db_result_value(r, rows - 1, 0))
                                                  : json_null());
    return root;
}

/* Runs the listing on dl's connection, opening it first if needed. */
static enum db_status dead_letters_query(struct dead_letters *dl, const char *tenant,
                                         const char *cursor, const char *limit,
                                         struct db_result **r)
{
    static const char sql[] =
        "SELECT id, source_table, topic, coalesce(octet_length(key), 0), octet_length(payload), "
        "error, tenant_id, nullif(channel_id, ''), nullif(event_id, ''), "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
        "FROM dead_letter WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint) "
        "ORDER BY id DESC LIMIT $3::int";
    const char *params[] = {tenant, cursor, limit};
    if (!dl->db) {
        char errstr[256];
        dl->db = db_connect(dl->dsn, errstr, sizeof errstr);
        if (!dl->db) {
            log_warn("dead letters: cannot connect to PostgreSQL", "error", errstr);
            return DB_RETRY;
        }
    }
    enum db_status st = db_exec(dl->db, sql, 3, params, r);
    if (st != DB_OK)
        log_warn("dead letters listing failed", "tenant", tenant, "error",
                 db_error_message(dl->db));
    return st;
}

void dead_letters_respond(struct dead_letters *dl, const struct auth_claims *claims,
                          const struct httpd_request *req, struct httpd_response *resp)
{
    /* Admin: a dead letter names topics, sizes and event ids of the tenant's
     * traffic, and is what an operator acts on. */
    static const struct admin_method methods[] = {{"GET", "admin"}};
    if (admin_api_route(claims, req, resp, methods, 1) < 0)
        return;
    const char *cursor = httpd_request_query(req, "cursor");
    const char *limit_text = httpd_request_query(req, "limit");
    if (cursor && !digits_ok(cursor, 18)) {
        httpd_respond_error(resp, 400, "invalid_argument", "not a cursor from this API", "cursor");
        return;
    }
    int limit = DEAD_LETTERS_LIST_DEFAULT;
    if (limit_text) {
        long v = digits_ok(limit_text, 3) ? strtol(limit_text, NULL, 10) : 0;
        if (v < 1 || v > DEAD_LETTERS_LIST_MAX) {
            httpd_respond_error(resp, 400, "invalid_argument", "an integer from 1 to 500", "limit");
            return;
        }
        limit = (int)v;
    }
    if (!dl) {
        httpd_respond_error(resp, 503, "unavailable", "dead letters are unavailable", NULL);
        return;
    }
    char limit_param[8];
    snprintf(limit_param, sizeof limit_param, "%d", limit);
    struct db_result *r = NULL;
    pthread_mutex_lock(&dl->mu);
    enum db_status st = dead_letters_query(dl, claims->tenant, cursor, limit_param, &r);
    pthread_mutex_unlock(&dl->mu);
    if (st != DB_OK) {
        httpd_response_header(resp, "Retry-After", "1");
        httpd_respond_error(resp, 503, "unavailable", "dead letters are unavailable", NULL);
        return;
    }
    json_t *body = dead_letters_json(r, limit);
    db_result_free(&r);
    admin_api_respond_json(resp, 200, body);
}
