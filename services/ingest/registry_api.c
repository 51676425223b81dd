/* The /v1/channels admin API. Each change is one transaction that writes the
 * row and its ChannelConfig record to the outbox together, so the topic
 * carries exactly the committed changes, in order. Every query is scoped by
 * the token's tenant: another tenant's channel answers 404, and a channel id
 * that is taken (by anyone) answers 409 without saying by whom.
 *
 * Deletion keeps the row with deleted_at set and publishes a last record
 * with deleted = true (the outbox cannot carry a null value, so no
 * tombstone is published). The row keeps the version counting, so the same
 * LINE channel can be registered again, by any tenant, with a higher
 * version. Secrets are sealed before the transaction and never logged;
 * responses show fingerprints. The parsed input and the sealed boxes are
 * wiped before each handler returns; the request body itself is wiped by
 * the admin server (httpd_options.wipe_bodies) and the JSON tree by
 * jansson's wiping free (common/secrets.h). */
#include "registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "admin_api.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "registry_cache.h"
#include "registry_input.h"
#include "registry_private.h"
#include "registry_record.h"

#define CHANNELS_TOPIC "channels"
#define COLLECTION_PATH "/v1/channels"
#define ITEM_PREFIX "/v1/channels/"
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 100

/* The columns every handler reads back, in the order row_read expects. */
#define ROW_COLUMNS                                                                           \
    "tenant_id, channel_id, name, bot_user_id, timezone, monthly_quota, secret_fingerprint, " \
    "access_token_fingerprint, access_token_sealed, version, "                                \
    "(extract(epoch FROM created_at) * 1000)::bigint, "                                       \
    "(extract(epoch FROM updated_at) * 1000)::bigint, deleted_at IS NOT NULL"

/* --- reading rows (binary result format) --------------------------------- */

static int64_t int8_decode(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return (int64_t)v;
}

static int text_copy(const struct db_result *r, int row, int col, char *out, size_t cap)
{
    size_t len = db_result_length(r, row, col);
    if (db_result_isnull(r, row, col) || len >= cap)
        return -1;
    memcpy(out, db_result_value(r, row, col), len);
    out[len] = '\0';
    return 0;
}

static int int8_read(const struct db_result *r, int row, int col, int64_t *out)
{
    if (db_result_isnull(r, row, col) || db_result_length(r, row, col) != 8)
        return -1;
    *out = int8_decode(db_result_value(r, row, col));
    return 0;
}

static int row_read(const struct db_result *r, int i, struct channel_row *row)
{
    int64_t quota, version;
    memset(row, 0, sizeof *row);
    size_t sealed = db_result_length(r, i, 8);
    if (text_copy(r, i, 0, row->tenant_id, sizeof row->tenant_id) ||
        text_copy(r, i, 1, row->channel_id, sizeof row->channel_id) ||
        text_copy(r, i, 2, row->name, sizeof row->name) ||
        text_copy(r, i, 3, row->bot_user_id, sizeof row->bot_user_id) ||
        text_copy(r, i, 4, row->timezone, sizeof row->timezone) || int8_read(r, i, 5, &quota) ||
        text_copy(r, i, 6, row->secret_fingerprint, sizeof row->secret_fingerprint) ||
        text_copy(r, i, 7, row->access_token_fingerprint, sizeof row->access_token_fingerprint) ||
        sealed > sizeof row->access_token_sealed || int8_read(r, i, 9, &version) ||
        int8_read(r, i, 10, &row->created_at_ms) || int8_read(r, i, 11, &row->updated_at_ms) ||
        db_result_length(r, i, 12) != 1)
        return -1;
    memcpy(row->access_token_sealed, db_result_value(r, i, 8), sealed);
    row->access_token_sealed_len = sealed;
    row->monthly_quota = quota;
    row->version = version;
    row->deleted = db_result_value(r, i, 12)[0] != 0;
    return 0;
}

/* --- answers -------------------------------------------------------------- */

/* A database failure: retriable ones are 503 (try again), others 500. The
 * error is logged here, once, with the tenant and channel. */
