/* The 1:1 talk: one friend's messages in both directions, newest first,
 * and an operator's push. A push is validated, its variables rendered for
 * the friend, and then, in ONE transaction, recorded as a talk row (status
 * pending, a new request_id) and enqueued as a SendRequest (kind PUSH) on
 * send.requests through the outbox, so the row and the send exist together
 * or not at all. The friend-state part sets the row's status from the
 * DeliveryResult with the same request_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "admin_api.h"
#include "app.h"
#include "clock.h"
#include "db.h"
#include "fields.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "line_message.h"
#include "outbox.h"
#include "people_routes.h"
#include "seg_req.h"

static json_t *talk_row_json(const struct db_result *res, int row)
{
    json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "id", db_result_value(res, row, 0), "direction",
                          db_result_value(res, row, 1), "at", db_result_value(res, row, 2), "type",
                          db_result_value(res, row, 3));
    json_object_set_new(t, "text",
                        db_result_isnull(res, row, 4) ? json_null()
                                                      : json_string(db_result_value(res, row, 4)));
    if (!db_result_isnull(res, row, 5)) {
        json_t *m = json_loads(db_result_value(res, row, 5), 0, NULL);
        if (m)
            json_object_set_new(t, "messages", m);
    }
    static const char *const optional[] = {"status", "error", "request_id"};
    for (int i = 0; i < 3; i++)
        if (!db_result_isnull(res, row, 6 + i))
            json_object_set_new(t, optional[i], json_string(db_result_value(res, row, 6 + i)));
    return t;
}

static void talk_list(struct seg_request *r, const char *user_id)
{
    int limit;
    const char *cursor;
    if (!seg_list_params(r, &limit, &cursor))
        return;
    int64_t friend_id;
    if (seg_friend_find(r, user_id, false, &friend_id, NULL) != 1)
        return;
    char fid[24], lim[16];
    snprintf(fid, sizeof fid, "%lld", (long long)friend_id);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {fid, cursor, lim};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT id, direction, " SEG_SQL_TIME(
                    "at") ", message_type, text, messages::text, "
                          "status, error, request_id::text FROM talk WHERE friend_id = $1::bigint "
                          "AND ($2::bigint IS NULL OR (at, id) < (SELECT at, id FROM talk "
                          "WHERE id = $2::bigint AND friend_id = $1::bigint)) "
                          "ORDER BY at DESC, id DESC LIMIT $3::int",
                3, params, &res) != DB_OK) {
        seg_respond_db_error(r, "talk list");
        return;
    }
    seg_list_respond(r, &res, limit, "messages", 0, talk_row_json);
}

/* --- rendering for one friend ---------------------------------------------------- */

struct render_ctx {
    struct seg_request *r;
    const char *friend_id;
    const char *display_name; /* NULL: not known yet */
    bool link_used;
    bool failed;
};

static int render_var(void *ctx, enum line_var_kind kind, const char *name, size_t len, char *out,
                      size_t cap)
{
    struct render_ctx *c = ctx;
    if (kind == LINE_VAR_DISPLAY_NAME) {
        if (!c->display_name)
            return 0;
        snprintf(out, cap, "%s", c->display_name);
        return 1;
    }
    if (kind == LINE_VAR_LINK) {
        c->link_used = true;
        return -1;
    }
    char field[FIELD_NAME_MAX * 4 + 1];
    snprintf(field, sizeof field, "%.*s", (int)len, name);
    const char *params[] = {c->friend_id, c->r->channel_id, field};
    struct db_result *res = NULL;
    if (db_exec(c->r->db,
                "SELECT COALESCE(ff.text_value, ff.number_value::text, "
                "to_char(ff.date_value, 'YYYY-MM-DD'), " SEG_SQL_TIME(
                    "ff.time_value") ") "
                                     "FROM friend_fields ff JOIN fields f ON f.id = ff.field_id "
                                     "WHERE ff.friend_id = $1::bigint AND f.channel_id = $2 AND "
                                     "f.name = $3",
                3, params, &res) != DB_OK) {
        c->failed = true;
        return -1;
    }
    int got = db_result_rows(res) == 1 && !db_result_isnull(res, 0, 0);
    if (got)
        snprintf(out, cap, "%s", db_result_value(res, 0, 0));
    db_result_free(&res);
    return got;
}

/* Renders the text of every text message in place: 1, or 0 after
 * answering (400 for {{link:ID}}, 500 on a database error). */
static int messages_render(struct render_ctx *c, json_t *messages)
{
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "type")) ?: "", "text") != 0)
            continue;
        char *text = line_text_render(json_string_value(json_object_get(m, "text")), render_var, c);
        if (!text) {
            char field[48];
            snprintf(field, sizeof field, "messages[%zu].text", i);
            if (c->link_used)
                httpd_respond_error(c->r->resp, 400, "unsupported_variable",
                                    "{{link:ID}} cannot be sent in the 1:1 talk yet", field);
            else
                seg_respond_db_error(c->r, "talk render");
            return 0;
        }
        json_object_set_new(m, "text", json_string(text));
        free(text);
    }
    return 1;
}

/* --- the push -------------------------------------------------------------------- */

