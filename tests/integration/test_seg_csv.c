/* The friend list as CSV on the real service: export streams the chosen
 * columns (for everyone or a segment, with a BOM on request), an import of
 * a changed file changes exactly what it says and a second export shows
 * it, an import with bad rows answers 422 with row numbers and changes
 * nothing, malformed CSV is a 4xx, only admins may use either route, and a
 * client that disconnects mid-export gives its database connection back
 * (the pool has one connection here, so a leak would make the next request
 * 503). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "auth.h"
#include "csv.h"
#include "db.h"
#include "kafka.h"
#include "kizuna/v1/friend.pb-c.h"
#include "seg_itest.h"

TestSuite(seg_csv_api, .timeout = 180, .fini = seg_itest_reap);

#define CH "1600000101"
#define EXPORT_PATH "/v1/channels/" CH "/friends.csv"
#define IMPORT_PATH "/v1/channels/" CH "/friends/import.csv"

static const char *const one_connection[] = {"SEGMENTATION_API_DB_CONNECTIONS=1", NULL};

/* n friends U00001..: tags VIP (odd ones) and Tokyo (every third), fields
 * age (number: the index), plan (choice), note (text with CSV's specials
 * for friend 1). */
static void seed(int n)
{
    struct db *db = seg_itest_db();
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    const char *p[] = {CH, count};
    itest_exec_ok(db,
                  "INSERT INTO friends (channel_id, user_id, display_name, added_at, route) "
                  "SELECT $1, 'U' || lpad(i::text, 5, '0'), 'Name ' || i, "
                  "'2026-01-02T03:04:05Z'::timestamptz + i * interval '1 minute', "
                  "CASE WHEN i % 2 = 0 THEN 'qr' END FROM generate_series(1, $2::int) i",
                  2, p);
    const char *c[] = {CH};
    itest_exec_ok(db, "INSERT INTO tags (channel_id, name) VALUES ($1, 'VIP'), ($1, 'Tokyo')", 1,
                  c);
    itest_exec_ok(db,
                  "INSERT INTO fields (channel_id, name, type, choices) VALUES "
                  "($1, 'age', 'number', NULL), ($1, 'plan', 'choice', '{free,pro}'), "
                  "($1, 'note', 'text', NULL)",
                  1, c);
    itest_exec_ok(db,
                  "INSERT INTO friend_tags (tag_id, friend_id) SELECT t.id, f.id FROM friends f "
                  "JOIN tags t ON t.channel_id = f.channel_id WHERE f.channel_id = $1 AND "
                  "((t.name = 'VIP' AND f.id % 2 = 1) OR (t.name = 'Tokyo' AND f.id % 3 = 0))",
                  1, c);
    itest_exec_ok(
        db,
        "INSERT INTO friend_fields (field_id, friend_id, number_value) SELECT d.id, f.id, "
        "substr(f.user_id, 2)::int FROM friends f JOIN fields d ON d.channel_id = "
        "f.channel_id AND d.name = 'age' WHERE f.channel_id = $1",
        1, c);
    itest_exec_ok(db,
                  "INSERT INTO friend_fields (field_id, friend_id, text_value) SELECT d.id, f.id, "
                  "'say \"hi\", then\r\nleave' FROM friends f JOIN fields d ON d.channel_id = "
                  "f.channel_id AND d.name = 'note' WHERE f.user_id = 'U00001'",
                  0, NULL);
}

/* The body parsed: rows[r][c] cells, r = 0 the header. */
struct table {
    int nrows, ncols;
    char *(*cells)[8]; /* [nrows] */
    int cap;
};