static void respond_db_error(struct registry *reg, struct httpd_response *resp, enum db_status st,
                             const char *what, const char *tenant, const char *channel)
{
    log_error(what, "tenant", tenant, "channel", channel, "error", db_error_message(reg->api_db),
              "sqlstate", db_error_sqlstate(reg->api_db));
    if (st == DB_RETRY) {
        httpd_response_header(resp, "Retry-After", "1");
        httpd_respond_error(resp, 503, "unavailable", "the registry database is unavailable", NULL);
    } else {
        httpd_respond_error(resp, 500, "internal", "the registry could not complete the change",
                            NULL);
    }
}

static void respond_row(struct httpd_response *resp, int status, const struct channel_row *row)
{
    char *json = registry_record_json(row);
    if (!json) {
        httpd_respond_error(resp, 500, "internal", "cannot render the channel", NULL);
        return;
    }
    httpd_respond_json(resp, status, json);
    free(json);
}

static void respond_not_found(struct httpd_response *resp)
{
    httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
}

/* --- request checks -------------------------------------------------------- */

static bool input_parse(struct registry *reg, const struct httpd_request *req,
                        struct httpd_response *resp, enum registry_input_mode mode,
                        struct registry_input *in)
{
    const char *body;
    size_t len;
    if (!admin_api_body(req, resp, REGISTRY_BODY_MAX, &body, &len))
        return false;
    struct registry_input_error err;
    if (registry_input_parse(body, len, mode, reg->zoneinfo_dir, in, &err) != 0) {
        httpd_respond_error(resp, err.status, err.code, err.message,
                            err.field[0] ? err.field : NULL);
        return false;
    }
    return true;
}

/* --- sealing ---------------------------------------------------------------- */

struct sealed_secrets {
    uint8_t secret[REGISTRY_SECRET_MAX + CRYPTO_SEAL_OVERHEAD];
    long secret_len; /* -1: not being set */
    uint8_t token[REGISTRY_TOKEN_SEALED_MAX];
    long token_len;
    char secret_fp[REGISTRY_FINGERPRINT_LEN + 1];
    char token_fp[REGISTRY_FINGERPRINT_LEN + 1];
};

/* Seals the secrets that in carries, bound to tenant/channel. Returns 0 or -1. */
static int secrets_seal(struct registry *reg, const char *tenant, const char *channel_id,
                        const struct registry_input *in, struct sealed_secrets *out)
{
    char aad[REGISTRY_AAD_MAX];
    memset(out, 0, sizeof *out);
    out->secret_len = out->token_len = -1;
    int aadlen = registry_aad(tenant, channel_id, aad, sizeof aad);
    if (aadlen < 0)
        return -1;
    if (in->present & REGISTRY_F_SECRET) {
        size_t n = strlen(in->channel_secret);
        out->secret_len = crypto_seal(reg->key, aad, (size_t)aadlen, in->channel_secret, n,
                                      out->secret, sizeof out->secret);
        if (out->secret_len < 0)
            return -1;
        registry_fingerprint(in->channel_secret, n, out->secret_fp);
    }
    if (in->present & REGISTRY_F_TOKEN) {
        size_t n = strlen(in->access_token);
        out->token_len = crypto_seal(reg->key, aad, (size_t)aadlen, in->access_token, n, out->token,
                                     sizeof out->token);
        if (out->token_len < 0)
            return -1;
        registry_fingerprint(in->access_token, n, out->token_fp);
    }
    return 0;
}

/* --- one change: statement, record, commit ------------------------------------ */

/* Runs a statement that changes one row and RETURNING ROW_COLUMNS, enqueues
 * the ChannelConfig record for it and commits, all under api_lock. Returns
 * 1 with row filled, 0 when the statement touched no row (rolled back), or
 * a db_status (rolled back; the caller answers). */
