/* Tenant isolation on every documented route: each path under
 * /v1/channels/{channel_id}/ in services/segmentation/openapi.yaml, with
 * each of its methods, is called with a second tenant's admin token on the
 * first tenant's channel (its friend, tag, field, segment and template
 * named in the path), and must answer 404 and change nothing. The walk
 * reads the routes from the OpenAPI document, so a route added there is
 * walked without editing this test, and a route missing there is a
 * documentation bug the review catches. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "seg_itest.h"

#define CHANNEL "1600000101"
#define FRIEND "U0123456789abcdef0123456789abcdef"
/* Fewer documented channel routes than this means the walk read nothing
 * useful (a moved file, a changed layout): fail rather than pass empty. */
#define ROUTES_MIN 30

TestSuite(seg_tenancy, .timeout = 120, .fini = seg_itest_reap);

/* Replaces each {param} of path with a value that names one of tenant A's
 * objects, into out. */
static void path_fill(const char *path, const char *segment_id, const char *template_id, char *out,
                      size_t cap)
{
    size_t n = 0;
    for (const char *p = path; *p && n + 1 < cap;) {
        if (*p != '{') {
            out[n++] = *p++;
            continue;
        }
        const char *end = strchr(p, '}');
        cr_assert_not_null(end, "unclosed parameter in %s", path);
        size_t len = (size_t)(end - p + 1);
        const char *v = "x";
        if (strncmp(p, "{channel_id}", len) == 0)
            v = CHANNEL;
        else if (strncmp(p, "{user_id}", len) == 0)
            v = FRIEND;
        else if (strncmp(p, "{name}", len) == 0 || strncmp(p, "{tag}", len) == 0)
            v = "vip";
        else if (strncmp(p, "{id}", len) == 0 || strncmp(p, "{segment_id}", len) == 0)
            v = strstr(path, "/templates/") ? template_id : segment_id;
        n += (size_t)snprintf(out + n, cap - n, "%s", v);
        p = end + 1;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

/* Everything tenant A has, as one string, to compare before and after. */
static char *tenant_a_state(void)
{
    return itest_query_text(
        seg_itest_db(),
        "SELECT concat_ws('|', (SELECT count(*) FROM friends), (SELECT count(*) FROM tags), "
        "(SELECT count(*) FROM friend_tags), (SELECT count(*) FROM fields), "
        "(SELECT count(*) FROM friend_fields), (SELECT count(*) FROM segments), "
        "(SELECT count(*) FROM templates), (SELECT count(*) FROM talk), "
        "(SELECT count(*) FROM outbox), (SELECT string_agg(name || folder, ',') FROM tags), "
        "(SELECT string_agg(filter::text, ',') FROM segments))",
        0, NULL);
}

Test(seg_tenancy, every_channel_route_answers_404_to_another_tenant)
{
    seg_itest_start("tenancy", NULL);
    seg_itest_channel(CHANNEL, "tenant-a", "Asia/Tokyo");
    struct db *db = seg_itest_db();
    const char *friend[] = {CHANNEL, FRIEND};
    itest_exec_ok(db,
                  "INSERT INTO friends (channel_id, user_id, display_name, added_at) "
                  "VALUES ($1, $2, 'Aiko', now())",
                  2, friend);
    itest_exec_ok(db, "INSERT INTO tags (channel_id, name) VALUES ('" CHANNEL "', 'vip')", 0, NULL);
    itest_exec_ok(db,
                  "INSERT INTO friend_tags (tag_id, friend_id) SELECT t.id, f.id FROM tags t, "
                  "friends f",
                  0, NULL);
    itest_exec_ok(
        db, "INSERT INTO fields (channel_id, name, type) VALUES ('" CHANNEL "', 'vip', 'number')",
        0, NULL);
    char *segment_id =
        itest_query_text(db,
                         "INSERT INTO segments (channel_id, name, filter) VALUES ('" CHANNEL
                         "', 'vips', '{\"tag\":\"vip\"}') RETURNING id::text",
                         0, NULL);
    char *template_id =
        itest_query_text(db,
                         "INSERT INTO templates (channel_id, name, messages) VALUES ('" CHANNEL
                         "', 'hello', '[{\"type\":\"text\",\"text\":\"hi\"}]') RETURNING id::text",
                         0, NULL);
    char *before = tenant_a_state();

    FILE *f = fopen("services/segmentation/openapi.yaml", "r");
    cr_assert_not_null(f, "run the tests from the repository root");
    static const char prefix[] = "  /v1/channels/{channel_id}/";
    char line[1024];
    char path[1024] = "";
    int walked = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "  /", 3) == 0) {
            path[0] = '\0';
            if (strncmp(line, prefix, sizeof prefix - 1) == 0) {
                snprintf(path, sizeof path, "%s", line + 2);
                path[strcspn(path, ":")] = '\0';
            }
            continue;
        }
        static const char *const methods[] = {"get", "post", "put", "patch", "delete"};
        for (size_t m = 0; path[0] && m < sizeof methods / sizeof methods[0]; m++) {
            char want[32];
            snprintf(want, sizeof want, "    %s:", methods[m]);
            if (strncmp(line, want, strlen(want)) != 0)
                continue;
            char url[1536];
            path_fill(path, segment_id, template_id, url, sizeof url);
            char method[8];
            for (size_t i = 0; i <= strlen(methods[m]); i++)
                method[i] = (char)(methods[m][i] >= 'a' ? methods[m][i] - 32 : methods[m][i]);
            const char *body = m == 0 || m == 4 ? NULL : "{\"name\":\"x\",\"tag\":\"vip\"}";
            struct itest_http res;
            long status = seg_itest_call("tenant-b", "admin", method, url, body, &res);
            cr_expect_eq(status, 404, "%s %s as another tenant: %ld %s", method, url, status,
                         res.body);
            itest_http_free(&res);
            walked++;
        }
    }
    fclose(f);
    cr_expect_geq(walked, ROUTES_MIN, "walked only %d documented routes", walked);

    char *after = tenant_a_state();
    cr_expect_str_eq(after, before, "another tenant's calls changed tenant A's data");
    free(before);
    free(after);
    free(segment_id);
    free(template_id);
    seg_itest_finish();
}
