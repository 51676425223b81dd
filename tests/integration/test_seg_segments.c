/* Segments and the friends read API on the real service and schema:
 * friends, tags and fields seeded by SQL; segments created, refused (an
 * unknown tag with its path, a duplicate name, a cycle), counted and
 * previewed; the friends list by inline filter, by segment and by name
 * search (LIKE metacharacters are plain text), paged by cursor; one
 * friend with its typed fields; and another tenant's token, which finds
 * none of it. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "kafka.h"
#include "kizuna/v1/friend.pb-c.h"
#include "seg_itest.h"
#include "segmentation/filter.h"

TestSuite(seg_segments, .timeout = 180, .fini = seg_itest_reap);

#define CH "1600000101"
#define BASE "/v1/channels/" CH

/* Four friends of channel (and one of another channel), two tags, four
 * fields. */
static void seed_channel(const char *channel)
{
    seg_itest_channel(channel, "tenant-a", "Asia/Tokyo");
    struct db *db = seg_itest_db();
    const char *p[] = {channel};
    itest_exec_ok(
        db,
        "INSERT INTO friends (channel_id, user_id, display_name, blocked, added_at, route)"
        " VALUES ($1, 'U1', 'Alice Smith', false, now() - interval '1 day', 'ad1'),"
        " ($1, 'U2', 'bob_100%', true, now() - interval '40 days', NULL),"
        " ($1, 'U3', 'Carol', false, now() - interval '2 days', NULL),"
        " ($1, 'U4', 'Dave', false, NULL, NULL),"
        " ($1 || '9', 'U9', 'Other channel', false, now(), NULL)",
        1, p);
    itest_exec_ok(db,
                  "INSERT INTO tags (channel_id, name) VALUES ($1, 'vip'), ($1, 'new'),"
                  " ($1 || '9', 'vip')",
                  1, p);
    itest_exec_ok(db,
                  "INSERT INTO fields (channel_id, name, type, choices) VALUES"
                  " ($1, 'score', 'number', NULL), ($1, 'city', 'text', NULL),"
                  " ($1, 'plan', 'choice', ARRAY['free', 'pro']), ($1, 'birthday', 'date', NULL)",
                  1, p);
    itest_exec_ok(db,
                  "INSERT INTO friend_tags (tag_id, friend_id) SELECT t.id, f.id FROM tags t,"
                  " friends f WHERE t.channel_id = $1 AND f.channel_id = t.channel_id AND"
                  " ((t.name = 'vip' AND f.user_id IN ('U1', 'U2'))"
                  " OR (t.name = 'new' AND f.user_id IN ('U2', 'U3')))",
                  1, p);
    itest_exec_ok(db,
                  "INSERT INTO friend_fields (field_id, friend_id, text_value, number_value,"
                  " date_value) SELECT d.id, f.id, v.t, v.n, v.d FROM (VALUES"
                  " ('U1', 'score', NULL, 10.5, NULL), ('U2', 'score', NULL, 50, NULL),"
                  " ('U3', 'score', NULL, 5, NULL), ('U1', 'city', 'Tokyo', NULL, NULL),"
                  " ('U3', 'plan', 'pro', NULL, NULL),"
                  " ('U1', 'birthday', NULL, NULL, date '1990-04-01'))"
                  " AS v(u, name, t, n, d) JOIN friends f ON f.user_id = v.u AND f.channel_id = $1"
                  " JOIN fields d ON d.name = v.name AND d.channel_id = $1",
                  1, p);
}

static void seed(void)
{
    seed_channel(CH);
}

static long call(const char *role, const char *method, const char *path, const char *body,
                 struct itest_http *res)
{
    long status = seg_itest_call("tenant-a", role, method, path, body, res);
    cr_assert(res->json || status == 204, "%s %s: %ld %s", method, path, status, res->body);
    return status;
}

static const char *error_field(const struct itest_http *res)
{
    return json_string_value(json_object_get(json_object_get(res->json, "error"), "field"));
}