/* The SendRequest for messages, enqueued on send.requests (key: the
 * channel). 0 or -1. */
static int send_enqueue(struct seg_request *r, const char *user_id, const char *request_id,
                        const char *talk_id, json_t *messages)
{
    char event_id[37];
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = (char *)r->claims->tenant;
    env.channel_id = (char *)r->channel_id;
    env.occurred_at = clock_wall_ms();
    env.causation_id = "";
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    req.envelope = &env;
    req.request_id = (char *)request_id;
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
    req.to = (char *)user_id;
    req.origin_type = "talk";
    req.origin_id = (char *)talk_id;
    char *texts[LINE_MESSAGES_MAX] = {0};
    size_t n = json_array_size(messages);
    int rc = -1;
    for (size_t i = 0; i < n && i < LINE_MESSAGES_MAX; i++)
        if (!(texts[i] = json_dumps(json_array_get(messages, i), JSON_COMPACT)))
            goto out;
    req.n_messages_json = n;
    req.messages_json = texts;
    size_t len = kizuna__v1__send_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        kizuna__v1__send_request__pack(&req, buf);
        rc = outbox_enqueue(r->db, "send.requests", r->channel_id, strlen(r->channel_id), buf,
                            len) == DB_OK
                 ? 0
                 : -1;
        free(buf);
    }
out:
    for (size_t i = 0; i < LINE_MESSAGES_MAX; i++)
        free(texts[i]);
    return rc;
}

static void talk_push(struct seg_request *r, const char *user_id)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    static const char *const known[] = {"messages"};
    if (jsonf_known(&root, known, 1) < 0) {
        admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        goto done;
    }
    if (!seg_messages_read(r, &root, "messages"))
        goto done;
    if (db_begin(r->db) != DB_OK) {
        seg_respond_db_error(r, "begin");
        goto done;
    }
    const char *params[] = {r->channel_id, user_id};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT id, blocked, display_name FROM friends WHERE channel_id = $1 AND "
                "user_id = $2 FOR UPDATE",
                2, params, &res) != DB_OK) {
        seg_fail_tx(r, "friend lookup");
        goto done;
    }
    if (db_result_rows(res) != 1 || db_result_value(res, 0, 1)[0] == 't') {
        if (db_result_rows(res) != 1)
            httpd_respond_error(r->resp, 404, "unknown_friend", "no such friend in this channel",
                                NULL);
        else
            httpd_respond_error(r->resp, 409, "friend_blocked",
                                "the friend has blocked the account; nothing can be sent", NULL);
        db_result_free(&res);
        db_rollback(r->db);
        goto done;
    }
    char friend_id[24];
    snprintf(friend_id, sizeof friend_id, "%s", db_result_value(res, 0, 0));
    char *display_name = db_result_isnull(res, 0, 2) ? NULL : strdup(db_result_value(res, 0, 2));
    db_result_free(&res);
    json_t *messages = json_object_get(doc, "messages");
    struct render_ctx rc = {.r = r, .friend_id = friend_id, .display_name = display_name};
    int rendered = messages_render(&rc, messages);
    free(display_name);
    if (!rendered) {
        db_rollback(r->db);
        goto done;
    }
    char request_id[37];
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, request_id);
    json_t *first = json_array_get(messages, 0);
    const char *type = json_string_value(json_object_get(first, "type"));
    const char *text =
        strcmp(type, "text") == 0 ? json_string_value(json_object_get(first, "text")) : NULL;
    char *messages_text = json_dumps(messages, JSON_COMPACT);
    const char *ins[] = {friend_id, type, text, request_id, messages_text};
    enum db_status st = messages_text ? db_exec(r->db,
                                                "INSERT INTO talk (friend_id, direction, at, "
                                                "message_type, text, request_id, messages, status) "
                                                "VALUES ($1::bigint, 'out', now(), $2, $3, "
                                                "$4::uuid, $5::jsonb, 'pending') RETURNING id",
                                                5, ins, &res)
                                      : DB_FATAL;
    free(messages_text);
    if (st != DB_OK || db_result_rows(res) != 1 ||
        send_enqueue(r, user_id, request_id, db_result_value(res, 0, 0), messages) != 0) {
        db_result_free(&res);
        seg_fail_tx(r, "talk push");
        goto done;
    }
    json_t *answer =
        json_pack("{s:s, s:s}", "request_id", request_id, "id", db_result_value(res, 0, 0));
    db_result_free(&res);
    if (seg_commit(r, true))
        admin_api_respond_json(r->resp, 202, answer);
    else
        json_decref(answer);
done:
    json_decref(doc);
}

/* GET and POST /friends/{user_id}/messages. */
bool talk_route(struct seg_request *r)
{
    char user_id[SEG_ID_MAX + 1];
    const char *after;
    if (!seg_path_friend(r->rest, "messages", user_id, &after) || after[0] != '\0')
        return false;
    static const struct admin_method methods[] = {{"GET", "viewer"}, {"POST", "operator"}};
    int m = admin_api_route(r->claims, r->req, r->resp, methods, 2);
    if (m == 0)
        talk_list(r, user_id);
    else if (m == 1)
        talk_push(r, user_id);
    return true;
}
