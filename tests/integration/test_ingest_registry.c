/* The channel registry (services/ingest/registry.h) against the real
 * PostgreSQL and Kafka of the local stack. The registry runs in-process
 * behind a real httpd on a free port, whose handler checks the admin JWT the
 * way common/service.c does and hands /v1 to registry_api, and the tests
 * talk HTTP to it with libcurl. Each test gets a scratch schema owned by the
 * ingest role with services/ingest/migrations applied, reached through the
 * connection's search_path, so runs never see each other's rows; channel
 * ids are unique per run, so records on the shared `channels` topic can be
 * told apart. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ingest/registry.h"
#include "auth.h"
#include "crypto.h"
#include "db.h"
#include "httpd.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "log.h"
#include "outbox.h"

#define MIGRATIONS "services/ingest/migrations"
#define JWT_KEY "registry-test-jwt-key-0123456789abcdef" /* >= AUTH_KEY_MIN */
#define CONSUME_TIMEOUT_MS 30000

static const uint8_t data_key[CRYPTO_KEY_LEN] = {
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f,
    0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};

static const char SECRET[] = "8c570fa6dd201bb328f1c1eac23a96d8";
static const char SECRET2[] = "0123456789abcdef0123456789abcdef";
static const char TOKEN[] = "tok-AAAA.long-lived-access-token/with+base64=chars";
static const char TOKEN2[] = "tok-BBBB.rotated-access-token";
static const char BOT[] = "U8e742f61d673b39c7fff3cecb7536ef0";

static struct db *admin;
static struct db *ingest; /* search_path = scratch */
static char scratch[64];
static char *scratch_url;
static struct registry *reg;
static struct httpd *server;
static int port;

/* --- stack ------------------------------------------------------------------ */

/* The handler the real service puts in front of registry_api: a valid
 * admin JWT, then the registry for /v1/channels. */
static void admin_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct auth_claims claims;
    enum auth_result r = auth_header_verify(
        JWT_KEY, strlen(JWT_KEY), httpd_request_header(req, "Authorization"), time(NULL), &claims);
    if (r != AUTH_OK) {
        httpd_respond_error(resp, 401, "unauthorized", auth_result_str(r), "Authorization");
        return;
    }
    registry_api(ctx, &claims, req, resp);
}

static void setup(void)
{
    log_init("test-registry", LOG_WARN);
    /* LINE, as the registry's ownership check asks it: both test tokens
     * belong to bot BOT (any number of registry channels may share one;
     * test_ingest_owner.c covers the refusals). */
    itest_sim_start("ingest-registry");
    itest_sim_channel_add("1", TOKEN, BOT);
    itest_sim_channel_add("1", TOKEN2, BOT);
    const char *url = itest_env("INGEST_DATABASE_URL");
    admin = itest_db_connect(itest_env("KIZUNA_PG_ADMIN_URL"));
    ingest = itest_db_connect(url);
    snprintf(scratch, sizeof scratch, "kz_test_reg_%ld", (long)getpid());
    itest_schema_create(admin, ingest, scratch);
    char errstr[256];
    int n = db_migrate(ingest, scratch, MIGRATIONS, errstr, sizeof errstr);
    cr_assert_geq(n, 2, "ingest migrations: %s (run the tests from the repository root)", errstr);
    db_free(&ingest);

    /* Every connection of the registry lands in the scratch schema. */
    size_t cap = strlen(url) + 128;
    scratch_url = malloc(cap);
    snprintf(scratch_url, cap, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?',
             scratch);
    ingest = itest_db_connect(scratch_url);

    reg = registry_new(scratch_url, data_key, ITEST_SIM_BASE, errstr, sizeof errstr);
    cr_assert_not_null(reg, "registry_new: %s", errstr);
    struct httpd_options opts = {
        .name = "admin-test", .port = 0, .handler = admin_handler, .ctx = reg, .threads = 2};
    server = httpd_start(&opts, errstr, sizeof errstr);
    cr_assert_not_null(server, "httpd_start: %s", errstr);
    port = httpd_port(server);
}

static void teardown(void)
{
    httpd_stop(&server);
    registry_free(&reg);
    db_free(&ingest);
    itest_schema_drop(admin, scratch);
    db_free(&admin);
    free(scratch_url);
    scratch_url = NULL;
    itest_sim_reap();
}

TestSuite(ingest_registry, .init = setup, .fini = teardown, .timeout = 90);

/* A channel id no other run uses (see itest_unique_digits). */
static void unique_channel_id(char out[21])
{
    itest_unique_digits(out, 21, '9');
}

/* --- HTTP ------------------------------------------------------------------- */

static char *token_for(const char *tenant, const char *role)
{
    char *t = auth_token_issue(JWT_KEY, strlen(JWT_KEY), tenant, "tester", role, 600, time(NULL));
    cr_assert_not_null(t);
    return t;
}

