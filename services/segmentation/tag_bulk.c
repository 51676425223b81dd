/* A tag added to, or removed from, every friend a filter selects:
 *   POST tags/{name}/friends         {"filter"}  adds
 *   POST tags/{name}/friends/remove  {"filter"}  removes
 * (POST rather than DELETE with a body, which some clients and proxies
 * drop.) Each change goes through tags.h's tag_add / tag_remove, so every
 * friend changed gets its own TagAdded / TagRemoved on friend.events, in
 * the same transaction as the change.
 *
 * One call changes at most TAG_BULK_MAX friends, chosen among those the
 * change would affect (the filter AND not yet tagged, or tagged), in
 * friends.id order; the answer says whether more remain, and calling again
 * goes on where it stopped. That bounds one transaction (its locks, its
 * outbox rows, the time a request holds a connection) at any channel size:
 * 1M friends take 100 calls, none longer than a few seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "db.h"
#include "filter.h"
#include "seg_page.h"
#include "seg_req.h"
#include "segments.h"
#include "tags.h"

#define TAG_BULK_MAX 10000
#define TAG_PATH_NAME_MAX (TAG_NAME_MAX * 4)

static void tag_bulk(struct seg_request *r, const char *name, bool add)
{
    json_t *body = seg_body_object(r);
    if (!body)
        return;
    struct jsonf_error errors[1];
    struct jsonf_reader reader = {.errors = errors, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, body);
    static const char *const known[] = {"filter"};
    if (jsonf_known(&root, known, 1) < 0) {
        admin_api_respond_invalid(r->resp, jsonf_error_first(&reader), NULL, NULL);
        json_decref(body);
        return;
    }
    int64_t tag_id =
        tag_name_valid(name, strlen(name)) ? tag_lookup(r->db, r->channel_id, name) : 0;
    if (tag_id <= 0) {
        if (tag_id < 0)
            seg_respond_db_error(r, "tag lookup");
        else
            httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
        json_decref(body);
        return;
    }
    struct filter_sql q;
    struct jsonf_error err;
    int rc = filter_compile(r->db, r->channel_id, json_object_get(body, "filter"), "filter", 4, &q,
                            &err);
    json_decref(body);
    if (rc == -2) {
        seg_respond_db_error(r, "bulk tag filter");
        return;
    }
    if (rc < 0) {
        seg_page_respond_filter(r, &err);
        return;
    }
    char tag_text[24], fetch[16];
    snprintf(tag_text, sizeof tag_text, "%lld", (long long)tag_id);
    snprintf(fetch, sizeof fetch, "%d", TAG_BULK_MAX + 1); /* one more: do more remain? */
    const char *params[] = {r->channel_id, tag_text, fetch};
    const char *head = add ? "SELECT f.id, f.user_id FROM friends f WHERE f.channel_id = $1 AND"
                             " NOT EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id"
                             " AND t.tag_id = $2::bigint) AND "
                           : "SELECT f.id, f.user_id FROM friends f WHERE f.channel_id = $1 AND"
                             " EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id"
                             " AND t.tag_id = $2::bigint) AND ";
    struct db_result *res = NULL;
    if (db_begin(r->db) != DB_OK) {
        filter_sql_free(&q);
        seg_respond_db_error(r, "begin");
        return;
    }
    rc = seg_page_query(r->db, head, " ORDER BY f.id LIMIT $3::int", params, 3, &q, &res);
    filter_sql_free(&q);
    if (rc != DB_OK) {
        seg_fail_tx(r, "bulk tag select");
        return;
    }
    int rows = db_result_rows(res), todo = rows > TAG_BULK_MAX ? TAG_BULK_MAX : rows;
    long changed = 0;
    for (int i = 0; i < todo; i++) {
        int64_t friend_id = strtoll(db_result_value(res, i, 0), NULL, 10);
        const char *user_id = db_result_value(res, i, 1);
        int one = add ? tag_add(r->db, r->claims->tenant, r->channel_id, user_id, friend_id, tag_id,
                                name, NULL)
                      : tag_remove(r->db, r->claims->tenant, r->channel_id, user_id, friend_id,
                                   tag_id, name, NULL);
        if (one < 0) {
            db_result_free(&res);
            seg_fail_tx(r, add ? "bulk tag add" : "bulk tag remove");
            return;
        }
        changed += one;
    }
    db_result_free(&res);
    if (!seg_commit(r, changed > 0))
        return;
    admin_api_respond_json(
        r->resp, 200,
        json_pack("{s:I,s:b}", "changed", (json_int_t)changed, "more", rows > TAG_BULK_MAX));
}

static const struct admin_method bulk_methods[] = {{"POST", "operator"}};

bool tag_bulk_route(struct seg_request *r)
{
    if (strncmp(r->rest, "tags/", 5) != 0)
        return false;
    const char *name = r->rest + 5;
    const char *slash = strchr(name, '/');
    if (!slash || slash == name || (size_t)(slash - name) > TAG_PATH_NAME_MAX)
        return false;
    bool add;
    if (strcmp(slash, "/friends") == 0)
        add = true;
    else if (strcmp(slash, "/friends/remove") == 0)
        add = false;
    else
        return false;
    char tag[TAG_PATH_NAME_MAX + 1];
    memcpy(tag, name, (size_t)(slash - name));
    tag[slash - name] = '\0';
    if (admin_api_route(r->claims, r->req, r->resp, bulk_methods, 1) == 0)
        tag_bulk(r, tag, add);
    return true;
}