static int change_commit(struct registry *reg, const char *sql, int nparams,
                         const char *const *values, const int *lengths, const int *binary,
                         struct channel_row *row)
{
    struct db_result *r = NULL;
    uint8_t *payload = NULL;
    size_t len = 0;
    pthread_mutex_lock(&reg->api_lock);
    enum db_status st = db_begin(reg->api_db);
    if (st != DB_OK)
        goto out;
    st = db_execv(reg->api_db, sql, nparams, values, lengths, binary, true, &r);
    if (st != DB_OK)
        goto fail;
    if (db_result_rows(r) != 1) {
        db_rollback(reg->api_db);
        db_result_free(&r);
        pthread_mutex_unlock(&reg->api_lock);
        return 0;
    }
    st = DB_FATAL;
    if (row_read(r, 0, row) != 0)
        goto fail;
    uuid_t uuid;
    char event_id[37];
    uuid_generate_random(uuid);
    uuid_unparse_lower(uuid, event_id);
    payload = registry_record_pack(row, event_id, &len);
    if (!payload)
        goto fail;
    st = outbox_enqueue(reg->api_db, CHANNELS_TOPIC, row->channel_id, strlen(row->channel_id),
                        payload, len);
    if (st != DB_OK)
        goto fail;
    st = db_commit(reg->api_db);
    goto out;
fail:
    db_rollback(reg->api_db);
out:
    pthread_mutex_unlock(&reg->api_lock);
    free(payload);
    db_result_free(&r);
    if (st == DB_OK) {
        /* Before answering, so that this process's next webhook sees it. */
        registry_cache_forget(reg->cache, row->channel_id);
        return 1;
    }
    return st;
}

/* One info line per committed change (an audit trail: who, which channel,
 * which version) and the changes_total counter, labelled op. */
static void change_log(struct registry *reg, const char *op, const char *msg,
                       const struct auth_claims *claims, const struct channel_row *row)
{
    char version[24];
    snprintf(version, sizeof version, "%lld", row->version);
    log_info(msg, "tenant", claims->tenant, "channel", row->channel_id, "subject", claims->subject,
             "version", version);
    if (reg->changes)
        metrics_add(reg->changes, 1, op);
}

/* --- handlers ------------------------------------------------------------------ */

static void channel_create(struct registry *reg, const struct auth_claims *claims,
                           const struct httpd_request *req, struct httpd_response *resp)
{
    struct registry_input in;
    struct sealed_secrets sealed;
    struct channel_row row;
    if (!input_parse(reg, req, resp, REGISTRY_INPUT_CREATE, &in))
        return;
    memset(&sealed, 0, sizeof sealed);
    /* Before the transaction and without a lock: LINE may take seconds. */
    if (!registry_owner_check(reg, claims->tenant, in.channel_id, in.access_token, in.bot_user_id,
                              resp))
        goto out;
    if (secrets_seal(reg, claims->tenant, in.channel_id, &in, &sealed) != 0) {
        log_error("cannot seal channel secrets", "tenant", claims->tenant, "channel",
                  in.channel_id);
        httpd_respond_error(resp, 500, "internal", "cannot seal the channel's secrets", NULL);
        goto out;
    }
    char quota[24];
    snprintf(quota, sizeof quota, "%lld", in.monthly_quota);
    const char *values[] = {
        claims->tenant, in.channel_id, in.name, (char *)sealed.secret, (char *)sealed.token,
        in.bot_user_id, in.timezone,   quota,   sealed.secret_fp,      sealed.token_fp};
    const int lengths[] = {0, 0, 0, (int)sealed.secret_len, (int)sealed.token_len, 0, 0, 0, 0, 0};
    const int binary[] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    /* A deleted row for the same channel id is taken over (by whichever
     * tenant registers it) with the next version; a live one is a
     * conflict, whatever its tenant. */
    int rc = change_commit(
        reg,
        "INSERT INTO channels AS c (tenant_id, channel_id, name, secret_sealed, "
        "access_token_sealed, bot_user_id, timezone, monthly_quota, secret_fingerprint, "
        "access_token_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9, $10) "
        "ON CONFLICT (channel_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
        "name = EXCLUDED.name, secret_sealed = EXCLUDED.secret_sealed, "
        "access_token_sealed = EXCLUDED.access_token_sealed, bot_user_id = EXCLUDED.bot_user_id, "
        "timezone = EXCLUDED.timezone, monthly_quota = EXCLUDED.monthly_quota, "
        "secret_fingerprint = EXCLUDED.secret_fingerprint, "
        "access_token_fingerprint = EXCLUDED.access_token_fingerprint, version = c.version + 1, "
        "created_at = now(), updated_at = now(), deleted_at = NULL "
        "WHERE c.deleted_at IS NOT NULL RETURNING " ROW_COLUMNS,
        10, values, lengths, binary, &row);
    if (rc == 1) {
        change_log(reg, "create", "channel created", claims, &row);
        char location[64];
        snprintf(location, sizeof location, ITEM_PREFIX "%s", row.channel_id);
        httpd_response_header(resp, "Location", location);
        respond_row(resp, 201, &row);
    } else if (rc == 0) {
        log_info("channel create refused: channel id taken", "tenant", claims->tenant, "channel",
                 in.channel_id, "subject", claims->subject);
        httpd_respond_error(resp, 409, "conflict", "this channel_id is already registered",
                            "channel_id");
    } else {
        respond_db_error(reg, resp, (enum db_status)rc, "channel create failed", claims->tenant,
                         in.channel_id);
    }
out:
    registry_input_wipe(&in);
    crypto_wipe(&sealed, sizeof sealed);
}