static const char *error_code(const struct itest_http *res)
{
    return json_string_value(json_object_get(json_object_get(res->json, "error"), "code"));
}

/* The user ids of a friends list answer, joined by commas. */
static void friend_ids(const struct itest_http *res, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *friends = json_object_get(res->json, "friends");
    size_t i;
    json_t *f;
    json_array_foreach(friends, i, f)
    {
        size_t n = strlen(out);
        int w = snprintf(out + n, cap - n, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(f, "user_id")));
        cr_assert(w >= 0 && (size_t)w < cap - n);
    }
}

static void url_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

static void list_expect(const char *query, const char *want)
{
    char path[2048], ids[256];
    snprintf(path, sizeof path, BASE "/friends%s", query);
    struct itest_http res;
    long status = call("viewer", "GET", path, NULL, &res);
    cr_expect_eq(status, 200, "%s: %ld %s", path, status, res.body);
    friend_ids(&res, ids, sizeof ids);
    cr_expect_str_eq(ids, want, "%s", path);
    itest_http_free(&res);
}

static void list_filter_expect(const char *filter, const char *want)
{
    char enc[1024], query[1100];
    url_encode(filter, enc, sizeof enc);
    snprintf(query, sizeof query, "?filter=%s", enc);
    list_expect(query, want);
}

static void create_segment(const char *name, const char *filter, char id[64])
{
    char body[1024];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"filter\":%s}", name, filter);
    struct itest_http res;
    long status = call("operator", "POST", BASE "/segments", body, &res);
    cr_assert_eq(status, 201, "%s: %ld %s", name, status, res.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(res.json, "id")));
    cr_expect_str_eq(json_string_value(json_object_get(res.json, "name")), name);
    cr_expect(json_is_object(json_object_get(res.json, "filter")));
    itest_http_free(&res);
}

static long count_of(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, BASE "/segments/%s/count", id);
    struct itest_http res;
    long status = call("viewer", "GET", path, NULL, &res);
    cr_assert_eq(status, 200, "%s: %s", path, res.body);
    long n = (long)json_integer_value(json_object_get(res.json, "count"));
    itest_http_free(&res);
    return n;
}