static struct table *table_parse(const char *body, size_t len)
{
    struct table *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    t->cap = 64;
    t->cells = calloc((size_t)t->cap, sizeof *t->cells);
    cr_assert_not_null(t->cells);
    struct csv_parser ps;
    cr_assert_eq(csv_parser_init(&ps, body, len, 0), 0);
    size_t n;
    int rc;
    while ((rc = csv_parser_next(&ps, &n)) == 1) {
        if (t->nrows == t->cap) {
            t->cap *= 2;
            t->cells = realloc(t->cells, (size_t)t->cap * sizeof *t->cells);
            cr_assert_not_null(t->cells);
            memset(t->cells + t->nrows, 0, (size_t)(t->cap - t->nrows) * sizeof *t->cells);
        }
        cr_assert_leq(n, 8);
        t->ncols = (int)n;
        for (size_t i = 0; i < n; i++)
            t->cells[t->nrows][i] = strdup(csv_parser_cell(&ps, i, NULL));
        t->nrows++;
    }
    cr_assert_eq(rc, 0, "the export is not valid CSV: %s (record %ld)", csv_error_str(ps.error),
                 ps.record);
    csv_parser_free(&ps);
    return t;
}

static void table_free(struct table *t)
{
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < 8; c++)
            free(t->cells[r][c]);
    free(t->cells);
    free(t);
}

/* The row of user_id (column 0), or -1. */
static int table_row(const struct table *t, const char *user_id)
{
    for (int r = 1; r < t->nrows; r++)
        if (strcmp(t->cells[r][0], user_id) == 0)
            return r;
    return -1;
}

static struct table *export_table(const char *query)
{
    char path[512];
    snprintf(path, sizeof path, EXPORT_PATH "%s", query);
    struct itest_http res;
    long st = seg_itest_call("tenant-a", "admin", "GET", path, NULL, &res);
    cr_assert_eq(st, 200, "export %s: %ld %s", query, st, res.body);
    struct table *t = table_parse(res.body, res.len);
    itest_http_free(&res);
    return t;
}

static long import_csv(const char *role, const char *csv, struct itest_http *res)
{
    return seg_itest_call_body("tenant-a", role, "POST", IMPORT_PATH, "text/csv; charset=utf-8",
                               csv, strlen(csv), res);
}

static char *count_of(const char *sql)
{
    return itest_query_text(seg_itest_db(), sql, 0, NULL);
}

/* The events on friend.events for one friend since a time, as lines
 * ("tag_removed VIP", "field_changed age 41 <- 1"). */
struct seen {
    char key[96];
    long long since_ms;
    char lines[16][160];
    int n, want;
};

static void value_text(const Kizuna__V1__FieldValue *v, char *out, size_t cap)
{
    if (!v)
        snprintf(out, cap, "none");
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_NUMBER_VALUE)
        snprintf(out, cap, "%g", v->number_value);
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_TEXT_VALUE)
        snprintf(out, cap, "%s", v->text_value);
    else
        snprintf(out, cap, "?");
}

static enum kafka_handled seen_handle(void *ctx, const struct kafka_message *msg)
{
    struct seen *s = ctx;
    if (msg->keylen != strlen(s->key) || memcmp(msg->key, s->key, msg->keylen) != 0 || s->n >= 16)
        return KAFKA_DONE;
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    if (!ev)
        return KAFKA_DONE;
    if (ev->envelope && ev->envelope->occurred_at >= s->since_ms &&
        strncmp(ev->envelope->causation_id, "csv-import:", 11) == 0) {
        char *line = s->lines[s->n++];
        char a[64], b[64];
        if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED) {
            snprintf(line, 160, "tag_added %s", ev->tag_added->tag_name);
        } else if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_REMOVED) {
            snprintf(line, 160, "tag_removed %s", ev->tag_removed->tag_name);
        } else if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_FIELD_CHANGED) {
            value_text(ev->field_changed->value, a, sizeof a);
            value_text(ev->field_changed->previous, b, sizeof b);
            snprintf(line, 160, "field_changed %s %s <- %s", ev->field_changed->field_name, a, b);
        } else {
            snprintf(line, 160, "other %d", (int)ev->event_case);
        }
    }
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool seen_done(void *ctx)
{
    struct seen *s = ctx;
    return s->n >= s->want;
}