/* The live row's bot user id, opened access token and version, for an
 * ownership check when a PATCH changes only one of the two. Returns 1
 * (filled), 0 (no such channel of the tenant) or a db_status (< 0), DB_FATAL
 * also when the token does not open. The query holds api_lock briefly. */
static int current_credentials(struct registry *reg, const char *tenant, const char *channel_id,
                               char *bot, size_t botcap, char *token, size_t tokcap,
                               long long *version)
{
    const char *values[] = {tenant, channel_id};
    struct db_result *r = NULL;
    pthread_mutex_lock(&reg->api_lock);
    enum db_status st = db_execv(reg->api_db,
                                 "SELECT " ROW_COLUMNS " FROM channels WHERE tenant_id = $1 "
                                 "AND channel_id = $2 AND deleted_at IS NULL",
                                 2, values, NULL, NULL, true, &r);
    pthread_mutex_unlock(&reg->api_lock);
    if (st != DB_OK)
        return st;
    int rc = 0;
    struct channel_row *row = malloc(sizeof *row);
    char aad[REGISTRY_AAD_MAX];
    int aadlen = registry_aad(tenant, channel_id, aad, sizeof aad);
    if (db_result_rows(r) == 1) {
        rc = DB_FATAL;
        long n = -1;
        if (row && aadlen > 0 && row_read(r, 0, row) == 0 && strlen(row->bot_user_id) < botcap)
            n = crypto_open(reg->key, aad, (size_t)aadlen, row->access_token_sealed,
                            row->access_token_sealed_len, (uint8_t *)token, tokcap - 1);
        if (n >= 0) {
            token[n] = '\0';
            memcpy(bot, row->bot_user_id, strlen(row->bot_user_id) + 1);
            *version = row->version;
            rc = 1;
        }
    }
    if (row)
        crypto_wipe(row, sizeof *row);
    free(row);
    db_result_free(&r);
    return rc;
}

/* A PATCH that changes the access token or the bot user id proves
 * ownership again, with the new value and the kept other one. Returns 1
 * when the change may go on (*pin is the version checked, or -1 when no
 * check was needed), 0 after answering. */