/* One request; content_type NULL sends none. body may hold any bytes. */
static struct itest_http http_call(const char *method, const char *path, const char *tenant,
                                   const char *role, const char *content_type, const char *body,
                                   size_t len)
{
    struct itest_http rep;
    char url[512], auth[2048], ctype[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    /* An empty "Content-Type:" makes curl send none at all. */
    snprintf(ctype, sizeof ctype, "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    const char *headers[] = {ctype, NULL, NULL};
    char *token = tenant ? token_for(tenant, role) : NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers[1] = auth;
    }
    itest_http_do(method, url, headers, body, len, &rep);
    free(token);
    cr_assert_neq(rep.status, 0, "%s %s: %s", method, path, rep.error);
    return rep;
}

static struct itest_http http_json(const char *method, const char *path, const char *tenant,
                                   const char *role, const char *body)
{
    return http_call(method, path, tenant, role, "application/json", body, body ? strlen(body) : 0);
}

static const char *json_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    cr_assert_not_null(v, "no string %s in response", key);
    return v;
}

static long long json_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_integer(v), "no integer %s in response", key);
    return json_integer_value(v);
}

/* The body of a good POST for channel id. */
static char *create_body(const char *channel_id, const char *name, const char *secret,
                         const char *token)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "channel_id", channel_id, "name",
                          name, "channel_secret", secret, "access_token", token, "bot_user_id", BOT,
                          "timezone", "Asia/Tokyo", "monthly_quota", 15000);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void create_channel(const char *tenant, const char *channel_id, const char *secret,
                           const char *token)
{
    char *body = create_body(channel_id, "Shop", secret, token);
    struct itest_http rep = http_json("POST", "/v1/channels", tenant, "operator", body);
    cr_assert_eq(rep.status, 201, "create %s: %ld %s", channel_id, rep.status, rep.body);
    free(body);
    itest_http_free(&rep);
}

static void assert_no_secrets(const char *where, const char *text, size_t len)
{
    const char *secrets[] = {SECRET, SECRET2, TOKEN, TOKEN2};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        cr_assert_null(memmem(text, len, secrets[i], strlen(secrets[i])),
                       "%s contains a plaintext secret", where);
}

static void assert_error(const struct itest_http *rep, long status, const char *code,
                         const char *field, const char *what)
{
    cr_assert_eq(rep->status, status, "%s: status %ld, want %ld (%s)", what, rep->status, status,
                 rep->body ? rep->body : "");
    json_t *err = json_object_get(rep->json, "error");
    cr_assert(json_is_object(err), "%s: no error object in %s", what, rep->body);
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), code, "%s: %s", what,
                     rep->body);
    cr_assert_not_null(json_string_value(json_object_get(err, "message")), "%s", what);
    json_t *f = json_object_get(err, "field");
    if (field)
        cr_assert_str_eq(json_string_value(f), field, "%s: %s", what, rep->body);
    else
        cr_assert(!f || json_is_null(f), "%s: unexpected field in %s", what, rep->body);
}

static long long count_rows(const char *sql)
{
    struct db_result *r = NULL;
    cr_assert_eq(db_exec(ingest, sql, 0, NULL, &r), DB_OK, "%s: %s", sql, db_error_message(ingest));
    long long n = strtoll(db_result_value(r, 0, 0), NULL, 10);
    db_result_free(&r);
    return n;
}

/* --- the `channels` topic ------------------------------------------------------ */

#define MAX_RECORDS 8

struct topic_probe {
    char key[32];
    int want;
    int n;
    uint8_t *raw[MAX_RECORDS];
    size_t rawlen[MAX_RECORDS];
    Kizuna__V1__ChannelConfig *cfg[MAX_RECORDS];
};

static enum kafka_handled probe_handle(void *ctx, const struct kafka_message *msg)
{
    struct topic_probe *p = ctx;
    if (msg->keylen != strlen(p->key) || memcmp(msg->key, p->key, msg->keylen) != 0)
        return KAFKA_DONE;
    cr_assert_lt(p->n, MAX_RECORDS, "too many records for %s", p->key);
    cr_assert_not_null(msg->value, "a null value (tombstone) for %s", p->key);
    p->raw[p->n] = malloc(msg->len ? msg->len : 1);
    memcpy(p->raw[p->n], msg->value, msg->len);
    p->rawlen[p->n] = msg->len;
    p->cfg[p->n] = kizuna__v1__channel_config__unpack(NULL, msg->len, msg->value);
    cr_assert_not_null(p->cfg[p->n], "record %d for %s is not a ChannelConfig", p->n, p->key);
    p->n++;
    return KAFKA_DONE;
}

static int relay_all(void)
{
    struct kafka_producer *producer = itest_producer_new("test-registry");
    int total = 0;
    for (int round = 0; round < 20 && count_rows("SELECT count(*) FROM outbox") > 0; round++) {
        int n = outbox_relay_once(ingest, producer, 100, 2000);
        cr_assert_geq(n, 0, "outbox_relay_once failed");
        total += n;
    }
    cr_assert_eq(count_rows("SELECT count(*) FROM outbox"), 0, "the outbox did not drain");
    kafka_producer_free(&producer);
    return total;
}

static bool probe_full(void *ctx)
{
    const struct topic_probe *p = ctx;
    return p->n >= p->want;
}

static void consume_records(struct topic_probe *p)
{
    itest_topic_read("channels", probe_handle, probe_full, p, CONSUME_TIMEOUT_MS);
    cr_assert_eq(p->n, p->want, "saw %d of %d records for %s on `channels`", p->n, p->want, p->key);
}

static void probe_free(struct topic_probe *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->raw[i]);
        kizuna__v1__channel_config__free_unpacked(p->cfg[i], NULL);
    }
}

/* --- good flows ------------------------------------------------------------------ */