Test(seg_csv_api, export_then_import_a_changed_file_then_export_shows_the_changes)
{
    seg_itest_start("csv-roundtrip", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(1500); /* more than one page of 1000 */

    struct table *t = export_table("?columns=user_id,display_name,added_at,blocked,route,tags,"
                                   "tag:VIP,field:age");
    cr_expect_eq(t->nrows, 1501, "a header and every friend");
    cr_expect_str_eq(t->cells[0][0], "user_id");
    cr_expect_str_eq(t->cells[0][6], "tag:VIP");
    cr_expect_str_eq(t->cells[0][7], "field:age");
    cr_expect_str_eq(t->cells[1][0], "U00001", "ordered by friend");
    cr_expect_str_eq(t->cells[1][1], "Name 1");
    cr_expect_str_eq(t->cells[1][2], "2026-01-02T03:05:05Z");
    cr_expect_str_eq(t->cells[1][3], "0");
    cr_expect_str_eq(t->cells[1][4], "");
    cr_expect_str_eq(t->cells[1][5], "VIP");
    cr_expect_str_eq(t->cells[1][6], "1");
    cr_expect_str_eq(t->cells[1][7], "1");
    int r3 = table_row(t, "U00003");
    cr_assert_gt(r3, 0);
    cr_expect_str_eq(t->cells[r3][5], "Tokyo/VIP", "tag names sorted, joined by /");
    cr_expect_str_eq(t->cells[table_row(t, "U01500")][7], "1500");
    table_free(t);

    struct table *n = export_table("?columns=user_id,field:note");
    cr_expect_str_eq(n->cells[1][1], "say \"hi\", then\r\nleave", "specials survive the trip");
    table_free(n);

    /* The changed file: VIP off for 1, on for 2, Tokyo left alone, age and
     * plan set for some, note changed with every special. */
    const char *csv = "\xEF\xBB\xBFuser_id,tag:VIP,tag:Tokyo,field:age,field:plan,field:note\r\n"
                      "U00001,0,,41,pro,\"new \"\"note\"\",\nline two\"\r\n"
                      "U00002,1,,,free,\r\n"
                      "U00003,1,0,3,,\r\n"
                      "U00004,,1,,,\r\n";
    struct itest_http res;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long since_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - 1000;
    cr_assert_eq(import_csv("admin", csv, &res), 200, "%s", res.body);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "rows")), 4);
    cr_expect_eq(json_integer_value(json_object_get(res.json, "tags_added")), 2,
                 "VIP on U00002, Tokyo on U00004; VIP on U00003 was already so");
    cr_expect_eq(json_integer_value(json_object_get(res.json, "tags_removed")), 2,
                 "VIP off U00001, Tokyo off U00003");
    cr_expect_eq(json_integer_value(json_object_get(res.json, "fields_changed")), 4,
                 "age 41, plan pro, note for U00001; plan free for U00002; age 3 unchanged");
    itest_http_free(&res);

    struct table *a = export_table("?columns=user_id,tags,field:age,field:plan,field:note");
    int r1 = table_row(a, "U00001"), r2 = table_row(a, "U00002");
    r3 = table_row(a, "U00003");
    int r4 = table_row(a, "U00004");
    cr_expect_str_eq(a->cells[r1][1], "");
    cr_expect_str_eq(a->cells[r1][2], "41");
    cr_expect_str_eq(a->cells[r1][3], "pro");
    cr_expect_str_eq(a->cells[r1][4], "new \"note\",\nline two");
    cr_expect_str_eq(a->cells[r2][1], "VIP");
    cr_expect_str_eq(a->cells[r2][3], "free");
    cr_expect_str_eq(a->cells[r3][1], "VIP");
    cr_expect_str_eq(a->cells[r3][2], "3");
    cr_expect_str_eq(a->cells[r4][1], "Tokyo");
    cr_expect_str_eq(a->cells[table_row(a, "U00005")][1], "VIP", "rows not in the file stay");
    table_free(a);

    /* The changes went out as events, in column order, with the import as
     * their cause; U00003's unchanged age made none. */
    static const char *const want1[] = {
        "tag_removed VIP",
        "field_changed age 41 <- 1",
        "field_changed plan pro <- none",
        "field_changed note new \"note\",\nline two <- say \"hi\", then\r\nleave",
    };
    struct seen s = {.since_ms = since_ms, .want = 4};
    snprintf(s.key, sizeof s.key, CH ":U00001");
    itest_topic_read("friend.events", seen_handle, seen_done, &s, 30000);
    cr_expect_eq(s.n, 4, "%d events for U00001, want 4", s.n);
    for (int i = 0; i < 4 && i < s.n; i++)
        cr_expect_str_eq(s.lines[i], want1[i], "event %d", i);
    struct seen s3 = {.since_ms = since_ms, .want = 2};
    snprintf(s3.key, sizeof s3.key, CH ":U00003");
    itest_topic_read("friend.events", seen_handle, seen_done, &s3, 5000);
    cr_expect_eq(s3.n, 1, "U00003: only Tokyo came off");
    cr_expect_str_eq(s3.lines[0], "tag_removed Tokyo");
    seg_itest_finish();
}

