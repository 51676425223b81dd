/* Admin routes of kizuna-dispatcher. Input is checked here, field by field
 * (bodies through common/jsonf), before anything reaches SQL or the
 * limiter; methods, roles and error answers go through common/admin_api,
 * as in every service. */
#include "api.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_api.h"
#include "channels.h"
#include "db.h"
#include "deliveries.h"
#include "channel_limits.h"
#include "log.h"
#include "ratelimit.h"
#include "sender.h"

#define API_LIST_DEFAULT 100
#define API_LIST_MAX 500

struct api {
    pthread_mutex_t mu; /* guards db */
    struct db *db;
    struct channels *channels;
    struct sender *sender;
};

struct api *api_new(const char *dsn, struct channels *channels, struct sender *sender, char *errstr,
                    size_t errcap)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    a->db = db_connect(dsn, errstr, errcap);
    if (!a->db) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->channels = channels;
    a->sender = sender;
    return a;
}

void api_free(struct api **ap)
{
    if (!ap || !*ap)
        return;
    db_free(&(*ap)->db);
    pthread_mutex_destroy(&(*ap)->mu);
    free(*ap);
    *ap = NULL;
}

/* --- helpers ------------------------------------------------------------------ */

/* The methods of each route, and the least role for each. */
static const struct admin_method read_methods[] = {{"GET", "viewer"}};
enum { LIMITS_GET, LIMITS_PATCH };
static const struct admin_method limits_methods[] = {
    [LIMITS_GET] = {"GET", "viewer"},
    [LIMITS_PATCH] = {"PATCH", "operator"},
};

static bool id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (n >= CHANNEL_ID_MAX || !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                                     (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
            return false;
    }
    return n > 0;
}

/* min..max decimal digits and nothing else. */
static bool digits(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9' || n >= max)
            return false;
    return n >= min;
}

static bool two_digits(const char *p, int lo, int hi)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    int v = (p[0] - '0') * 10 + (p[1] - '0');
    return v >= lo && v <= hi;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static bool rfc3339_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 20 || n > 40)
        return false;
    for (int i = 0; i < 4; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    if (s[4] != '-' || !two_digits(s + 5, 1, 12) || s[7] != '-' || !two_digits(s + 8, 1, 31) ||
        (s[10] != 'T' && s[10] != 't') || !two_digits(s + 11, 0, 23) || s[13] != ':' ||
        !two_digits(s + 14, 0, 59) || s[16] != ':' || !two_digits(s + 17, 0, 60))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    return (*p == '+' || *p == '-') && two_digits(p + 1, 0, 23) && p[3] == ':' &&
           two_digits(p + 4, 0, 59) && p[6] == '\0';
}

/* --- GET /v1/deliveries --------------------------------------------------------- */

static void deliveries_get(struct api *a, const struct auth_claims *claims,
                           const struct httpd_request *req, struct httpd_response *resp)
{
    const char *channel = httpd_request_query(req, "channel");
    const char *status = httpd_request_query(req, "status");
    const char *since = httpd_request_query(req, "since");
    const char *cursor = httpd_request_query(req, "cursor");
    const char *limit_text = httpd_request_query(req, "limit");
    if (channel && !id_valid(channel)) {
        httpd_respond_error(resp, 400, "invalid_argument", "not a channel id", "channel");
        return;
    }
    if (status && !delivery_status_valid(status)) {
        httpd_respond_error(resp, 400, "invalid_argument",
                            "one of queued, retrying, sent, failed, quota_exceeded, "
                            "retry_exhausted, reply_token_expired, invalid",
                            "status");
        return;
    }
    if (since && !rfc3339_valid(since)) {
        httpd_respond_error(resp, 400, "invalid_argument",
                            "an RFC 3339 date-time, e.g. 2025-11-26T00:00:00Z", "since");
        return;
    }
    if (cursor && !digits(cursor, 1, 18)) {
        httpd_respond_error(resp, 400, "invalid_argument", "not a cursor from this API", "cursor");
        return;
    }
    int limit = API_LIST_DEFAULT;
    if (limit_text) {
        if (!digits(limit_text, 1, 3) || strtol(limit_text, NULL, 10) < 1 ||
            strtol(limit_text, NULL, 10) > API_LIST_MAX) {
            httpd_respond_error(resp, 400, "invalid_argument", "an integer from 1 to 500", "limit");
            return;
        }
        limit = (int)strtol(limit_text, NULL, 10);
    }
    char *json = NULL;
    pthread_mutex_lock(&a->mu);
    int st = deliveries_list(a->db, claims->tenant, channel, status, since, cursor, limit, &json);
    char sqlstate[8];
    snprintf(sqlstate, sizeof sqlstate, "%s", db_error_sqlstate(a->db));
    pthread_mutex_unlock(&a->mu);
    if (st != DB_OK) {
        if (strncmp(sqlstate, "22", 2) == 0) {
            httpd_respond_error(resp, 400, "invalid_argument", "not a valid date-time", "since");
            return;
        }
        log_warn("deliveries listing failed", "tenant", claims->tenant, "sqlstate", sqlstate);
        httpd_respond_error(resp, 503, "unavailable", "the delivery log is unavailable", NULL);
        return;
    }
    httpd_respond_json(resp, 200, json);
    free(json);
}