Test(seg_segments, segments_are_stored_counted_previewed_and_refused_when_bad)
{
    seg_itest_start("segments", NULL);
    seed();
    char vips[64], rich[64], loop[64];
    create_segment("vips", "{\"tag\":\"vip\"}", vips);
    create_segment("rich vips",
                   "{\"all\":[{\"tag\":\"vip\"},{\"field\":\"score\",\"op\":\"ge\","
                   "\"value\":20}]}",
                   rich);
    cr_expect_eq(count_of(vips), 2);
    cr_expect_eq(count_of(rich), 1);

    struct itest_http res;
    /* A duplicate name. */
    cr_expect_eq(call("operator", "POST", BASE "/segments",
                      "{\"name\":\"vips\",\"filter\":{\"all\":[]}}", &res),
                 409);
    cr_expect_str_eq(error_code(&res), "conflict");
    itest_http_free(&res);
    /* An unknown tag, named by its path. */
    cr_expect_eq(
        call("operator", "POST", BASE "/segments",
             "{\"name\":\"x\",\"filter\":{\"all\":[{\"blocked\":false},{\"tag\":\"gold\"}]}}",
             &res),
        400);
    cr_expect_str_eq(error_code(&res), "invalid_filter");
    cr_expect_str_eq(error_field(&res), "filter.all[1].tag");
    itest_http_free(&res);
    /* An operator that does not fit the field's type. */
    cr_expect_eq(call("operator", "POST", BASE "/segments",
                      "{\"name\":\"x\",\"filter\":{\"field\":\"score\",\"op\":\"contains\","
                      "\"value\":\"1\"}}",
                      &res),
                 400);
    cr_expect_str_eq(error_field(&res), "filter.op");
    itest_http_free(&res);
    /* A viewer reads but does not write. */
    cr_expect_eq(
        call("viewer", "POST", BASE "/segments", "{\"name\":\"y\",\"filter\":{\"all\":[]}}", &res),
        403);
    itest_http_free(&res);

    /* Preview: a count and a sample. */
    cr_expect_eq(call("viewer", "POST", BASE "/segments/preview",
                      "{\"filter\":{\"all\":[{\"tag\":\"vip\"},{\"field\":\"score\",\"op\":"
                      "\"between\",\"value\":[20,60]}]}}",
                      &res),
                 200, "%s", res.body);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "count")), 1);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(res.json, "sample"), 0)),
                     "U2");
    itest_http_free(&res);

    /* A segment through another, then a change that would close a loop. */
    char body[512], path[256];
    snprintf(body, sizeof body, "{\"any\":[{\"segment\":\"%s\"},{\"blocked\":true}]}", vips);
    create_segment("vips or blocked", body, loop);
    cr_expect_eq(count_of(loop), 2);
    snprintf(path, sizeof path, BASE "/segments/%s", vips);
    snprintf(body, sizeof body, "{\"filter\":{\"not\":{\"segment\":\"%s\"}}}", loop);
    cr_expect_eq(call("operator", "PATCH", path, body, &res), 400, "%s", res.body);
    cr_expect_str_eq(error_field(&res), "filter.not.segment");
    itest_http_free(&res);
    /* A rename to a taken name. */
    cr_expect_eq(call("operator", "PATCH", path, "{\"name\":\"rich vips\"}", &res), 409);
    itest_http_free(&res);
    /* PUT replaces. */
    cr_expect_eq(
        call("operator", "PUT", path,
             "{\"name\":\"vips\",\"filter\":{\"all\":[{\"tag\":\"vip\"},{\"blocked\":false}]}}",
             &res),
        200, "%s", res.body);
    itest_http_free(&res);
    cr_expect_eq(count_of(vips), 1);
    cr_expect_eq(count_of(loop), 2); /* U1 (vip), U2 (blocked) */

    /* In use: not deleted. */
    cr_expect_eq(call("operator", "DELETE", path, NULL, &res), 409);
    cr_expect_str_eq(error_code(&res), "segment_in_use");
    itest_http_free(&res);
    char loop_path[256];
    snprintf(loop_path, sizeof loop_path, BASE "/segments/%s", loop);
    cr_expect_eq(call("operator", "DELETE", loop_path, NULL, &res), 204);
    itest_http_free(&res);
    cr_expect_eq(call("operator", "DELETE", path, NULL, &res), 204);
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", path, NULL, &res), 404);
    cr_expect_str_eq(error_code(&res), "unknown_segment");
    itest_http_free(&res);

    /* The list pages. */
    char more[64];
    create_segment("a", "{\"all\":[]}", more);
    create_segment("b", "{\"any\":[]}", more);
    cr_expect_eq(call("viewer", "GET", BASE "/segments?limit=2", NULL, &res), 200);
    cr_expect_eq(json_array_size(json_object_get(res.json, "segments")), 2);
    const char *cursor = json_string_value(json_object_get(res.json, "next_cursor"));
    cr_assert_not_null(cursor);
    snprintf(path, sizeof path, BASE "/segments?limit=2&cursor=%s", cursor);
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", path, NULL, &res), 200);
    cr_expect_eq(json_array_size(json_object_get(res.json, "segments")), 1);
    cr_expect(json_is_null(json_object_get(res.json, "next_cursor")));
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", BASE "/segments?limit=501", NULL, &res), 400);
    cr_expect_str_eq(error_field(&res), "limit");
    itest_http_free(&res);
    seg_itest_finish();
}