Test(seg_csv_api, export_writes_a_bom_on_request_and_exports_a_segment)
{
    seg_itest_start("csv-bom", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(30);
    struct itest_http res;
    cr_assert_eq(seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?bom=1&columns=user_id",
                                NULL, &res),
                 200);
    cr_expect(res.len > 3 && memcmp(res.body, CSV_BOM "user_id\r\nU00001\r\n", 19) == 0,
              "BOM, header, CRLF");
    itest_http_free(&res);
    cr_assert_eq(
        seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=user_id", NULL, &res),
        200);
    cr_expect(strncmp(res.body, "user_id\r\n", 9) == 0, "no BOM unless asked");
    itest_http_free(&res);

    const char *c[] = {CH};
    char *id = itest_query_text(seg_itest_db(),
                                "INSERT INTO segments (channel_id, name, filter) VALUES ($1, 'vip "
                                "tokyo', '{\"all\":[{\"tag\":\"VIP\"},{\"tag\":\"Tokyo\"}]}') "
                                "RETURNING id::text",
                                1, c);
    char query[128];
    snprintf(query, sizeof query, "?columns=user_id&segment=%s", id);
    struct table *t = export_table(query);
    cr_expect_eq(t->nrows, 1 + 5, "odd multiples of 3 up to 30: 3, 9, 15, 21, 27");
    cr_expect_str_eq(t->cells[1][0], "U00003");
    table_free(t);
    free(id);
    cr_expect_eq(seg_itest_call("tenant-a", "admin", "GET",
                                EXPORT_PATH "?segment=00000000-0000-0000-0000-000000000000", NULL,
                                NULL),
                 404, "an unknown segment");
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?segment=nope", NULL, NULL), 404);
    seg_itest_finish();
}