Test(ingest_registry, create_answers_201_with_fingerprints_and_never_the_secrets)
{
    char id[21], path[64];
    unique_channel_id(id);
    char *body = create_body(id, "Shop Tokyo", SECRET, TOKEN);
    struct itest_http rep = http_json("POST", "/v1/channels", "acme", "operator", body);
    free(body);
    cr_assert_eq(rep.status, 201, "%ld %s", rep.status, rep.body);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    cr_assert_str_eq(rep.location, path);
    cr_assert_str_eq(json_str(rep.json, "channel_id"), id);
    cr_assert_str_eq(json_str(rep.json, "name"), "Shop Tokyo");
    cr_assert_str_eq(json_str(rep.json, "bot_user_id"), BOT);
    cr_assert_str_eq(json_str(rep.json, "timezone"), "Asia/Tokyo");
    cr_assert_eq(json_int(rep.json, "monthly_quota"), 15000);
    cr_assert_eq(json_int(rep.json, "version"), 1);
    cr_assert_eq(strlen(json_str(rep.json, "secret_fingerprint")), 8);
    cr_assert_eq(strlen(json_str(rep.json, "access_token_fingerprint")), 8);
    cr_assert_str_neq(json_str(rep.json, "secret_fingerprint"),
                      json_str(rep.json, "access_token_fingerprint"));
    cr_assert_null(json_object_get(rep.json, "channel_secret"));
    cr_assert_null(json_object_get(rep.json, "access_token"));
    cr_assert_eq(strlen(json_str(rep.json, "created_at")), strlen("2025-01-01T00:00:00.000Z"));
    assert_no_secrets("the 201 body", rep.body, rep.len);
    char *created = json_dumps(rep.json, JSON_SORT_KEYS);
    itest_http_free(&rep);

    rep = http_json("GET", path, "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    char *got = json_dumps(rep.json, JSON_SORT_KEYS);
    cr_assert_str_eq(got, created, "GET shows what POST answered");
    assert_no_secrets("the GET body", rep.body, rep.len);
    free(got);
    free(created);
    itest_http_free(&rep);
}

Test(ingest_registry, timezone_defaults_to_tokyo_and_quota_to_zero)
{
    char id[21], body[512];
    unique_channel_id(id);
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"name\":\"n\",\"channel_secret\":\"%s\","
             "\"access_token\":\"%s\",\"bot_user_id\":\"%s\"}",
             id, SECRET, TOKEN, BOT);
    struct itest_http rep = http_json("POST", "/v1/channels", "acme", "admin", body);
    cr_assert_eq(rep.status, 201, "%ld %s", rep.status, rep.body);
    cr_assert_str_eq(json_str(rep.json, "timezone"), "Asia/Tokyo");
    cr_assert_eq(json_int(rep.json, "monthly_quota"), 0);
    itest_http_free(&rep);
}

Test(ingest_registry, list_pages_through_the_tenants_channels_only)
{
    char ids[3][21], other[21];
    for (int i = 0; i < 3; i++) {
        unique_channel_id(ids[i]);
        create_channel("acme", ids[i], SECRET, TOKEN);
    }
    unique_channel_id(other);
    create_channel("globex", other, SECRET, TOKEN);

    struct itest_http rep = http_json("GET", "/v1/channels?limit=2", "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    json_t *list = json_object_get(rep.json, "channels");
    cr_assert_eq(json_array_size(list), 2);
    cr_assert_str_eq(json_str(json_array_get(list, 0), "channel_id"), ids[0]);
    cr_assert_str_eq(json_str(json_array_get(list, 1), "channel_id"), ids[1]);
    char path[128];
    snprintf(path, sizeof path, "/v1/channels?limit=2&cursor=%s",
             json_str(rep.json, "next_cursor"));
    assert_no_secrets("the list", rep.body, rep.len);
    itest_http_free(&rep);

    rep = http_json("GET", path, "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    list = json_object_get(rep.json, "channels");
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_str(json_array_get(list, 0), "channel_id"), ids[2]);
    cr_assert(json_is_null(json_object_get(rep.json, "next_cursor")));
    itest_http_free(&rep);

    rep = http_json("GET", "/v1/channels", "globex", "viewer", NULL);
    list = json_object_get(rep.json, "channels");
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_str(json_array_get(list, 0), "channel_id"), other);
    itest_http_free(&rep);

    rep = http_json("GET", "/v1/channels", "initech", "viewer", NULL);
    cr_assert_eq(rep.status, 200);
    cr_assert_eq(json_array_size(json_object_get(rep.json, "channels")), 0);
    itest_http_free(&rep);
}

Test(ingest_registry, patch_changes_only_the_given_fields_and_bumps_the_version)
{
    char id[21], path[64];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    struct itest_http before = http_json("GET", path, "acme", "viewer", NULL);

    struct itest_http rep = http_json("PATCH", path, "acme", "operator",
                                      "{\"name\":\"Renamed\",\"monthly_quota\":0,"
                                      "\"timezone\":\"America/Los_Angeles\"}");
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    cr_assert_str_eq(json_str(rep.json, "name"), "Renamed");
    cr_assert_str_eq(json_str(rep.json, "timezone"), "America/Los_Angeles");
    cr_assert_eq(json_int(rep.json, "monthly_quota"), 0);
    cr_assert_eq(json_int(rep.json, "version"), 2);
    cr_assert_str_eq(json_str(rep.json, "bot_user_id"), BOT);
    cr_assert_str_eq(json_str(rep.json, "secret_fingerprint"),
                     json_str(before.json, "secret_fingerprint"), "secret untouched");
    cr_assert_str_eq(json_str(rep.json, "created_at"), json_str(before.json, "created_at"));
    itest_http_free(&rep);
    itest_http_free(&before);

    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 0);
    cr_assert_eq(view.secret_len, strlen(SECRET));
    cr_assert_eq(memcmp(view.secret, SECRET, view.secret_len), 0);
}