Test(seg_segments, friends_are_listed_by_filter_segment_and_name_and_read_one_by_one)
{
    seg_itest_start("friends", NULL);
    seed();
    list_expect("", "U1,U2,U3,U4");
    list_expect("?q=ALI", "U1");
    list_expect("?q=%25", "U2"); /* % is a plain character */
    list_expect("?q=_", "U2");   /* so is _ */
    list_expect("?q=zzz", "");
    list_filter_expect("{\"tag\":\"new\"}", "U2,U3");
    list_filter_expect("{\"not\":{\"tag\":\"new\"}}", "U1,U4");
    list_filter_expect("{\"blocked\":false}", "U1,U3,U4");
    list_filter_expect("{\"added_at\":{\"gte\":\"2000-01-01T00:00:00Z\"}}", "U1,U2,U3");
    list_filter_expect("{\"field\":\"city\",\"op\":\"contains\",\"value\":\"OK\"}", "U1");
    list_filter_expect("{\"field\":\"city\",\"op\":\"contains\",\"value\":\"%\"}", "");
    list_filter_expect("{\"field\":\"score\",\"op\":\"gt\",\"value\":10}", "U1,U2");
    list_filter_expect("{\"field\":\"plan\",\"op\":\"eq\",\"value\":\"pro\"}", "U3");
    list_filter_expect("{\"field\":\"birthday\",\"op\":\"lt\",\"value\":\"2000-01-01\"}", "U1");
    list_filter_expect("{\"route\":\"ad1\"}", "U1");
    list_filter_expect("{\"any\":[]}", "");
    list_filter_expect("{\"all\":[{\"tag\":\"vip\"},{\"not\":{\"tag\":\"new\"}}]}", "U1");
    list_expect("?q=a&filter=%7B%22tag%22%3A%22vip%22%7D", "U1");

    char seg[64], query[128];
    create_segment("new ones", "{\"tag\":\"new\"}", seg);
    snprintf(query, sizeof query, "?segment=%s", seg);
    list_expect(query, "U2,U3");

    /* Paging one by one covers everyone once. */
    char cursor[32] = "", seen[64] = "";
    for (int page = 0; page < 6; page++) {
        char path[256];
        snprintf(path, sizeof path, BASE "/friends?limit=1%s%s", *cursor ? "&cursor=" : "", cursor);
        struct itest_http res;
        cr_assert_eq(call("viewer", "GET", path, NULL, &res), 200);
        char ids[64];
        friend_ids(&res, ids, sizeof ids);
        size_t n = strlen(seen);
        int w = snprintf(seen + n, sizeof seen - n, "%s%s", n ? "," : "", ids);
        cr_assert(w >= 0 && (size_t)w < sizeof seen - n);
        const char *next = json_string_value(json_object_get(res.json, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        itest_http_free(&res);
        if (!*cursor)
            break;
    }
    cr_expect_str_eq(seen, "U1,U2,U3,U4");

    struct itest_http res;
    cr_expect_eq(
        call("viewer", "GET", BASE "/friends?filter=%7B%22tag%22%3A%22gold%22%7D", NULL, &res),
        400);
    cr_expect_str_eq(error_field(&res), "filter.tag");
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", BASE "/friends?filter=%7Bnope", NULL, &res), 400);
    cr_expect_str_eq(error_field(&res), "filter");
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", BASE "/friends?segment=99999999-9999-9999-9999-999999999999",
                      NULL, &res),
                 400);
    cr_expect_str_eq(error_field(&res), "segment");
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", BASE "/friends?cursor=abc", NULL, &res), 400);
    cr_expect_str_eq(error_field(&res), "cursor");
    itest_http_free(&res);

    /* One friend, with tags and typed fields. */
    cr_expect_eq(call("viewer", "GET", BASE "/friends/U1", NULL, &res), 200, "%s", res.body);
    cr_expect_str_eq(json_string_value(json_object_get(res.json, "display_name")), "Alice Smith");
    cr_expect_str_eq(json_string_value(json_object_get(res.json, "route")), "ad1");
    cr_expect(json_is_false(json_object_get(res.json, "blocked")));
    cr_expect(json_is_string(json_object_get(res.json, "added_at")));
    cr_expect(json_is_null(json_object_get(res.json, "last_message_at")));
    json_t *tags = json_object_get(res.json, "tags");
    cr_expect_eq(json_array_size(tags), 1);
    cr_expect_str_eq(json_string_value(json_array_get(tags, 0)), "vip");
    json_t *fields = json_object_get(res.json, "fields");
    cr_expect(json_is_number(json_object_get(fields, "score")));
    cr_expect_float_eq(json_number_value(json_object_get(fields, "score")), 10.5, 1e-9);
    cr_expect_str_eq(json_string_value(json_object_get(fields, "city")), "Tokyo");
    cr_expect_str_eq(json_string_value(json_object_get(fields, "birthday")), "1990-04-01");
    itest_http_free(&res);
    cr_expect_eq(call("viewer", "GET", BASE "/friends/U404", NULL, &res), 404);
    cr_expect_str_eq(error_code(&res), "unknown_friend");
    itest_http_free(&res);
    /* The same trees asked for one friend (the scheduler's conditions). */
    const char *p[] = {CH};
    char *id_text = itest_query_text(
        seg_itest_db(), "SELECT id FROM friends WHERE channel_id = $1 AND user_id = 'U1'", 1, p);
    int64_t u1 = strtoll(id_text, NULL, 10);
    free(id_text);
    static const struct {
        const char *filter;
        int want;
    } matches[] = {
        {"{\"tag\":\"vip\"}", 1},
        {"{\"tag\":\"new\"}", 0},
        {"{\"all\":[{\"field\":\"score\",\"op\":\"eq\",\"value\":10.5},{\"blocked\":false}]}", 1},
        {"{\"field\":\"city\",\"op\":\"contains\",\"value\":\"_\"}", 0},
        {"{\"any\":[]}", 0},
        {"{\"tag\":\"gold\"}", -1},
    };
    for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        json_t *tree = json_loads(matches[i].filter, 0, NULL);
        struct jsonf_error err;
        cr_expect_eq(filter_matches(seg_itest_db(), CH, tree, u1, &err), matches[i].want, "%s",
                     matches[i].filter);
        json_decref(tree);
    }
    /* Another channel's friend is not in this one. */
    cr_expect_eq(call("viewer", "GET", BASE "/friends/U9", NULL, &res), 404);
    itest_http_free(&res);
    seg_itest_finish();
}