Test(seg_csv_api, bad_rows_answer_422_with_row_numbers_and_change_nothing)
{
    seg_itest_start("csv-422", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(10);
    char *before = count_of("SELECT count(*) || '/' || (SELECT count(*) FROM friend_fields) FROM "
                            "friend_tags");
    const char *csv = "user_id,tag:VIP,field:age,field:plan\n"
                      "U00001,0,5,pro\n" /* good, but must not be applied */
                      "U99999,1,,\n"     /* row 2: no such friend */
                      "U00003,yes,,\n"   /* row 3: bad tag cell */
                      "U00004,,abc,\n"   /* row 4: not a number */
                      "U00005,,,gold\n"  /* row 5: not a choice */
                      "U00001,,,\n"      /* row 6: a repeated user */
                      ",1,,\n"           /* row 7: empty user */
                      "U00008,1\n";      /* row 8: too few cells */
    struct itest_http res;
    cr_assert_eq(import_csv("admin", csv, &res), 422, "%s", res.body);
    json_t *rows = json_object_get(res.json, "rows");
    cr_assert(json_is_array(rows));
    static const struct {
        long row;
        const char *field;
    } want[] = {{2, "user_id"}, {3, "tag:VIP"}, {4, "field:age"}, {5, "field:plan"},
                {6, "user_id"}, {7, "user_id"}, {8, ""}};
    cr_assert_eq(json_array_size(rows), sizeof want / sizeof want[0], "%s", res.body);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *e = json_array_get(rows, i);
        cr_expect_eq(json_integer_value(json_object_get(e, "row")), want[i].row, "error %zu", i);
        cr_expect_str_eq(json_string_value(json_object_get(e, "field")), want[i].field, "error %zu",
                         i);
        cr_expect_not_null(json_string_value(json_object_get(e, "message")));
    }
    json_t *err = json_object_get(res.json, "error");
    cr_expect_str_eq(json_string_value(json_object_get(err, "code")), "invalid_rows");
    itest_http_free(&res);

    /* Unknown tags and fields in the header are row 0. */
    cr_assert_eq(import_csv("admin", "user_id,tag:Nope,field:nada\nU00001,1,x\n", &res), 422);
    json_t *e0 = json_array_get(json_object_get(res.json, "rows"), 0);
    cr_expect_eq(json_integer_value(json_object_get(e0, "row")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(e0, "field")), "tag:Nope");
    itest_http_free(&res);

    char *after = count_of("SELECT count(*) || '/' || (SELECT count(*) FROM friend_fields) FROM "
                           "friend_tags");
    cr_expect_str_eq(after, before, "nothing was applied");
    free(before);
    free(after);
    seg_itest_finish();
}

Test(seg_csv_api, malformed_csv_is_a_4xx_naming_the_problem)
{
    seg_itest_start("csv-bad", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(3);
    static const struct {
        const char *csv;
        long status;
        const char *code;
    } cases[] = {
        {"", 400, "missing_header"},
        {"tag:VIP\nU00001\n", 400, "missing_header"},
        {"user_id,colour\nU00001,red\n", 400, "invalid_column"},
        {"user_id,tag:VIP,tag:VIP\nU00001,1,1\n", 400, "invalid_column"},
        {"user_id,tag:VIP\nU00001,\"1\nU00002,1\n", 400, "invalid_csv"},
        {"user_id,tag:VIP\nU00001,x\"y\n", 400, "invalid_csv"},
        {"user_id,tag:VIP\nU0000\xff,1\n", 400, "invalid_csv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct itest_http res;
        long st = import_csv("admin", cases[i].csv, &res);
        cr_expect_eq(st, cases[i].status, "case %zu: %ld %s", i, st, res.body);
        json_t *err = json_object_get(res.json, "error");
        cr_expect_str_eq(json_string_value(json_object_get(err, "code")), cases[i].code,
                         "case %zu: %s", i, res.body);
        itest_http_free(&res);
    }
    /* A row over 64 KiB. */
    size_t big = 70 * 1024;
    char *csv = malloc(big + 64);
    cr_assert_not_null(csv);
    int h = snprintf(csv, 64, "user_id,field:note\nU00001,");
    memset(csv + h, 'x', big);
    csv[h + (int)big] = '\0';
    struct itest_http res;
    cr_expect_eq(import_csv("admin", csv, &res), 400, "%s", res.body);
    cr_expect(strstr(res.body, "row 1"), "names the row: %s", res.body);
    itest_http_free(&res);
    free(csv);
    cr_expect_eq(seg_itest_call_body("tenant-a", "admin", "POST", IMPORT_PATH, "application/json",
                                     "{}", 2, NULL),
                 415);
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=user_id,nope", NULL, &res),
        400);
    cr_expect(strstr(res.body, "nope") && strstr(res.body, "\"columns\""), "%s", res.body);
    itest_http_free(&res);
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=tag:Nope", NULL, NULL),
        400);
    seg_itest_finish();
}