Test(ingest_registry, rotating_the_secret_changes_fingerprint_and_lookup_at_once)
{
    char id[21], path[64], body[256];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);

    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 0); /* now cached */
    cr_assert_eq(memcmp(view.secret, SECRET, view.secret_len), 0);
    struct itest_http before = http_json("GET", path, "acme", "viewer", NULL);

    snprintf(body, sizeof body, "{\"channel_secret\":\"%s\",\"access_token\":\"%s\"}", SECRET2,
             TOKEN2);
    struct itest_http rep = http_json("PATCH", path, "acme", "operator", body);
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    cr_assert_str_neq(json_str(rep.json, "secret_fingerprint"),
                      json_str(before.json, "secret_fingerprint"));
    cr_assert_str_neq(json_str(rep.json, "access_token_fingerprint"),
                      json_str(before.json, "access_token_fingerprint"));
    assert_no_secrets("the PATCH body", rep.body, rep.len);
    itest_http_free(&rep);
    itest_http_free(&before);

    /* This process's cache forgot the old secret when the change committed. */
    cr_assert_eq(registry_lookup(reg, id, &view), 0);
    cr_assert_eq(view.secret_len, strlen(SECRET2));
    cr_assert_eq(memcmp(view.secret, SECRET2, view.secret_len), 0);
}

Test(ingest_registry, delete_answers_204_then_the_channel_is_gone_and_can_be_registered_again)
{
    char id[21], path[64];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 0);

    struct itest_http rep = http_json("DELETE", path, "acme", "operator", NULL);
    cr_assert_eq(rep.status, 204, "%ld %s", rep.status, rep.body);
    cr_assert_eq(rep.len, 0);
    itest_http_free(&rep);
    cr_assert_eq(registry_lookup(reg, id, &view), 1, "deleted: the webhook path sees no channel");
    rep = http_json("GET", path, "acme", "viewer", NULL);
    assert_error(&rep, 404, "not_found", NULL, "GET after DELETE");
    itest_http_free(&rep);
    rep = http_json("DELETE", path, "acme", "operator", NULL);
    assert_error(&rep, 404, "not_found", NULL, "DELETE twice");
    itest_http_free(&rep);

    /* The LINE channel may move to another tenant; versions keep rising. */
    char *body = create_body(id, "Moved", SECRET2, TOKEN2);
    rep = http_json("POST", "/v1/channels", "globex", "operator", body);
    free(body);
    cr_assert_eq(rep.status, 201, "%ld %s", rep.status, rep.body);
    cr_assert_eq(json_int(rep.json, "version"), 3);
    itest_http_free(&rep);
    cr_assert_eq(registry_lookup(reg, id, &view), 0);
    cr_assert_str_eq(view.tenant_id, "globex");
    cr_assert_eq(memcmp(view.secret, SECRET2, view.secret_len), 0);
}

Test(ingest_registry, every_change_is_published_to_channels_with_the_token_still_sealed)
{
    char id[21], path[64], body[256];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    snprintf(body, sizeof body, "{\"access_token\":\"%s\",\"name\":\"Two\"}", TOKEN2);
    struct itest_http rep = http_json("PATCH", path, "acme", "operator", body);
    cr_assert_eq(rep.status, 200, "%ld %s", rep.status, rep.body);
    char secret_fp[16];
    snprintf(secret_fp, sizeof secret_fp, "%s", json_str(rep.json, "secret_fingerprint"));
    itest_http_free(&rep);
    rep = http_json("DELETE", path, "acme", "operator", NULL);
    cr_assert_eq(rep.status, 204);
    itest_http_free(&rep);

    /* The outbox holds exactly the committed changes; the relay drains it. */
    cr_assert_eq(count_rows("SELECT count(*) FROM outbox WHERE topic = 'channels'"), 3);
    cr_assert_eq(relay_all(), 3);

    struct topic_probe probe = {.want = 3};
    snprintf(probe.key, sizeof probe.key, "%s", id);
    consume_records(&probe);
    const char *tokens[] = {TOKEN, TOKEN2, TOKEN2};
    char aad[160];
    int aadlen = snprintf(aad, sizeof aad, "acme/%s", id);
    for (int i = 0; i < 3; i++) {
        Kizuna__V1__ChannelConfig *cfg = probe.cfg[i];
        assert_no_secrets("a `channels` record", (const char *)probe.raw[i], probe.rawlen[i]);
        cr_assert_eq(cfg->version, i + 1, "record %d has version %lld", i, (long long)cfg->version);
        cr_assert_str_eq(cfg->channel_id, id);
        cr_assert_str_eq(cfg->tenant_id, "acme");
        cr_assert_str_eq(cfg->bot_user_id, BOT);
        cr_assert_str_eq(cfg->timezone, "Asia/Tokyo");
        cr_assert_eq(cfg->monthly_quota, 15000);
        cr_assert_str_eq(cfg->name, i == 0 ? "Shop" : "Two");
        cr_assert_eq(cfg->deleted, i == 2);
        cr_assert_str_eq(cfg->secret_fingerprint, secret_fp);
        cr_assert_gt(cfg->updated_at, 1700000000000LL);
        cr_assert_not_null(cfg->envelope);
        cr_assert_eq(strlen(cfg->envelope->event_id), 36);
        cr_assert_str_eq(cfg->envelope->tenant_id, "acme");
        cr_assert_str_eq(cfg->envelope->channel_id, id);
        cr_assert_eq(cfg->envelope->occurred_at, cfg->updated_at);

        /* The dispatcher's view: the data key and "<tenant>/<channel>". */
        uint8_t plain[256];
        long n = crypto_open(data_key, aad, (size_t)aadlen, cfg->access_token_sealed.data,
                             cfg->access_token_sealed.len, plain, sizeof plain);
        cr_assert_eq(n, (long)strlen(tokens[i]), "record %d: the token does not open", i);
        cr_assert_eq(memcmp(plain, tokens[i], (size_t)n), 0);
        n = crypto_open(data_key, id, strlen(id), cfg->access_token_sealed.data,
                        cfg->access_token_sealed.len, plain, sizeof plain);
        cr_assert_eq(n, -1, "bound to tenant and channel, not the channel alone");
    }
    cr_assert_str_neq(probe.cfg[0]->envelope->event_id, probe.cfg[1]->envelope->event_id);
    probe_free(&probe);
}