static int update_owner_check(struct registry *reg, const struct auth_claims *claims,
                              const char *channel_id, const struct registry_input *in,
                              struct httpd_response *resp, long long *pin)
{
    *pin = -1;
    unsigned both = REGISTRY_F_TOKEN | REGISTRY_F_BOT_USER_ID;
    if (!(in->present & both))
        return 1;
    char bot[REGISTRY_BOT_USER_ID_LEN + 1];
    char *token = malloc(REGISTRY_TOKEN_MAX + 1);
    if (!token) {
        httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        return 0;
    }
    int rc = 1;
    if ((in->present & both) != both) {
        rc = current_credentials(reg, claims->tenant, channel_id, bot, sizeof bot, token,
                                 REGISTRY_TOKEN_MAX + 1, pin);
        if (rc == 0)
            respond_not_found(resp);
        else if (rc < 0)
            respond_db_error(reg, resp, (enum db_status)rc, "channel read failed", claims->tenant,
                             channel_id);
    }
    if (rc == 1) {
        const char *t = (in->present & REGISTRY_F_TOKEN) ? in->access_token : token;
        const char *b = (in->present & REGISTRY_F_BOT_USER_ID) ? in->bot_user_id : bot;
        rc = registry_owner_check(reg, claims->tenant, channel_id, t, b, resp) ? 1 : 0;
    }
    crypto_wipe(token, REGISTRY_TOKEN_MAX + 1);
    free(token);
    return rc == 1 ? 1 : 0;
}

static void channel_update(struct registry *reg, const struct auth_claims *claims,
                           const char *channel_id, const struct httpd_request *req,
                           struct httpd_response *resp)
{
    struct registry_input in;
    struct sealed_secrets sealed;
    struct channel_row row;
    if (!input_parse(reg, req, resp, REGISTRY_INPUT_PATCH, &in))
        return;
    memset(&sealed, 0, sizeof sealed);
    long long pin;
    if (!update_owner_check(reg, claims, channel_id, &in, resp, &pin))
        goto out;
    char pinned[24];
    snprintf(pinned, sizeof pinned, "%lld", pin);
    if (secrets_seal(reg, claims->tenant, channel_id, &in, &sealed) != 0) {
        log_error("cannot seal channel secrets", "tenant", claims->tenant, "channel", channel_id);
        httpd_respond_error(resp, 500, "internal", "cannot seal the channel's secrets", NULL);
        goto out;
    }
    char quota[24];
    snprintf(quota, sizeof quota, "%lld", in.monthly_quota);
    /* NULL leaves a column as it is (COALESCE below); no field may be set
     * to null through the API, so NULL is free to mean "absent". */
#define IF_SET(bit, v) ((in.present & (bit)) ? (v) : NULL)
    const char *values[] = {claims->tenant,
                            channel_id,
                            IF_SET(REGISTRY_F_NAME, in.name),
                            IF_SET(REGISTRY_F_SECRET, (char *)sealed.secret),
                            IF_SET(REGISTRY_F_TOKEN, (char *)sealed.token),
                            IF_SET(REGISTRY_F_BOT_USER_ID, in.bot_user_id),
                            IF_SET(REGISTRY_F_TIMEZONE, in.timezone),
                            IF_SET(REGISTRY_F_QUOTA, quota),
                            IF_SET(REGISTRY_F_SECRET, sealed.secret_fp),
                            IF_SET(REGISTRY_F_TOKEN, sealed.token_fp),
                            pin >= 0 ? pinned : NULL};
#undef IF_SET
    const int lengths[] = {0,
                           0,
                           0,
                           sealed.secret_len > 0 ? (int)sealed.secret_len : 0,
                           sealed.token_len > 0 ? (int)sealed.token_len : 0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0};
    const int binary[] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
    /* $11: the version whose credentials were checked with LINE, when only
     * one of token and bot user id changes: a concurrent change of the
     * other must not slip between the check and the write. */
    int rc =
        change_commit(reg,
                      "UPDATE channels SET name = COALESCE($3, name), "
                      "secret_sealed = COALESCE($4::bytea, secret_sealed), "
                      "access_token_sealed = COALESCE($5::bytea, access_token_sealed), "
                      "bot_user_id = COALESCE($6, bot_user_id), timezone = COALESCE($7, timezone), "
                      "monthly_quota = COALESCE($8::bigint, monthly_quota), "
                      "secret_fingerprint = COALESCE($9, secret_fingerprint), "
                      "access_token_fingerprint = COALESCE($10, access_token_fingerprint), "
                      "version = version + 1, updated_at = now() "
                      "WHERE tenant_id = $1 AND channel_id = $2 AND deleted_at IS NULL "
                      "AND ($11::bigint IS NULL OR version = $11::bigint) RETURNING " ROW_COLUMNS,
                      11, values, lengths, binary, &row);
    if (rc == 1) {
        bool rotated = in.present & (REGISTRY_F_SECRET | REGISTRY_F_TOKEN);
        change_log(reg, rotated ? "rotate" : "update",
                   rotated ? "channel updated; credentials rotated" : "channel updated", claims,
                   &row);
        respond_row(resp, 200, &row);
    } else if (rc == 0 && pin >= 0) {
        httpd_respond_error(resp, 409, "conflict",
                            "the channel changed or was deleted while its ownership was checked; "
                            "read it and try again",
                            NULL);
    } else if (rc == 0) {
        respond_not_found(resp);
    } else {
        respond_db_error(reg, resp, (enum db_status)rc, "channel update failed", claims->tenant,
                         channel_id);
    }
out:
    registry_input_wipe(&in);
    crypto_wipe(&sealed, sizeof sealed);
}

