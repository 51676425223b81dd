/* The channel registry's lifecycle, the lookup that the webhook path makes
 * on every request. (The `channels` outbox is published by ingest's outbox
 * relay, common/outbox_relay.h, started in main.c.)
 *
 * Secrets at rest: the channel secret and the access token are each sealed
 * with crypto_seal under the data key, with the associated data
 * "<tenant_id>/<channel_id>" (registry_aad), so a sealed box copied to
 * another channel's or tenant's row no longer opens. The dispatcher opens
 * ChannelConfig.access_token_sealed with the same key and the same AAD,
 * rebuilt from the record's tenant_id and channel_id.
 *
 * Lookups: a hit is served from registry_cache without touching the
 * database. Known channels are cached for REGISTRY_TTL_FOUND_MS, unknown ids
 * for REGISTRY_TTL_MISSING_MS (a flood of made-up ids costs one query per id
 * per TTL, and ids that are not digits never reach the database). Changes
 * made through this process's API are visible at once; those made by other
 * replicas after at most the TTL. While the database is unreachable, a known
 * channel is served from its expired entry for up to REGISTRY_STALE_MS, so
 * webhooks keep being accepted through a short outage; that includes a
 * database that accepts the query and never answers (the refill is bounded
 * by DB_STATEMENT_TIMEOUT_MS, and no lock is held while it waits, so other
 * lookups answer from their expired entries at once). */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "line_bot.h"
#include "log.h"
#include "metrics.h"
#include "registry_cache.h"
#include "registry_input.h"
#include "registry_private.h"
#include "registry_record.h"

#define REGISTRY_TTL_FOUND_MS 5000
#define REGISTRY_TTL_MISSING_MS 2000
#define REGISTRY_STALE_MS (10 * 60 * 1000)
#define REGISTRY_CACHE_MAX 65536
/* After a failed refill, lookups do not retry the database for this long:
 * webhook threads must not queue behind reconnect attempts. */
#define REGISTRY_DB_BACKOFF_MS 1000
/* A lookup with nothing cached waits this long for another thread's refill
 * to end before it answers "try again" (503): LINE retries a webhook. */
#define REGISTRY_REFILL_WAIT_MS 5000

/* $TZDIR if set (as the C library does), else the usual folder; a host
 * without one gets the pattern check only, said once at start. */
static void registry_zoneinfo_init(struct registry *reg)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && strlen(dir) < sizeof reg->zoneinfo_buf) {
        memcpy(reg->zoneinfo_buf, dir, strlen(dir) + 1);
        reg->zoneinfo_dir = reg->zoneinfo_buf;
    } else {
        log_warn("no zoneinfo folder; channel time zones are checked by pattern only", "dir", dir);
    }
}

struct registry *registry_new(const char *database_url, const uint8_t key[CRYPTO_KEY_LEN],
                              const char *line_api_base, char *errstr, size_t errcap)
{
    char dberr[256] = "";
    if (errcap)
        errstr[0] = '\0';
    if (!database_url || !key || !line_api_base) {
        snprintf(errstr, errcap, "registry_new: missing database URL, key or LINE base URL");
        return NULL;
    }
    struct registry *reg = calloc(1, sizeof *reg);
    if (!reg) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    memcpy(reg->key, key, CRYPTO_KEY_LEN);
    pthread_mutex_init(&reg->api_lock, NULL);
    pthread_mutex_init(&reg->lookup_lock, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&reg->lookup_done, &cattr);
    pthread_condattr_destroy(&cattr);
    registry_zoneinfo_init(reg);

    reg->line = line_bot_new(line_api_base, errstr, errcap);
    if (!reg->line)
        goto fail;
    reg->cache = registry_cache_new(REGISTRY_CACHE_MAX);
    if (!reg->cache) {
        snprintf(errstr, errcap, "out of memory");
        goto fail;
    }
    struct db **conns[] = {&reg->api_db, &reg->lookup_db};
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
        *conns[i] = db_connect(database_url, dberr, sizeof dberr);
        if (!*conns[i]) {
            snprintf(errstr, errcap, "registry database: %s", dberr);
            goto fail;
        }
    }
    reg->lookups = metrics_counter("kizuna_registry_lookups_total",
                                   "Channel lookups by the webhook path, by result", "result");
    reg->changes = metrics_counter(
        "kizuna_registry_changes_total",
        "Channel registry changes through the admin API (create, update, rotate, delete)", "op");
    reg->owner_checks = metrics_counter(
        "kizuna_registry_ownership_checks_total",
        "Ownership checks with LINE's bot info at registration, by result (owned, not_owned, "
        "invalid_token, unavailable)",
        "result");
    return reg;