/* --- GET /v1/quota ----------------------------------------------------------------- */

static json_t *limit_json(long long v)
{
    return v == QUOTA_NONE ? json_null() : json_integer(v);
}

static void time_text(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static void quota_get(struct api *a, const struct auth_claims *claims,
                      const struct httpd_request *req, struct httpd_response *resp)
{
    const char *only = httpd_request_query(req, "channel");
    if (only && !id_valid(only)) {
        httpd_respond_error(resp, 400, "invalid_argument", "not a channel id", "channel");
        return;
    }
    char(*ids)[CHANNEL_ID_MAX + 1] = NULL;
    size_t n = 0;
    if (channels_tenant_list(a->channels, claims->tenant, &ids, &n) != 0) {
        httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        return;
    }
    json_t *list = json_array();
    bool found = !only;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, ids[i]) != 0)
            continue;
        found = true;
        struct sender_quota_view v;
        int rc = sender_quota_get(a->sender, ids[i], &v);
        if (rc == -1)
            continue;
        if (rc != 0) {
            free(ids);
            json_decref(list);
            httpd_respond_error(resp, 503, "unavailable", "quota usage is unavailable", NULL);
            return;
        }
        char start[32], end[32];
        time_text(v.month_start, start);
        time_text(v.month_end, end);
        json_t *o = json_object();
        json_object_set_new(o, "channel_id", json_string(ids[i]));
        json_object_set_new(o, "timezone", json_string(v.timezone));
        json_object_set_new(o, "month_start", json_string(start));
        json_object_set_new(o, "month_end", json_string(end));
        json_object_set_new(o, "used", json_integer(v.used));
        json_object_set_new(o, "limit", limit_json(v.limit));
        json_object_set_new(o, "remaining",
                            v.limit == QUOTA_NONE
                                ? json_null()
                                : json_integer(v.limit > v.used ? v.limit - v.used : 0));
        json_object_set_new(o, "contract_limit", limit_json(v.contract));
        json_object_set_new(o, "line_limit", limit_json(v.line));
        json_object_set_new(o, "warn_percent", json_integer(v.warn_percent));
        json_object_set_new(o, "exhausted", json_boolean(v.exhausted));
        json_array_append_new(list, o);
    }
    free(ids);
    if (!found) {
        json_decref(list);
        httpd_respond_error(resp, 404, "not_found", "no such channel", "channel");
        return;
    }
    json_t *root = json_object();
    json_object_set_new(root, "quota", list);
    admin_api_respond_json(resp, 200, root);
}

/* --- /v1/channels/{id}/limits ------------------------------------------------------ */

static json_t *limits_json(struct api *a, const char *channel_id)
{
    json_t *limits = json_object();
    for (int cls = 0; cls < RATELIMIT_CLASS_COUNT; cls++) {
        struct ratelimit_rate rate;
        bool overridden = false;
        if (sender_limit_get(a->sender, channel_id, (enum ratelimit_class)cls, &rate,
                             &overridden) != 0)
            continue;
        json_object_set_new(limits, ratelimit_class_name((enum ratelimit_class)cls),
                            json_pack("{s:I, s:I, s:I, s:b}", "limit", (json_int_t)rate.limit,
                                      "period_s", (json_int_t)rate.period_s, "burst",
                                      (json_int_t)rate.burst, "overridden", overridden));
    }
    json_t *root = json_object();
    json_object_set_new(root, "channel_id", json_string(channel_id));
    json_object_set_new(root, "limits", limits);
    return root;
}

