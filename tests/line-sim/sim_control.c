/* /_sim/ handlers. Each one parses its small JSON body, checks it, and
 * calls one sim_state function; the rules live in sim_state.c. Tokens are
 * secrets even here: they are never echoed back or logged. */
#include "sim_control.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sim_bot.h"
#include "sim_respond.h"
#include "sim_state.h"

#define SIM_ID_MAX 256

static int64_t control_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void bad_request(struct httpd_response *resp, const char *message, const char *field)
{
    httpd_respond_error(resp, 400, "invalid_argument", message, field);
}

/* The JSON object body, or NULL after answering 400. */
static json_t *control_body(const struct httpd_request *req, struct httpd_response *resp)
{
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        bad_request(resp, "body must be a JSON object", NULL);
        return NULL;
    }
    return root;
}

/* A required non-empty string field of at most SIM_ID_MAX bytes, or NULL
 * after answering 400. */
static const char *control_string(const json_t *obj, const char *key, struct httpd_response *resp)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > SIM_ID_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a non-empty string of at most %d bytes", key,
                 SIM_ID_MAX);
        bad_request(resp, msg, key);
        return NULL;
    }
    return json_string_value(v);
}

/* The channel named by "channel_id" or "access_token", acquired; NULL after
 * answering 400/404. */
static struct sim_channel *control_channel(struct sim_state *st, const json_t *body,
                                           struct httpd_response *resp)
{
    const json_t *id = json_object_get(body, "channel_id");
    const json_t *token = json_object_get(body, "access_token");
    struct sim_channel *ch = NULL;
    if (json_is_string(id))
        ch = sim_state_acquire_id(st, json_string_value(id));
    else if (json_is_string(token))
        ch = sim_state_acquire_token(st, json_string_value(token));
    else {
        bad_request(resp, "channel_id or access_token is required", "channel_id");
        return NULL;
    }
    if (!ch)
        httpd_respond_error(resp, 404, "not_found", "no such channel",
                            json_is_string(id) ? "channel_id" : "access_token");
    return ch;
}

static void post_channel(struct sim_state *st, const struct httpd_request *req,
                         struct httpd_response *resp)
{
    json_t *body = control_body(req, resp);
    if (!body)
        return;
    const char *id = control_string(body, "channel_id", resp);
    const char *token = id ? control_string(body, "access_token", resp) : NULL;
    const json_t *bot = json_object_get(body, "bot_user_id");
    if (token && bot && !sim_bot_user_id_valid(json_string_value(bot))) {
        bad_request(resp, "bot_user_id must be \"U\" and 32 lower-case hex digits", "bot_user_id");
        token = NULL;
    }
    if (token) {
        bool created = false;
        int rc = sim_state_channel_add(st, id, token, json_string_value(bot), &created);
        if (rc == -2) {
            httpd_respond_error(resp, 409, "conflict",
                                "access_token is registered to another channel", "access_token");
        } else if (rc == -3) {
            httpd_respond_error(resp, 409, "conflict",
                                "the channel is registered with another bot_user_id",
                                "bot_user_id");
        } else if (rc != 0) {
            httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        } else {
            struct sim_channel *ch = sim_state_acquire_id(st, id);
            json_t *info = ch ? sim_channel_bot_info(st, ch) : NULL;
            if (ch)
                sim_state_release(st);
            log_info("channel registered", "channel", id, "created", created ? "true" : "false");
            sim_respond_json(resp, created ? 201 : 200,
                             json_pack("{s:s, s:s?, s:b}", "channel_id", id, "bot_user_id",
                                       json_string_value(json_object_get(info, "userId")),
                                       "created", created));
            json_decref(info);
        }
    }
    json_decref(body);
}

static void post_reply_token(struct sim_state *st, const struct httpd_request *req,
                             struct httpd_response *resp)
{
    json_t *body = control_body(req, resp);
    if (!body)
        return;
    const char *token = control_string(body, "reply_token", resp);
    const char *user = token ? control_string(body, "user_id", resp) : NULL;
    const json_t *age = json_object_get(body, "age_ms");
    if (user && age && (!json_is_integer(age) || json_integer_value(age) < 0)) {
        bad_request(resp, "age_ms must be a non-negative integer", "age_ms");
        user = NULL;
    }
    struct sim_channel *ch = user ? control_channel(st, body, resp) : NULL;
    if (ch) {
        int rc = sim_channel_reply_token_add(
            st, ch, token, user, age ? (long long)json_integer_value(age) : 0, control_now_ns());
        sim_state_release(st);
        if (rc == -2)
            httpd_respond_error(resp, 409, "conflict", "reply_token is already registered",
                                "reply_token");
        else if (rc != 0)
            httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        else
            sim_respond_json(resp, 201,
                             json_pack("{s:s, s:s}", "reply_token", token, "user_id", user));
    }
    json_decref(body);
}