fail:
    registry_free(&reg);
    return NULL;
}

void registry_free(struct registry **regp)
{
    if (!regp || !*regp)
        return;
    struct registry *reg = *regp;
    db_free(&reg->api_db);
    db_free(&reg->lookup_db);
    registry_cache_free(&reg->cache);
    line_bot_free(&reg->line);
    pthread_mutex_destroy(&reg->api_lock);
    pthread_mutex_destroy(&reg->lookup_lock);
    pthread_cond_destroy(&reg->lookup_done);
    crypto_wipe(reg->key, sizeof reg->key);
    free(reg);
    *regp = NULL;
}

static void lookup_count(struct registry *reg, const char *result)
{
    if (reg->lookups)
        metrics_add(reg->lookups, 1, result);
}

/* Reads one channel for the webhook path. Returns 0 (view filled), 1 (no
 * such channel) or < 0: a db_status, or DB_FATAL when the secret does not
 * open (wrong KIZUNA_DATA_KEY, or a row that was tampered with). Called
 * by the thread that set lookup_busy, without lookup_lock; was_down
 * quiets the warning while the database is known to be away. */
static int lookup_fetch(struct registry *reg, const char *channel_id, struct channel_view *view,
                        bool was_down)
{
    const char *params[] = {channel_id};
    struct db_result *r = NULL;
    enum db_status st = db_execv(reg->lookup_db,
                                 "SELECT tenant_id, bot_user_id, secret_sealed FROM channels "
                                 "WHERE channel_id = $1 AND deleted_at IS NULL",
                                 1, params, NULL, NULL, true, &r);
    if (st != DB_OK) {
        if (!was_down)
            log_warn("channel lookup: database query failed", "channel", channel_id, "error",
                     db_error_message(reg->lookup_db));
        return st;
    }
    int rc = 1;
    if (db_result_rows(r) != 1)
        goto out;
    size_t tlen = db_result_length(r, 0, 0), blen = db_result_length(r, 0, 1);
    size_t slen = db_result_length(r, 0, 2);
    const char *tenant = db_result_value(r, 0, 0);
    char aad[REGISTRY_AAD_MAX];
    memset(view, 0, sizeof *view);
    rc = DB_FATAL;
    if (tlen >= sizeof view->tenant_id || blen >= sizeof view->bot_user_id)
        goto bad_row;
    memcpy(view->tenant_id, tenant, tlen);
    memcpy(view->bot_user_id, db_result_value(r, 0, 1), blen);
    snprintf(view->channel_id, sizeof view->channel_id, "%s", channel_id);
    int aadlen = registry_aad(view->tenant_id, channel_id, aad, sizeof aad);
    long n = aadlen < 0 ? -1
                        : crypto_open(reg->key, aad, (size_t)aadlen,
                                      (const uint8_t *)db_result_value(r, 0, 2), slen, view->secret,
                                      sizeof view->secret);
    if (n <= 0)
        goto bad_row;
    view->secret_len = (size_t)n;
    rc = 0;
    goto out;

bad_row:
    crypto_wipe(view, sizeof *view);
    log_error("channel secret does not open (wrong KIZUNA_DATA_KEY or a tampered row)", "tenant",
              tlen < AUTH_FIELD_MAX ? tenant : "", "channel", channel_id);
out:
    db_result_free(&r);
    return rc;
}

