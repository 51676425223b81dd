/* Reading friends: the list (everyone, a saved segment, or an inline
 * filter, optionally narrowed by a name search), paged by keyset on
 * friends.id so a page costs the same wherever it starts; and one friend
 * by user id. Both answer openapi.yaml's Friend (friend_json.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "db.h"
#include "filter.h"
#include "friend_json.h"
#include "seg_page.h"
#include "seg_req.h"
#include "segments.h"
#include "utf8.h"

#define FRIENDS_Q_MAX 100        /* characters of ?q= */
#define FRIENDS_FILTER_MAX 16384 /* bytes of ?filter= */

/* The tree the list selects by: ?segment=ID as {"segment":ID} (errors
 * name "segment"), ?filter= as itself (errors name "filter..."), neither
 * as everyone. NULL after answering 400. */
static json_t *list_tree(struct seg_request *r, const char **prefix)
{
    const char *segment = httpd_request_query(r->req, "segment");
    const char *filter = httpd_request_query(r->req, "filter");
    if (segment && filter) {
        httpd_respond_error(r->resp, 400, "invalid_value", "give segment or filter, not both",
                            "filter");
        return NULL;
    }
    if (segment) {
        *prefix = "";
        return json_pack("{s:s}", "segment", segment);
    }
    *prefix = "filter";
    if (!filter)
        return json_pack("{s:[]}", "all");
    if (strlen(filter) > FRIENDS_FILTER_MAX) {
        httpd_respond_error(r->resp, 400, "too_long", "filter must be at most 16384 bytes",
                            "filter");
        return NULL;
    }
    json_error_t jerr;
    json_t *tree = json_loads(filter, JSON_REJECT_DUPLICATES, &jerr);
    if (!tree) {
        char msg[200];
        snprintf(msg, sizeof msg, "filter: malformed JSON at column %d", jerr.column);
        httpd_respond_error(r->resp, 400, "invalid_json", msg, "filter");
    }
    return tree;
}

/* ?q=: NULL when absent or empty; false after answering 400. */
static bool list_q(struct seg_request *r, const char **q)
{
    *q = httpd_request_query(r->req, "q");
    if (*q && !**q)
        *q = NULL;
    if (!*q)
        return true;
    size_t len = strlen(*q), chars = 0;
    bool ok = utf8_valid(*q, len);
    for (size_t i = 0; ok && i < len; i++)
        chars += ((unsigned char)(*q)[i] & 0xC0) != 0x80;
    if (!ok || chars > FRIENDS_Q_MAX) {
        httpd_respond_error(r->resp, 400, "invalid_value",
                            "q must be UTF-8 text of at most 100 characters", "q");
        return false;
    }
    return true;
}

/* A friends row as a list item (friend_json_row from column 0). */
static json_t *friend_row_json(const struct db_result *res, int row)
{
    return friend_json_row(res, row, 0);
}

static void friends_list(struct seg_request *r)
{
    int limit;
    const char *cursor, *q, *prefix;
    if (!seg_list_params(r, &limit, &cursor) || !list_q(r, &q))
        return;
    json_t *tree = list_tree(r, &prefix);
    if (!tree)
        return;
    struct filter_sql fq;
    struct jsonf_error err;
    int rc = filter_compile(r->db, r->channel_id, tree, prefix, 5, &fq, &err);
    json_decref(tree);
    if (rc == -2) {
        seg_respond_db_error(r, "friends filter");
        return;
    }
    if (rc < 0) {
        seg_page_respond_filter(r, &err);
        return;
    }
    char fetch[16], head[4096];
    snprintf(fetch, sizeof fetch, "%d", limit + 1); /* one more: is there a next page? */
    snprintf(head, sizeof head,
             "SELECT %s FROM friends f WHERE f.channel_id = $1"
             " AND ($2::bigint IS NULL OR f.id > $2::bigint)"
             " AND ($3::text IS NULL OR strpos(lower(f.display_name), lower($3::text)) > 0)"
             " AND ",
             friend_json_columns);
    const char *params[] = {r->channel_id, cursor, q, fetch};
    struct db_result *res = NULL;
    if (seg_page_query(r->db, head, " ORDER BY f.id LIMIT $4::int", params, 4, &fq, &res) !=
        DB_OK) {
        filter_sql_free(&fq);
        seg_respond_db_error(r, "friends list");
        return;
    }
    filter_sql_free(&fq);
    seg_list_respond(r, &res, limit, "friends", 0, friend_row_json);
}

static void friend_get(struct seg_request *r, const char *user_id)
{
    json_t *friend = NULL;
    int found = friend_json_find(r->db, r->channel_id, user_id, &friend);
    if (found < 0)
        seg_respond_db_error(r, "friend read");
    else if (found == 0)
        httpd_respond_error(r->resp, 404, "unknown_friend", "no such friend in this channel", NULL);
    else
        admin_api_respond_json(r->resp, 200, friend);
}

static const struct admin_method read_methods[] = {{"GET", "viewer"}};

bool friends_read_route(struct seg_request *r)
{
    static const char prefix[] = "friends";
    if (strncmp(r->rest, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *after = r->rest + sizeof prefix - 1;
    if (*after == '\0') {
        if (admin_api_route(r->claims, r->req, r->resp, read_methods, 1) == 0)
            friends_list(r);
        return true;
    }
    if (*after != '/')
        return false;
    char user_id[SEG_ID_MAX + 1];
    const char *tail = seg_path_next(after + 1, user_id);
    /* Deeper paths (tags, fields, messages) and the CSV import are other
     * parts' routes. */
    if (!tail || *tail != '\0' || after[1 + strlen(user_id)] == '/' ||
        strcmp(user_id, "import.csv") == 0)
        return false;
    if (admin_api_route(r->claims, r->req, r->resp, read_methods, 1) == 0)
        friend_get(r, user_id);
    return true;
}