Test(seg_segments, another_tenants_token_finds_nothing)
{
    seg_itest_start("segments-tenant", NULL);
    seed();
    char seg[64];
    create_segment("vips", "{\"tag\":\"vip\"}", seg);
    char item[128], count[200];
    snprintf(item, sizeof item, BASE "/segments/%s", seg);
    snprintf(count, sizeof count, "%s/count", item);
    const struct {
        const char *method, *path, *body;
    } calls[] = {
        {"GET", BASE "/segments", NULL},
        {"POST", BASE "/segments", "{\"name\":\"z\",\"filter\":{\"all\":[]}}"},
        {"POST", BASE "/segments/preview", "{\"filter\":{\"all\":[]}}"},
        {"GET", item, NULL},
        {"PATCH", item, "{\"name\":\"z\"}"},
        {"PUT", item, "{\"name\":\"z\",\"filter\":{\"all\":[]}}"},
        {"DELETE", item, NULL},
        {"GET", count, NULL},
        {"GET", BASE "/friends", NULL},
        {"GET", BASE "/friends/U1", NULL},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        cr_expect_eq(seg_itest_call("tenant-b", "admin", calls[i].method, calls[i].path,
                                    calls[i].body, NULL),
                     404, "%s %s", calls[i].method, calls[i].path);
    }
    /* Nothing changed. */
    cr_expect_eq(count_of(seg), 2);
    seg_itest_finish();
}

/* Tag events of one friend on friend.events, as "added vip" / "removed new". */
struct tag_events {
    char key[96];
    char lines[8][64];
    int n, want;
};