/* Accepts {"users": [...]} or one user's fields at the top level. */
static void post_users(struct sim_state *st, const struct httpd_request *req,
                       struct httpd_response *resp)
{
    json_t *body = control_body(req, resp);
    if (!body)
        return;
    json_t *users = json_object_get(body, "users");
    json_t *single = NULL;
    if (!users) {
        single = json_array();
        if (single)
            json_array_append(single, body);
        users = single;
    }
    if (!json_is_array(users)) {
        bad_request(resp, "users must be an array", "users");
        goto done;
    }
    struct sim_channel *ch = control_channel(st, body, resp);
    if (!ch)
        goto done;
    char err[160];
    long n = sim_channel_users_upsert(st, ch, users, err, sizeof err);
    sim_state_release(st);
    if (n < 0)
        bad_request(resp, err, "users");
    else
        sim_respond_json(resp, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
done:
    json_decref(single);
    json_decref(body);
}

/* POST registers rich menus that exist on a channel; GET shows them and
 * which menu each user has, for tests that check links. */
static void richmenus(struct sim_state *st, const char *method, const struct httpd_request *req,
                      struct httpd_response *resp)
{
    if (strcmp(method, "GET") == 0) {
        const char *id = httpd_request_query(req, "channel_id");
        if (!id || !*id) {
            bad_request(resp, "channel_id is required", "channel_id");
            return;
        }
        struct sim_channel *ch = sim_state_acquire_id(st, id);
        if (!ch) {
            httpd_respond_error(resp, 404, "not_found", "no such channel", "channel_id");
            return;
        }
        sim_respond_json(resp, 200, sim_channel_richmenus_json(st, ch));
        sim_state_release(st);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        httpd_respond_error(resp, 405, "method_not_allowed", "use GET or POST", NULL);
        return;
    }
    json_t *body = control_body(req, resp);
    if (!body)
        return;
    struct sim_channel *ch = control_channel(st, body, resp);
    if (ch) {
        char err[160];
        long n = sim_channel_richmenus_add(st, ch, json_object_get(body, "rich_menu_ids"), err,
                                           sizeof err);
        sim_state_release(st);
        if (n < 0)
            bad_request(resp, err, "rich_menu_ids");
        else
            sim_respond_json(resp, 200, json_pack("{s:I}", "registered", (json_int_t)n));
    }
    json_decref(body);
}

/* /_sim/channels/{id}/limits */
static void channel_limits(struct sim_state *st, const char *method, const char *id,
                           const struct httpd_request *req, struct httpd_response *resp)
{
    bool put = strcmp(method, "PUT") == 0;
    if (!put && strcmp(method, "GET") != 0) {
        httpd_respond_error(resp, 405, "method_not_allowed", "use GET or PUT", NULL);
        return;
    }
    json_t *body = NULL;
    if (put && !(body = control_body(req, resp)))
        return;
    struct sim_channel *ch = sim_state_acquire_id(st, id);
    if (!ch) {
        httpd_respond_error(resp, 404, "not_found", "no such channel", "channel_id");
        json_decref(body);
        return;
    }
    char err[160];
    if (put && sim_channel_limits_update(st, ch, body, control_now_ns(), err, sizeof err) != 0)
        bad_request(resp, err, NULL);
    else
        sim_respond_json(resp, 200, sim_channel_limits_json(st, ch));
    sim_state_release(st);
    if (put && resp->status == 200)
        log_info("channel limits changed", "channel", id);
    json_decref(body);
}

static void faults(struct sim_state *st, const char *method, const struct httpd_request *req,
                   struct httpd_response *resp)
{
    if (strcmp(method, "PUT") == 0) {
        json_t *body = control_body(req, resp);
        if (!body)
            return;
        char err[160];
        int rc = sim_state_faults_update(st, body, err, sizeof err);
        json_decref(body);
        if (rc != 0) {
            bad_request(resp, err, NULL);
            return;
        }
        log_info("faults changed");
    } else if (strcmp(method, "GET") != 0) {
        httpd_respond_error(resp, 405, "method_not_allowed", "use GET or PUT", NULL);
        return;
    }
    struct sim_faults f;
    sim_state_faults_get(st, &f);
    sim_respond_json(resp, 200, sim_faults_json(&f));
}

static void settings(struct sim_state *st, const char *method, const struct httpd_request *req,
                     struct httpd_response *resp)
{
    if (strcmp(method, "PUT") == 0) {
        json_t *body = control_body(req, resp);
        if (!body)
            return;
        const json_t *record = json_object_get(body, "record");
        if (record && !json_is_boolean(record)) {
            bad_request(resp, "record must be a boolean", "record");
            json_decref(body);
            return;
        }
        if (record)
            sim_state_set_record(st, json_is_true(record));
        json_decref(body);
    } else if (strcmp(method, "GET") != 0) {
        httpd_respond_error(resp, 405, "method_not_allowed", "use GET or PUT", NULL);
        return;
    }
    sim_respond_json(resp, 200, json_pack("{s:b}", "record", sim_state_record(st)));
}

static void reset(struct sim_state *st, const struct httpd_request *req,
                  struct httpd_response *resp)
{
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    bool keep = false;
    if (body && len > 0) {
        json_t *root = control_body(req, resp);
        if (!root)
            return;
        const json_t *k = json_object_get(root, "keep_channels");
        keep = json_is_true(k);
        json_decref(root);
    }
    sim_state_reset(st, keep, control_now_ns());
    log_info("state reset", "keep_channels", keep ? "true" : "false");
    sim_respond_json(resp, 200, json_pack("{s:b, s:b}", "reset", 1, "keep_channels", keep));
}

/* Splits /_sim/channels/{id}/limits; returns true with id filled. */
static bool limits_path(const char *path, char *id, size_t cap)
{
    const char *prefix = "/_sim/channels/";
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0)
        return false;
    const char *p = path + plen;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= cap || strcmp(slash, "/limits") != 0)
        return false;
    memcpy(id, p, (size_t)(slash - p));
    id[slash - p] = '\0';
    return true;
}