Test(seg_csv_api, only_admins_of_the_channels_tenant_may_export_or_import)
{
    seg_itest_start("csv-roles", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(3);
    const char *csv = "user_id,tag:VIP\nU00002,1\n";
    static const char *const roles[] = {"viewer", "operator"};
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(seg_itest_call("tenant-a", roles[i], "GET", EXPORT_PATH, NULL, NULL), 403,
                     "%s export", roles[i]);
        cr_expect_eq(import_csv(roles[i], csv, NULL), 403, "%s import", roles[i]);
    }
    cr_expect_eq(seg_itest_call("tenant-b", "admin", "GET", EXPORT_PATH, NULL, NULL), 404);
    cr_expect_eq(seg_itest_call_body("tenant-b", "admin", "POST", IMPORT_PATH, "text/csv", csv,
                                     strlen(csv), NULL),
                 404);
    cr_expect_eq(seg_itest_call("tenant-a", "admin", "POST", EXPORT_PATH, "{}", NULL), 405);
    char *tags = count_of("SELECT count(*) FROM friend_tags ft JOIN friends f ON f.id = "
                          "ft.friend_id WHERE f.user_id = 'U00002'");
    cr_expect_str_eq(tags, "0", "nothing applied by the refused imports");
    free(tags);
    seg_itest_finish();
}

/* Sends an export request on a raw socket and reads about want bytes. */
static int export_start_raw(long want)
{
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *token =
        auth_token_issue(jwt, strlen(jwt), "tenant-a", "itest", "admin", 3600, time(NULL));
    cr_assert_not_null(token);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    int rcv = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(SEG_ITEST_PORT)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET " EXPORT_PATH " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
                     token);
    free(token);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    char buf[4096];
    long got = 0;
    while (got < want) {
        ssize_t r = read(fd, buf, sizeof buf);
        cr_assert_gt(r, 0, "the export ended after %ld bytes", got);
        if (got == 0)
            cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%.*s", (int)r, buf);
        got += r;
    }
    return fd;
}

/* How often the service's log says an export ended before its last row. */
static int log_count(const char *tag, const char *what)
{
    char path[512], line[16384];
    snprintf(path, sizeof path, "%s/tests/seg-%s.log", itest_build_dir(), tag);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

Test(seg_csv_api, a_client_that_disconnects_mid_export_gives_the_connection_back)
{
    seg_itest_start("csv-disconnect", one_connection);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(90000);
    /* About 20 MB of CSV: far more than socket buffers hold. */
    itest_exec_ok(seg_itest_db(), "UPDATE friends SET display_name = repeat('x', 200)", 0, NULL);
    for (int i = 0; i < 3; i++) {
        int fd = export_start_raw(20000);
        close(fd);
        /* The one connection comes back once the server notices; a request
         * waits up to 2 s for it, so this passes only if it does. */
        struct itest_http res;
        long st =
            seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=user_id", NULL, &res);
        cr_expect_eq(st, 200, "after disconnect %d: %ld %s", i, st, res.body);
        cr_expect_eq(res.len, strlen("user_id\r\n") + 90000 * strlen("U00001\r\n"),
                     "a whole export after disconnect %d", i);
        itest_http_free(&res);
    }
    /* A client that stops reading holds its connection only until it goes. */
    int fd = export_start_raw(8000);
    usleep(300 * 1000);
    close(fd);
    cr_expect_eq(seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=user_id&bom=1",
                                NULL, NULL),
                 200);
    cr_expect_eq(log_count("csv-disconnect", "csv export ended before its last row"), 4,
                 "each disconnected export stopped early");
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", "/v1/channels/" CH "/nothing", NULL, NULL), 404,
        "the service still answers");
    seg_itest_finish();
}