Test(ingest_registry, another_tenants_channel_answers_404_and_a_taken_id_409)
{
    char id[21], path[64];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);

    struct itest_http rep = http_json("GET", path, "globex", "admin", NULL);
    assert_error(&rep, 404, "not_found", NULL, "GET another tenant's");
    itest_http_free(&rep);
    rep = http_json("PATCH", path, "globex", "admin", "{\"name\":\"mine now\"}");
    assert_error(&rep, 404, "not_found", NULL, "PATCH another tenant's");
    itest_http_free(&rep);
    rep = http_json("DELETE", path, "globex", "admin", NULL);
    assert_error(&rep, 404, "not_found", NULL, "DELETE another tenant's");
    itest_http_free(&rep);

    char *body = create_body(id, "Squatter", SECRET2, TOKEN2);
    rep = http_json("POST", "/v1/channels", "globex", "admin", body);
    assert_error(&rep, 409, "conflict", "channel_id", "POST a taken id from another tenant");
    cr_assert_null(strstr(rep.body, "acme"), "409 must not reveal the owner");
    cr_assert_null(strstr(rep.body, "Shop"), "409 must not reveal the owner's data");
    itest_http_free(&rep);
    rep = http_json("POST", "/v1/channels", "acme", "admin", body);
    assert_error(&rep, 409, "conflict", "channel_id", "POST a taken id from the same tenant");
    itest_http_free(&rep);
    free(body);

    /* Nothing changed for the owner. */
    rep = http_json("GET", path, "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200);
    cr_assert_str_eq(json_str(rep.json, "name"), "Shop");
    cr_assert_eq(json_int(rep.json, "version"), 1);
    itest_http_free(&rep);
    cr_assert_eq(count_rows("SELECT count(*) FROM outbox"), 1, "only the create was published");
}

Test(ingest_registry, viewer_may_read_but_not_change)
{
    char id[21], path[64];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    struct itest_http rep = http_json("GET", path, "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200);
    itest_http_free(&rep);
    char other[21];
    unique_channel_id(other);
    char *body = create_body(other, "x", SECRET, TOKEN);
    rep = http_json("POST", "/v1/channels", "acme", "viewer", body);
    free(body);
    assert_error(&rep, 403, "forbidden", NULL, "viewer POST");
    itest_http_free(&rep);
    rep = http_json("PATCH", path, "acme", "viewer", "{\"name\":\"x\"}");
    assert_error(&rep, 403, "forbidden", NULL, "viewer PATCH");
    itest_http_free(&rep);
    rep = http_json("DELETE", path, "acme", "viewer", NULL);
    assert_error(&rep, 403, "forbidden", NULL, "viewer DELETE");
    itest_http_free(&rep);
    cr_assert_eq(count_rows("SELECT count(*) FROM channels"), 1);
}

Test(ingest_registry, lookup_returns_the_opened_secret_and_1_for_unknown_ids)
{
    char id[21], unknown[21];
    unique_channel_id(id);
    unique_channel_id(unknown);
    create_channel("acme", id, SECRET, TOKEN);
    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 0);
    cr_assert_str_eq(view.tenant_id, "acme");
    cr_assert_str_eq(view.channel_id, id);
    cr_assert_str_eq(view.bot_user_id, BOT);
    cr_assert_eq(view.secret_len, strlen(SECRET));
    cr_assert_eq(memcmp(view.secret, SECRET, view.secret_len), 0);
    cr_assert_eq(registry_lookup(reg, unknown, &view), 1);
    cr_assert_eq(registry_lookup(reg, "", &view), 1);
    cr_assert_eq(registry_lookup(reg, "12ab", &view), 1);
    cr_assert_eq(registry_lookup(reg, "1'; DROP TABLE channels; --", &view), 1);
    cr_assert_eq(registry_lookup(reg, "123456789012345678901", &view), 1);
}