struct limit_change {
    enum ratelimit_class cls;
    bool reset;
    struct ratelimit_rate rate;
};

/* One endpoint's new rate: a bare integer (requests per second), or an
 * object of limit (required), period_s and burst. Returns 0 or -1 with the
 * error in doc's reader. */
static int rate_read(const struct jsonf *doc, const char *name, json_t *v,
                     struct ratelimit_rate *rate)
{
    static const char *const rate_fields[] = {"limit", "period_s", "burst"};
    if (json_is_integer(v)) {
        rate->limit = (long)json_integer_value(v);
        rate->period_s = 1;
        return 0;
    }
    if (!json_is_object(v))
        return jsonf_fail(doc, name, JSONF_TYPE,
                          "a rate is a number (per second), an object or null");
    /* ratelimit_rate_check() judges the values; here only their types. */
    struct jsonf obj;
    int64_t limit = 0, period_s = rate->period_s, burst = rate->burst;
    if (jsonf_object(doc, name, JSONF_REQUIRED, &obj) < 0 ||
        jsonf_known(&obj, rate_fields, 3) < 0 ||
        jsonf_int(&obj, "limit", JSONF_REQUIRED, LONG_MIN, LONG_MAX, &limit) < 0 ||
        jsonf_int(&obj, "period_s", 0, LONG_MIN, LONG_MAX, &period_s) < 0 ||
        jsonf_int(&obj, "burst", 0, LONG_MIN, LONG_MAX, &burst) < 0)
        return -1;
    rate->limit = (long)limit;
    rate->period_s = (long)period_s;
    rate->burst = (long)burst;
    return 0;
}

/* Parses the PATCH body into changes: every field is checked before any
 * is applied. Returns the count, or -1 after answering 400, whose field is
 * always the endpoint class (openapi.yaml), whatever member inside its rate
 * was wrong; the message names that member's path. */
static int limits_parse(const char *body, size_t len, struct limit_change *out,
                        struct httpd_response *resp)
{
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        httpd_respond_error(resp, 400, "invalid_argument",
                            "the body must be a JSON object of endpoint: rate", NULL);
        return -1;
    }
    struct jsonf_error field_error;
    struct jsonf_reader reader = {.errors = &field_error, .cap = 1};
    struct jsonf doc;
    jsonf_root(&doc, &reader, root);
    int n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v)
    {
        char errstr[256] = "";
        int cls = ratelimit_class_parse(name);
        if (cls < 0 || n >= RATELIMIT_CLASS_COUNT) {
            jsonf_fail(&doc, name, JSONF_UNKNOWN, "unknown endpoint class");
            goto refused;
        }
        struct limit_change *c = &out[n];
        memset(c, 0, sizeof *c);
        c->cls = (enum ratelimit_class)cls;
        if (json_is_null(v)) {
            c->reset = true;
            n++;
            continue;
        }
        c->rate.period_s = ratelimit_default(c->cls).period_s;
        if (rate_read(&doc, name, v, &c->rate) < 0)
            goto refused;
        if (ratelimit_rate_check(&c->rate, errstr, sizeof errstr) != 0) {
            httpd_respond_error(resp, 400, "invalid_argument", errstr, name);
            goto fail;
        }
        n++;
    }
    json_decref(root);
    if (n == 0) {
        httpd_respond_error(resp, 400, "invalid_argument", "no endpoint to change", NULL);
        return -1;
    }
    return n;
refused:
    admin_api_respond_invalid(resp, &field_error, "invalid_argument", name);
fail:
    json_decref(root);
    return -1;
}

/* A limit of 0 lifts the channel's limit for an endpoint: LINE then
 * answers 429 for the channel, and the channel can take every call slot
 * the deployment has. Only the deployment's operator decides that. */
