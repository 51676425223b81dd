#include "seg_itest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "auth.h"
#include "db.h"

static pid_t seg_pid;
static char seg_log[512];
static struct db *seg_db;

void seg_itest_start(const char *tag, const char *const *settings)
{
    struct db *admin = itest_db_connect_env("KIZUNA_PG_ADMIN_URL");
    itest_exec_ok(admin, "DROP SCHEMA IF EXISTS segmentation CASCADE", 0, NULL);
    itest_exec_ok(admin, "CREATE SCHEMA segmentation AUTHORIZATION kizuna_segmentation", 0, NULL);
    db_free(&admin);

    const char *all[32];
    size_t n = 0;
    static char port[64];
    snprintf(port, sizeof port, "SEGMENTATION_ADMIN_PORT=%d", SEG_ITEST_PORT);
    all[n++] = port;
    /* The schema was just dropped: the channels consumer must read the
     * compacted topic from its beginning again, so a group of its own. */
    static char channels_group[160];
    char group[128];
    itest_unique_name(group, sizeof group, "itest-seg-channels");
    snprintf(channels_group, sizeof channels_group, "SEGMENTATION_CHANNELS_GROUP=%s", group);
    all[n++] = channels_group;
    for (const char *const *s = settings; s && *s && n < 30; s++)
        all[n++] = *s;
    all[n] = NULL;
    snprintf(seg_log, sizeof seg_log, "%s/tests/seg-%s.log", itest_build_dir(), tag);
    seg_pid = itest_service_spawn("segmentation", all, seg_log);
    cr_assert(itest_http_wait_ready(SEG_ITEST_PORT, 30000), "segmentation not ready; see %s",
              seg_log);
    seg_db = itest_db_connect_env("SEGMENTATION_DATABASE_URL");
    itest_search_path_set(seg_db, "segmentation");
}

void seg_itest_finish(void)
{
    db_free(&seg_db);
    itest_service_stop(&seg_pid, seg_log);
    itest_log_expect_clean(seg_log, NULL);
}

void seg_itest_reap(void)
{
    db_free(&seg_db);
    itest_service_reap(&seg_pid);
}

void seg_itest_channel(const char *channel_id, const char *tenant, const char *tz)
{
    const char *params[] = {channel_id, tenant, tz};
    itest_exec_ok(seg_db,
                  "INSERT INTO channels (channel_id, tenant_id, timezone) VALUES ($1, $2, $3) "
                  "ON CONFLICT (channel_id) DO UPDATE SET tenant_id = $2, timezone = $3, "
                  "deleted = false",
                  3, params);
}

long seg_itest_call(const char *tenant, const char *role, const char *method, const char *path,
                    const char *json_body, struct itest_http *res)
{
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *token = auth_token_issue(jwt, strlen(jwt), tenant, "itest", role, 3600, time(NULL));
    cr_assert_not_null(token);
    char url[1024], auth[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", SEG_ITEST_PORT, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    free(token);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct itest_http local;
    struct itest_http *out = res ? res : &local;
    long status =
        itest_http_do(method, url, headers, json_body, json_body ? strlen(json_body) : 0, out);
    if (!res)
        itest_http_free(&local);
    return status;
}

struct db *seg_itest_db(void)
{
    return seg_db;
}

long seg_itest_call_body(const char *tenant, const char *role, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len,
                         struct itest_http *res)
{
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *token = auth_token_issue(jwt, strlen(jwt), tenant, "itest", role, 3600, time(NULL));
    cr_assert_not_null(token);
    char url[1024], auth[4200], ct[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", SEG_ITEST_PORT, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    free(token);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
    const char *headers[] = {auth, content_type ? ct : NULL, NULL};
    struct itest_http local;
    struct itest_http *out = res ? res : &local;
    long status = itest_http_do(method, url, headers, body, len, out);
    if (!res)
        itest_http_free(&local);
    return status;
}