Test(ingest_registry, secrets_at_rest_are_sealed_not_plaintext)
{
    char id[21];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    const char *params[] = {id};
    struct db_result *r = NULL;
    cr_assert_eq(db_execv(ingest,
                          "SELECT secret_sealed, access_token_sealed, tenant_id FROM channels "
                          "WHERE channel_id = $1",
                          1, params, NULL, NULL, true, &r),
                 DB_OK);
    cr_assert_eq(db_result_rows(r), 1);
    const char *secrets[] = {SECRET, TOKEN};
    char aad[160];
    int aadlen = snprintf(aad, sizeof aad, "acme/%s", id);
    for (int col = 0; col < 2; col++) {
        const uint8_t *box = (const uint8_t *)db_result_value(r, 0, col);
        size_t len = db_result_length(r, 0, col);
        cr_assert_eq(len, strlen(secrets[col]) + CRYPTO_SEAL_OVERHEAD);
        cr_assert_null(memmem(box, len, secrets[col], strlen(secrets[col])));
        uint8_t plain[256];
        long n = crypto_open(data_key, aad, (size_t)aadlen, box, len, plain, sizeof plain);
        cr_assert_eq(n, (long)strlen(secrets[col]));
        cr_assert_eq(memcmp(plain, secrets[col], (size_t)n), 0);
        char other_aad[160];
        int olen = snprintf(other_aad, sizeof other_aad, "globex/%s", id);
        cr_assert_eq(crypto_open(data_key, other_aad, (size_t)olen, box, len, plain, sizeof plain),
                     -1, "a box moved to another tenant's row does not open");
    }
    db_result_free(&r);
    char *dump = NULL;
    cr_assert_eq(db_exec(ingest, "SELECT row_to_json(c)::text FROM channels c", 0, NULL, &r),
                 DB_OK);
    dump = strdup(db_result_value(r, 0, 0));
    db_result_free(&r);
    assert_no_secrets("the channels row", dump, strlen(dump));
    free(dump);
}

Test(ingest_registry, cached_lookups_do_not_touch_the_database)
{
    char id[21];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 0);
    /* Pull the rows from under the registry: a hit must not notice. */
    cr_assert_eq(db_exec(ingest, "ALTER TABLE channels RENAME TO channels_away", 0, NULL, NULL),
                 DB_OK, "%s", db_error_message(ingest));
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(registry_lookup(reg, id, &view), 0);
    cr_assert_eq(memcmp(view.secret, SECRET, view.secret_len), 0);

    /* Past the TTL the refill fails; a known channel is then served from
     * its expired entry rather than refused. */
    usleep(5200 * 1000);
    cr_assert_eq(registry_lookup(reg, id, &view), 0, "stale entry served while the refill fails");
    cr_assert_eq(memcmp(view.secret, SECRET, view.secret_len), 0);
    char unknown[21];
    unique_channel_id(unknown);
    cr_assert_lt(registry_lookup(reg, unknown, &view), 0, "nothing cached and no database: < 0");
    cr_assert_eq(db_exec(ingest, "ALTER TABLE channels_away RENAME TO channels", 0, NULL, NULL),
                 DB_OK);
}

Test(ingest_registry, unknown_ids_are_cached_briefly)
{
    char id[21];
    unique_channel_id(id);
    struct channel_view view;
    cr_assert_eq(registry_lookup(reg, id, &view), 1);
    /* Created behind the registry's back (as another replica would). */
    create_channel("acme", id, SECRET, TOKEN);
    cr_assert_eq(registry_lookup(reg, id, &view), 0,
                 "this process's API forgets its cache entry on commit");

    char other[21];
    unique_channel_id(other);
    cr_assert_eq(registry_lookup(reg, other, &view), 1);
    const char *params[] = {other, id};
    cr_assert_eq(db_exec(ingest,
                         "INSERT INTO channels (tenant_id, channel_id, name, secret_sealed, "
                         "access_token_sealed, bot_user_id) SELECT tenant_id, $1, name, "
                         "secret_sealed, access_token_sealed, bot_user_id FROM channels WHERE "
                         "channel_id = $2",
                         2, params, NULL),
                 DB_OK, "%s", db_error_message(ingest));
    cr_assert_eq(registry_lookup(reg, other, &view), 1, "the negative entry still holds");
    usleep(2200 * 1000);
    /* The copied box is bound to the first channel id: it must not open. */
    cr_assert_lt(registry_lookup(reg, other, &view), 0,
                 "a sealed secret moved to another channel's row is refused");
}