static bool limits_allowed(const struct auth_claims *claims, const char *tenant,
                           const struct limit_change *changes, int n, struct httpd_response *resp)
{
    if (auth_claims_allow(claims, tenant, "deployment") == AUTH_OK)
        return true;
    for (int i = 0; i < n; i++) {
        if (changes[i].reset || changes[i].rate.limit != 0)
            continue;
        httpd_respond_error(resp, 403, "forbidden",
                            "a limit of 0 (unlimited) can be set only by the deployment's "
                            "operator (role deployment)",
                            ratelimit_class_name(changes[i].cls));
        return false;
    }
    return true;
}

static void limits_patch(struct api *a, const struct auth_claims *claims, const char *channel_id,
                         const char *tenant, const struct httpd_request *req,
                         struct httpd_response *resp)
{
    struct limit_change changes[RATELIMIT_CLASS_COUNT];
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    int n = limits_parse(body, len, changes, resp);
    if (n < 0 || !limits_allowed(claims, tenant, changes, n, resp))
        return;
    pthread_mutex_lock(&a->mu);
    enum db_status st = db_begin(a->db);
    for (int i = 0; i < n && st == DB_OK; i++)
        st = channel_limits_save(a->db, channel_id, tenant, changes[i].cls,
                                 changes[i].reset ? NULL : &changes[i].rate);
    if (st == DB_OK)
        st = db_commit(a->db);
    else
        db_rollback(a->db);
    pthread_mutex_unlock(&a->mu);
    if (st != DB_OK) {
        log_warn("channel limits not saved", "channel", channel_id, "error",
                 db_error_message(a->db));
        httpd_respond_error(resp, 503, "unavailable", "limits could not be saved", NULL);
        return;
    }
    for (int i = 0; i < n; i++) {
        char errstr[256];
        if (sender_limit_set(a->sender, channel_id, tenant, changes[i].cls,
                             changes[i].reset ? NULL : &changes[i].rate, errstr,
                             sizeof errstr) != 0)
            log_warn("channel limit saved but not applied here", "channel", channel_id, "error",
                     errstr);
    }
    log_info("channel limits changed", "tenant", tenant, "channel", channel_id);
    admin_api_respond_json(resp, 200, limits_json(a, channel_id));
}

static void channel_limits(struct api *a, const struct auth_claims *claims, const char *id,
                           const struct httpd_request *req, struct httpd_response *resp)
{
    int m = admin_api_method(req, resp, limits_methods,
                             sizeof limits_methods / sizeof limits_methods[0]);
    if (m < 0)
        return;
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr) {
        httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        return;
    }
    if (channels_lookup(a->channels, id, cr) != 0 || cr->deleted) {
        httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
        goto out;
    }
    if (!admin_api_allow(claims, cr->tenant_id, limits_methods[m].min_role, resp))
        goto out;
    /* What is shown and changed is the current owner's (decision 0011). */
    sender_channel_owner(a->sender, id, cr->tenant_id);
    if (m == LIMITS_PATCH)
        limits_patch(a, claims, id, cr->tenant_id, req, resp);
    else
        admin_api_respond_json(resp, 200, limits_json(a, id));
out:
    channels_creds_wipe(cr);
    free(cr);
}

void api_handle(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                struct httpd_response *resp)
{
    struct api *a = ctx;
    if (!a) {
        httpd_respond_error(resp, 503, "unavailable", "starting", NULL);
        return;
    }
    const char *path = httpd_request_path(req);
    if (strcmp(path, "/v1/deliveries") == 0) {
        if (admin_api_route(claims, req, resp, read_methods, 1) == 0)
            deliveries_get(a, claims, req, resp);
        return;
    }
    if (strcmp(path, "/v1/quota") == 0) {
        if (admin_api_route(claims, req, resp, read_methods, 1) == 0)
            quota_get(a, claims, req, resp);
        return;
    }
    static const char prefix[] = "/v1/channels/", suffix[] = "/limits";
    size_t pl = sizeof prefix - 1, sl = sizeof suffix - 1, len = strlen(path);
    if (len > pl + sl && strncmp(path, prefix, pl) == 0 && strcmp(path + len - sl, suffix) == 0 &&
        len - pl - sl <= CHANNEL_ID_MAX) {
        char id[CHANNEL_ID_MAX + 1];
        memcpy(id, path + pl, len - pl - sl);
        id[len - pl - sl] = '\0';
        if (!id_valid(id)) {
            httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
            return;
        }
        channel_limits(a, claims, id, req, resp);
        return;
    }
    httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
}