Test(seg_csv_api, a_third_export_at_once_is_503_busy_until_one_ends)
{
    seg_itest_start("csv-busy", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(40000);
    itest_exec_ok(seg_itest_db(), "UPDATE friends SET display_name = repeat('x', 200)", 0, NULL);
    int a = export_start_raw(20000);
    int b = export_start_raw(20000);
    struct itest_http res;
    cr_expect_eq(seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH, NULL, &res), 503);
    cr_expect(strstr(res.body, "\"busy\"") && strstr(res.body, "exports"), "%s", res.body);
    itest_http_free(&res);
    cr_expect_eq(
        seg_itest_call("tenant-a", "viewer", "GET", "/v1/channels/" CH "/nothing", NULL, NULL), 404,
        "the rest of the API still has connections");
    close(a);
    close(b);
    long st = 0;
    for (int i = 0; i < 30 && st != 200; i++) {
        usleep(100 * 1000);
        st = seg_itest_call("tenant-a", "admin", "GET", EXPORT_PATH "?columns=user_id", NULL, NULL);
    }
    cr_expect_eq(st, 200, "an export once the others ended");
    seg_itest_finish();
}

/* The body of a chunked HTTP/1.1 response (raw, headers included),
 * de-chunked into a new buffer; *len its length. */
static char *dechunk(const char *raw, size_t rawlen, size_t *len)
{
    const char *p = strstr(raw, "\r\n\r\n");
    cr_assert_not_null(p, "no end of headers");
    p += 4;
    const char *end = raw + rawlen;
    char *out = malloc(rawlen + 1);
    cr_assert_not_null(out);
    *len = 0;
    for (;;) {
        char *after;
        unsigned long n = strtoul(p, &after, 16);
        cr_assert(after < end && strncmp(after, "\r\n", 2) == 0, "a bad chunk size");
        p = after + 2;
        if (n == 0)
            break;
        cr_assert((size_t)(end - p) >= n + 2, "a chunk cut short");
        memcpy(out + *len, p, n);
        *len += n;
        p += n + 2;
    }
    out[*len] = '\0';
    return out;
}

Test(seg_csv_api, a_tag_made_during_an_export_shows_in_the_pages_read_after_it)
{
    seg_itest_start("csv-newtag", NULL);
    seg_itest_channel(CH, "tenant-a", "Asia/Tokyo");
    seed(40000); /* 8 pages of 5000 */
    itest_exec_ok(seg_itest_db(), "UPDATE friends SET display_name = repeat('x', 200)", 0, NULL);
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *token =
        auth_token_issue(jwt, strlen(jwt), "tenant-a", "itest", "admin", 3600, time(NULL));
    cr_assert_not_null(token);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    int rcv = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(SEG_ITEST_PORT)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET " EXPORT_PATH "?columns=user_id,tags,display_name HTTP/1.1\r\nHost: "
                     "x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n\r\n",
                     token);
    free(token);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t cap = 16 << 20, got = 0;
    char *raw = malloc(cap);
    cr_assert_not_null(raw);
    while (got < 20000) {
        ssize_t r = read(fd, raw + got, cap - got);
        cr_assert_gt(r, 0);
        got += (size_t)r;
    }
    /* The first pages are out; the last friend's is not. */
    itest_exec_ok(seg_itest_db(),
                  "WITH t AS (INSERT INTO tags (channel_id, name) VALUES ('" CH "', 'Zed') "
                  "RETURNING id) INSERT INTO friend_tags (tag_id, friend_id) "
                  "SELECT t.id, f.id FROM t, friends f WHERE f.user_id = 'U40000'",
                  0, NULL);
    for (;;) {
        cr_assert_lt(got, cap, "the export is larger than expected");
        ssize_t r = read(fd, raw + got, cap - got - 1);
        cr_assert_geq(r, 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    raw[got] = '\0';
    size_t len;
    char *body = dechunk(raw, got, &len);
    free(raw);
    struct table *t = table_parse(body, len);
    free(body);
    cr_expect_eq(t->nrows, 40001);
    cr_expect_str_eq(t->cells[40000][0], "U40000");
    cr_expect_str_eq(t->cells[40000][1], "Zed", "the new tag is named, not left out");
    cr_expect_str_eq(t->cells[39999][1], "Tokyo/VIP", "U39999: odd and a multiple of 3");
    table_free(t);
    seg_itest_finish();
}