static void channel_delete(struct registry *reg, const struct auth_claims *claims,
                           const char *channel_id, struct httpd_response *resp)
{
    struct channel_row row;
    const char *values[] = {claims->tenant, channel_id};
    int rc = change_commit(reg,
                           "UPDATE channels SET deleted_at = now(), version = version + 1, "
                           "updated_at = now() WHERE tenant_id = $1 AND channel_id = $2 "
                           "AND deleted_at IS NULL RETURNING " ROW_COLUMNS,
                           2, values, NULL, NULL, &row);
    if (rc == 1) {
        change_log(reg, "delete", "channel deleted", claims, &row);
        httpd_respond(resp, 204, NULL, NULL, 0);
    } else if (rc == 0) {
        respond_not_found(resp);
    } else {
        respond_db_error(reg, resp, (enum db_status)rc, "channel delete failed", claims->tenant,
                         channel_id);
    }
}

static void channel_get(struct registry *reg, const struct auth_claims *claims,
                        const char *channel_id, struct httpd_response *resp)
{
    const char *values[] = {claims->tenant, channel_id};
    struct db_result *r = NULL;
    struct channel_row row;
    pthread_mutex_lock(&reg->api_lock);
    enum db_status st = db_execv(reg->api_db,
                                 "SELECT " ROW_COLUMNS " FROM channels WHERE tenant_id = $1 "
                                 "AND channel_id = $2 AND deleted_at IS NULL",
                                 2, values, NULL, NULL, true, &r);
    pthread_mutex_unlock(&reg->api_lock);
    if (st != DB_OK) {
        respond_db_error(reg, resp, st, "channel read failed", claims->tenant, channel_id);
    } else if (db_result_rows(r) != 1) {
        respond_not_found(resp);
    } else if (row_read(r, 0, &row) != 0) {
        log_error("channel row unreadable", "tenant", claims->tenant, "channel", channel_id);
        httpd_respond_error(resp, 500, "internal", "cannot read the channel", NULL);
    } else {
        respond_row(resp, 200, &row);
    }
    db_result_free(&r);
}

/* limit: 1..LIST_LIMIT_MAX decimal digits, nothing else. */
static int limit_parse(const char *text)
{
    if (!text)
        return LIST_LIMIT_DEFAULT;
    int v = 0;
    if (!*text || strlen(text) > 3)
        return -1;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= LIST_LIMIT_MAX ? v : -1;
}

/* Pages through the tenant's channels in byte order of channel_id. The
 * cursor is the last channel_id of the previous page (opaque to clients). */