/* Answers from an expired entry, or says why there is none. */
static int lookup_fallback(struct registry *reg, enum registry_cache_result cached, int rc,
                           struct channel_view *out)
{
    if (rc != 1 && cached == REGISTRY_CACHE_STALE) {
        lookup_count(reg, "stale");
        return 0; /* out was filled from the expired entry */
    }
    crypto_wipe(out, sizeof *out); /* no stale secret left behind */
    lookup_count(reg, rc == 1 ? "unknown" : "error");
    return rc;
}

int registry_lookup(struct registry *reg, const char *channel_id, struct channel_view *out)
{
    if (!reg || !out)
        return DB_FATAL;
    if (!registry_channel_id_valid(channel_id)) {
        lookup_count(reg, "invalid");
        return 1;
    }
    bool found = false;
    enum registry_cache_result cached =
        registry_cache_get(reg->cache, channel_id, clock_mono_ms(), REGISTRY_STALE_MS, &found, out);
    if (cached == REGISTRY_CACHE_FRESH) {
        lookup_count(reg, found ? "hit" : "hit_unknown");
        return found ? 0 : 1;
    }

    /* Become the refilling thread, or answer without the database: from
     * the expired entry at once, else after waiting (bounded) for the
     * thread that is refilling. */
    struct timespec give_up = clock_mono_deadline(REGISTRY_REFILL_WAIT_MS);
    pthread_mutex_lock(&reg->lookup_lock);
    for (;;) {
        int64_t now = clock_mono_ms();
        /* Another thread may have refilled the entry meanwhile. */
        cached = registry_cache_get(reg->cache, channel_id, now, REGISTRY_STALE_MS, &found, out);
        if (cached == REGISTRY_CACHE_FRESH) {
            pthread_mutex_unlock(&reg->lookup_lock);
            lookup_count(reg, found ? "hit" : "hit_unknown");
            return found ? 0 : 1;
        }
        if (now < reg->lookup_db_down_until_ms) {
            pthread_mutex_unlock(&reg->lookup_lock);
            return lookup_fallback(reg, cached, DB_RETRY, out);
        }
        if (!reg->lookup_busy)
            break;
        if (cached == REGISTRY_CACHE_STALE ||
            pthread_cond_timedwait(&reg->lookup_done, &reg->lookup_lock, &give_up) != 0) {
            pthread_mutex_unlock(&reg->lookup_lock);
            return lookup_fallback(reg, cached, DB_RETRY, out);
        }
    }
    reg->lookup_busy = true;
    bool was_down = reg->lookup_db_down_until_ms != 0;
    pthread_mutex_unlock(&reg->lookup_lock);

    struct channel_view view;
    int rc = lookup_fetch(reg, channel_id, &view, was_down);

    pthread_mutex_lock(&reg->lookup_lock);
    int64_t now = clock_mono_ms();
    if (rc == 0 || rc == 1) {
        if (reg->lookup_db_down_until_ms != 0)
            log_info("channel lookup: database reachable again");
        reg->lookup_db_down_until_ms = 0;
        registry_cache_put(reg->cache, channel_id, rc == 0 ? &view : NULL, now,
                           rc == 0 ? REGISTRY_TTL_FOUND_MS : REGISTRY_TTL_MISSING_MS);
    } else if (rc == DB_RETRY) {
        reg->lookup_db_down_until_ms = now + REGISTRY_DB_BACKOFF_MS;
    }
    reg->lookup_busy = false;
    pthread_cond_broadcast(&reg->lookup_done);
    pthread_mutex_unlock(&reg->lookup_lock);

    if (rc == 0) {
        *out = view;
        crypto_wipe(&view, sizeof view);
        lookup_count(reg, "found");
        return 0;
    }
    return lookup_fallback(reg, cached, rc, out);
}