Test(ingest_registry, logs_name_tenant_and_channel_but_never_secrets)
{
    char logpath[] = "/tmp/kz-registry-log-XXXXXX";
    int fd = mkstemp(logpath);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_init("test-registry", LOG_DEBUG);

    char id[21], path[64], body[256];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    snprintf(path, sizeof path, "/v1/channels/%s", id);
    snprintf(body, sizeof body, "{\"channel_secret\":\"%s\",\"access_token\":\"%s\"}", SECRET2,
             TOKEN2);
    struct itest_http rep = http_json("PATCH", path, "acme", "operator", body);
    cr_assert_eq(rep.status, 200);
    itest_http_free(&rep);
    /* A refused body must not be echoed into the log either. */
    snprintf(body, sizeof body, "{\"channel_secret\":\"%s\",\"access_token\":%s}", SECRET2, TOKEN2);
    rep = http_json("PATCH", path, "acme", "operator", body);
    cr_assert_eq(rep.status, 400);
    assert_no_secrets("a 400 body", rep.body, rep.len);
    itest_http_free(&rep);
    rep = http_json("DELETE", path, "acme", "operator", NULL);
    itest_http_free(&rep);
    struct channel_view view;
    registry_lookup(reg, id, &view);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    cr_assert_eq(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    unlink(logpath);
    assert_no_secrets("the log", text, (size_t)size);
    char want[128];
    snprintf(want, sizeof want, "\"channel\":\"%s\"", id);
    cr_assert_not_null(strstr(text, want), "the log names the channel: %s", text);
    cr_assert_not_null(strstr(text, "\"tenant\":\"acme\""), "the log names the tenant: %s", text);
    cr_assert_not_null(strstr(text, "channel created"), "%s", text);
    cr_assert_not_null(strstr(text, "channel deleted"), "%s", text);
    free(text);
}

/* --- bad input --------------------------------------------------------------------- */

struct bad_case {
    const char *what;
    const char *method;
    const char *path; /* "{id}" is replaced by an existing channel's id */
    const char *role;
    const char *content_type; /* NULL: none */
    const char *body;         /* NULL: none; "@big" a 20 KiB body; "@badutf8" */
    long status;
    const char *code;
    const char *field; /* NULL: none */
    const char *allow; /* expected Allow header, or NULL */
};

#define GOOD_REST                                                              \
    "\"name\":\"n\",\"channel_secret\":\"s3cr3t\",\"access_token\":\"t0k3n\"," \
    "\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\""
#define CREATE(extra) "{\"channel_id\":\"1234567890\"," GOOD_REST extra "}"

static const struct bad_case bad_cases[] = {
    {"malformed JSON", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":", 400, "invalid_json", NULL, NULL},
    {"invalid UTF-8", "POST", "/v1/channels", "operator", "application/json", "@badutf8", 400,
     "invalid_utf8", NULL, NULL},
    {"not an object", "POST", "/v1/channels", "operator", "application/json", "[1,2]", 400,
     "invalid_json", NULL, NULL},
    {"empty body", "POST", "/v1/channels", "operator", "application/json", "", 400, "invalid_json",
     NULL, NULL},
    {"duplicate key", "POST", "/v1/channels", "operator", "application/json",
     "{\"name\":\"a\",\"name\":\"b\"}", 400, "invalid_json", NULL, NULL},
    {"channel_id a number", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":1234567890," GOOD_REST "}", 400, "invalid_type", "channel_id", NULL},
    {"channel_id not digits", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"12ab\"," GOOD_REST "}", 400, "invalid_value", "channel_id", NULL},
    {"channel_id too long", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"123456789012345678901\"," GOOD_REST "}", 400, "too_long", "channel_id",
     NULL},
    {"channel_id missing", "POST", "/v1/channels", "operator", "application/json",
     "{" GOOD_REST "}", 400, "missing_field", "channel_id", NULL},
    {"channel_secret missing", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"n\",\"access_token\":\"t\","
     "\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\"}",
     400, "missing_field", "channel_secret", NULL},
    {"channel_secret with a space", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"n\",\"channel_secret\":\"a b\",\"access_token\":\"t\","
     "\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\"}",
     400, "invalid_value", "channel_secret", NULL},
    {"name empty", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"\",\"channel_secret\":\"s\",\"access_token\":\"t\","
     "\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\"}",
     400, "invalid_value", "name", NULL},
    {"name with a control character", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"a\\u0007b\",\"channel_secret\":\"s\",\"access_token\":"
     "\"t\",\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\"}",
     400, "invalid_value", "name", NULL},
    {"name with NUL", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"a\\u0000b\",\"channel_secret\":\"s\",\"access_token\":"
     "\"t\",\"bot_user_id\":\"U8e742f61d673b39c7fff3cecb7536ef0\"}",
     400, "invalid_json", NULL, NULL},
    {"bot_user_id malformed", "POST", "/v1/channels", "operator", "application/json",
     "{\"channel_id\":\"1\",\"name\":\"n\",\"channel_secret\":\"s\",\"access_token\":\"t\","
     "\"bot_user_id\":\"Ubot\"}",
     400, "invalid_value", "bot_user_id", NULL},
    {"monthly_quota negative", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"monthly_quota\":-1"), 400, "invalid_value", "monthly_quota", NULL},
    {"monthly_quota a real", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"monthly_quota\":1.5"), 400, "invalid_type", "monthly_quota", NULL},
    {"monthly_quota a string", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"monthly_quota\":\"10\""), 400, "invalid_type", "monthly_quota", NULL},
    {"timezone unknown", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"timezone\":\"Mars/Olympus_Mons\""), 400, "invalid_value", "timezone", NULL},
    {"timezone path traversal", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"timezone\":\"../../../etc/passwd\""), 400, "invalid_value", "timezone", NULL},
    {"timezone a folder", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"timezone\":\"Asia\""), 400, "invalid_value", "timezone", NULL},
    {"timezone a number", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"timezone\":9"), 400, "invalid_type", "timezone", NULL},
    {"unknown field", "POST", "/v1/channels", "operator", "application/json",
     CREATE(",\"color\":\"red\""), 400, "unknown_field", "color", NULL},
    {"text/plain", "POST", "/v1/channels", "operator", "text/plain", CREATE(""), 415,
     "unsupported_media_type", "Content-Type", NULL},
    {"no content type", "POST", "/v1/channels", "operator", NULL, CREATE(""), 415,
     "unsupported_media_type", "Content-Type", NULL},
    {"latin-1 charset", "POST", "/v1/channels", "operator", "application/json; charset=latin1",
     CREATE(""), 415, "unsupported_media_type", "Content-Type", NULL},
    {"body over 16 KiB", "POST", "/v1/channels", "operator", "application/json", "@big", 413,
     "body_too_large", NULL, NULL},
    {"PATCH unknown field", "PATCH", "/v1/channels/{id}", "operator", "application/json",
     "{\"secret\":\"x\"}", 400, "unknown_field", "secret", NULL},
    {"PATCH channel_id", "PATCH", "/v1/channels/{id}", "operator", "application/json",
     "{\"channel_id\":\"42\"}", 400, "immutable_field", "channel_id", NULL},
    {"PATCH nothing", "PATCH", "/v1/channels/{id}", "operator", "application/json", "{}", 400,
     "empty_patch", NULL, NULL},
    {"PATCH null name", "PATCH", "/v1/channels/{id}", "operator", "application/json",
     "{\"name\":null}", 400, "invalid_type", "name", NULL},
    {"PATCH access_token too long", "PATCH", "/v1/channels/{id}", "operator", "application/json",
     "@longtoken", 400, "too_long", "access_token", NULL},
    {"PATCH form-encoded", "PATCH", "/v1/channels/{id}", "operator",
     "application/x-www-form-urlencoded", "name=x", 415, "unsupported_media_type", "Content-Type",
     NULL},
    {"PUT an item", "PUT", "/v1/channels/{id}", "operator", "application/json", "{}", 405,
     "method_not_allowed", NULL, "GET, PATCH, DELETE"},
    {"DELETE the collection", "DELETE", "/v1/channels", "admin", NULL, NULL, 405,
     "method_not_allowed", NULL, "GET, POST"},
    {"limit zero", "GET", "/v1/channels?limit=0", "viewer", NULL, NULL, 400, "invalid_value",
     "limit", NULL},
    {"limit not a number", "GET", "/v1/channels?limit=ten", "viewer", NULL, NULL, 400,
     "invalid_value", "limit", NULL},
    {"limit too large", "GET", "/v1/channels?limit=1000", "viewer", NULL, NULL, 400,
     "invalid_value", "limit", NULL},
    {"cursor not an id", "GET", "/v1/channels?cursor=x'--", "viewer", NULL, NULL, 400,
     "invalid_value", "cursor", NULL},
    {"item id not digits", "GET", "/v1/channels/abc", "viewer", NULL, NULL, 404, "not_found", NULL,
     NULL},
    {"unknown item", "GET", "/v1/channels/1", "viewer", NULL, NULL, 404, "not_found", NULL, NULL},
    {"unknown route", "GET", "/v1/channelz", "viewer", NULL, NULL, 404, "not_found", NULL, NULL},
    {"viewer creates", "POST", "/v1/channels", "viewer", "application/json", CREATE(""), 403,
     "forbidden", NULL, NULL},
};