static void channel_list(struct registry *reg, const struct auth_claims *claims,
                         const struct httpd_request *req, struct httpd_response *resp)
{
    const char *cursor = httpd_request_query(req, "cursor");
    int limit = limit_parse(httpd_request_query(req, "limit"));
    if (limit < 0) {
        httpd_respond_error(resp, 400, "invalid_value", "limit must be an integer from 1 to 100",
                            "limit");
        return;
    }
    if (cursor && !registry_channel_id_valid(cursor)) {
        httpd_respond_error(resp, 400, "invalid_value",
                            "cursor must be a next_cursor from a previous page", "cursor");
        return;
    }
    char fetch[8];
    snprintf(fetch, sizeof fetch, "%d", limit + 1); /* one more: is there a next page? */
    const char *values[] = {claims->tenant, cursor, fetch};
    struct db_result *r = NULL;
    pthread_mutex_lock(&reg->api_lock);
    enum db_status st =
        db_execv(reg->api_db,
                 "SELECT " ROW_COLUMNS " FROM channels WHERE tenant_id = $1 AND deleted_at IS NULL "
                 "AND ($2::text IS NULL OR channel_id COLLATE \"C\" > $2::text) "
                 "ORDER BY channel_id COLLATE \"C\" LIMIT $3::int",
                 3, values, NULL, NULL, true, &r);
    pthread_mutex_unlock(&reg->api_lock);
    if (st != DB_OK) {
        respond_db_error(reg, resp, st, "channel list failed", claims->tenant, NULL);
        return;
    }
    json_t *root = json_object();
    json_t *array = json_array();
    struct channel_row *row = malloc(sizeof *row);
    int rows = db_result_rows(r), shown = rows > limit ? limit : rows;
    bool ok = root && array && row;
    for (int i = 0; ok && i < shown; i++)
        ok = row_read(r, i, row) == 0 && registry_record_json_append(array, row) == 0;
    if (ok) {
        json_object_set_new(root, "channels", array);
        array = NULL;
        json_object_set_new(root, "next_cursor",
                            rows > limit ? json_string(row->channel_id) : json_null());
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    if (text)
        httpd_respond_json(resp, 200, text);
    else
        httpd_respond_error(resp, 500, "internal", "cannot render the channel list", NULL);
    free(text);
    free(row);
    json_decref(array);
    json_decref(root);
    db_result_free(&r);
}

/* --- routing ---------------------------------------------------------------------- */

/* The methods of each route, and the least role for each. */
enum { CHANNELS_LIST, CHANNELS_CREATE };
static const struct admin_method collection_methods[] = {
    [CHANNELS_LIST] = {"GET", "viewer"},
    [CHANNELS_CREATE] = {"POST", "operator"},
};
enum { CHANNEL_GET, CHANNEL_UPDATE, CHANNEL_DELETE };
static const struct admin_method item_methods[] = {
    [CHANNEL_GET] = {"GET", "viewer"},
    [CHANNEL_UPDATE] = {"PATCH", "operator"},
    [CHANNEL_DELETE] = {"DELETE", "operator"},
};

void registry_api(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                  struct httpd_response *resp)
{
    struct registry *reg = ctx;
    const char *path = httpd_request_path(req);
    if (!reg || !claims || !path || !httpd_request_method(req)) {
        httpd_respond_error(resp, 500, "internal", "registry not configured", NULL);
        return;
    }
    if (strcmp(path, COLLECTION_PATH) == 0) {
        int m = admin_api_route(claims, req, resp, collection_methods,
                                sizeof collection_methods / sizeof collection_methods[0]);
        if (m == CHANNELS_LIST)
            channel_list(reg, claims, req, resp);
        else if (m == CHANNELS_CREATE)
            channel_create(reg, claims, req, resp);
        return;
    }
    if (strncmp(path, ITEM_PREFIX, sizeof ITEM_PREFIX - 1) != 0) {
        httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
        return;
    }
    const char *id = path + sizeof ITEM_PREFIX - 1;
    int m = admin_api_route(claims, req, resp, item_methods,
                            sizeof item_methods / sizeof item_methods[0]);
    if (m < 0)
        return;
    /* Not a channel id at all: there is no such channel to show. */
    if (!registry_channel_id_valid(id)) {
        respond_not_found(resp);
        return;
    }
    if (m == CHANNEL_GET)
        channel_get(reg, claims, id, resp);
    else if (m == CHANNEL_UPDATE)
        channel_update(reg, claims, id, req, resp);
    else
        channel_delete(reg, claims, id, resp);
}