static enum kafka_handled tag_events_handle(void *ctx, const struct kafka_message *msg)
{
    struct tag_events *e = ctx;
    if (msg->keylen != strlen(e->key) || memcmp(msg->key, e->key, msg->keylen) != 0 || e->n >= 8)
        return KAFKA_DONE;
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    if (!ev)
        return KAFKA_DONE;
    if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED)
        snprintf(e->lines[e->n++], 64, "added %s", ev->tag_added->tag_name);
    else if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_REMOVED)
        snprintf(e->lines[e->n++], 64, "removed %s", ev->tag_removed->tag_name);
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool tag_events_done(void *ctx)
{
    struct tag_events *e = ctx;
    return e->n >= e->want;
}

static long bulk(const char *channel, const char *role, const char *what, const char *body,
                 struct itest_http *res)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/channels/%s/tags/%s", channel, what);
    return seg_itest_call("tenant-a", role, "POST", path, body, res);
}

Test(seg_segments, a_tag_is_added_and_removed_for_every_friend_a_filter_selects)
{
    seg_itest_start("segments-bulk", NULL);
    char channel[24];
    itest_unique_digits(channel, sizeof channel, '1');
    seed_channel(channel);
    struct itest_http res;
    cr_expect_eq(bulk(channel, "operator", "vip/friends", "{\"filter\":{\"blocked\":false}}", &res),
                 200, "%s", res.body);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "changed")), 2, "U3 and U4");
    cr_expect(json_is_false(json_object_get(res.json, "more")));
    itest_http_free(&res);
    cr_expect_eq(bulk(channel, "operator", "vip/friends", "{\"filter\":{\"blocked\":false}}", &res),
                 200);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "changed")), 0, "no change twice");
    itest_http_free(&res);
    cr_expect_eq(bulk(channel, "operator", "new/friends/remove", "{\"filter\":{\"all\":[]}}", &res),
                 200, "%s", res.body);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "changed")), 2, "U2 and U3");
    itest_http_free(&res);

    cr_expect_eq(bulk(channel, "operator", "gold/friends", "{\"filter\":{\"all\":[]}}", &res), 404);
    cr_expect_str_eq(error_code(&res), "unknown_tag");
    itest_http_free(&res);
    cr_expect_eq(
        bulk(channel, "operator", "vip/friends", "{\"filter\":{\"not\":{\"tag\":\"gold\"}}}", &res),
        400);
    cr_expect_str_eq(error_field(&res), "filter.not.tag");
    itest_http_free(&res);
    cr_expect_eq(bulk(channel, "operator", "vip/friends", "{}", &res), 400);
    cr_expect_str_eq(error_field(&res), "filter");
    itest_http_free(&res);
    cr_expect_eq(bulk(channel, "viewer", "vip/friends", "{\"filter\":{\"all\":[]}}", &res), 403);
    itest_http_free(&res);
    char path[256];
    snprintf(path, sizeof path, "/v1/channels/%s/tags/vip/friends", channel);
    cr_expect_eq(
        seg_itest_call("tenant-b", "admin", "POST", path, "{\"filter\":{\"all\":[]}}", NULL), 404,
        "another tenant's channel");

    snprintf(path, sizeof path, "/v1/channels/%s/friends?filter=%%7B%%22tag%%22%%3A%%22vip%%22%%7D",
             channel);
    cr_expect_eq(seg_itest_call("tenant-a", "viewer", "GET", path, NULL, &res), 200);
    char ids[64];
    friend_ids(&res, ids, sizeof ids);
    cr_expect_str_eq(ids, "U1,U2,U3,U4");
    itest_http_free(&res);

    struct tag_events e = {.want = 2};
    snprintf(e.key, sizeof e.key, "%s:U3", channel);
    itest_topic_read("friend.events", tag_events_handle, tag_events_done, &e, 30000);
    cr_expect_eq(e.n, 2, "%d events, want 2", e.n);
    cr_expect_str_eq(e.lines[0], "added vip");
    cr_expect_str_eq(e.lines[1], "removed new");
    seg_itest_finish();
}