Test(ingest_registry, bad_input_gets_a_precise_4xx_and_changes_nothing)
{
    char id[21];
    unique_channel_id(id);
    create_channel("acme", id, SECRET, TOKEN);
    long long outbox_before = count_rows("SELECT count(*) FROM outbox");

    char big[20 * 1024 + 1];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    char longtoken[2200];
    int off = snprintf(longtoken, sizeof longtoken, "{\"access_token\":\"");
    memset(longtoken + off, 'a', 2049);
    snprintf(longtoken + off + 2049, sizeof longtoken - (size_t)off - 2049, "\"}");
    static const char badutf8[] = "{\"channel_id\":\"1\",\"name\":\"\xc3\x28\"}";

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        char path[128];
        const char *slot = strstr(c->path, "{id}");
        if (slot)
            snprintf(path, sizeof path, "%.*s%s%s", (int)(slot - c->path), c->path, id, slot + 4);
        else
            snprintf(path, sizeof path, "%s", c->path);
        const char *body = c->body;
        if (body && strcmp(body, "@big") == 0)
            body = big;
        else if (body && strcmp(body, "@badutf8") == 0)
            body = badutf8;
        else if (body && strcmp(body, "@longtoken") == 0)
            body = longtoken;
        struct itest_http rep = http_call(c->method, path, "acme", c->role, c->content_type, body,
                                          body ? strlen(body) : 0);
        assert_error(&rep, c->status, c->code, c->field, c->what);
        if (c->allow)
            cr_assert_str_eq(rep.allow, c->allow, "%s: Allow", c->what);
        itest_http_free(&rep);
    }
    cr_assert_eq(count_rows("SELECT count(*) FROM channels"), 1, "no bad request stored anything");
    cr_assert_eq(count_rows("SELECT count(*) FROM outbox"), outbox_before,
                 "no bad request published anything");
    struct itest_http rep = http_json("GET", "/v1/channels", "acme", "viewer", NULL);
    cr_assert_eq(rep.status, 200, "still serving");
    cr_assert_eq(json_int(json_array_get(json_object_get(rep.json, "channels"), 0), "version"), 1);
    itest_http_free(&rep);
}