void sim_control_handle(struct sim_state *st, const struct httpd_request *req,
                        struct httpd_response *resp)
{
    const char *method = httpd_request_method(req);
    const char *path = httpd_request_path(req);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    char id[SIM_ID_MAX + 1];
    char rid[SIM_REQUEST_ID_LEN];
    sim_respond_request_id(resp, rid);

    if (strcmp(path, "/_sim/channels") == 0 && post)
        post_channel(st, req, resp);
    else if (strcmp(path, "/_sim/channels") == 0 && get)
        sim_respond_json(resp, 200, sim_state_channels_json(st));
    else if (limits_path(path, id, sizeof id))
        channel_limits(st, method, id, req, resp);
    else if (strcmp(path, "/_sim/reply-tokens") == 0 && post)
        post_reply_token(st, req, resp);
    else if (strcmp(path, "/_sim/users") == 0 && post)
        post_users(st, req, resp);
    else if (strcmp(path, "/_sim/richmenus") == 0)
        richmenus(st, method, req, resp);
    else if (strcmp(path, "/_sim/faults") == 0)
        faults(st, method, req, resp);
    else if (strcmp(path, "/_sim/settings") == 0)
        settings(st, method, req, resp);
    else if (strcmp(path, "/_sim/messages") == 0 && get)
        sim_respond_json(resp, 200,
                         sim_state_messages_json(st, httpd_request_query(req, "to"),
                                                 httpd_request_query(req, "channel_id")));
    else if (strcmp(path, "/_sim/stats") == 0 && get)
        sim_respond_json(resp, 200, sim_state_stats_json(st, control_now_ns()));
    else if (strcmp(path, "/_sim/reset") == 0 && post)
        reset(st, req, resp);
    else
        httpd_respond_error(resp, 404, "not_found", "no such control endpoint", NULL);
}

int sim_control_preload(struct sim_state *st, const char *spec, char *err, size_t errcap)
{
    int n = 0;
    const char *p = spec;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        char item[3 * SIM_ID_MAX + 3];
        if (len >= sizeof item) {
            snprintf(err, errcap, "LINESIM_CHANNELS: entry %d is too long", n + 1);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        p += len + (p[len] == ',');
        if (len == 0)
            continue;
        /* id:token or id:token:bot_user_id */
        char *colon = strchr(item, ':');
        char *bot = colon ? strchr(colon + 1, ':') : NULL;
        if (bot)
            *bot++ = '\0';
        if (!colon || colon == item || colon[1] == '\0' || (bot && !sim_bot_user_id_valid(bot))) {
            snprintf(err, errcap,
                     "LINESIM_CHANNELS: entry %d is not channel_id:access_token[:bot_user_id]",
                     n + 1);
            return -1;
        }
        *colon = '\0';
        bool created;
        int rc = sim_state_channel_add(st, item, colon + 1, bot, &created);
        if (rc != 0) {
            snprintf(err, errcap, "LINESIM_CHANNELS: channel %s: %s", item,
                     rc == -2   ? "token already used by another channel"
                     : rc == -3 ? "registered twice with different bot user ids"
                                : "out of memory");
            return -1;
        }
        n++;
    }
    return n;
}
