/* What registry.c (lifecycle, lookup) and registry_api.c (the
 * /v1/channels handlers) share. Not for the rest of ingest: they use
 * registry.h. */
#ifndef KIZUNA_INGEST_REGISTRY_PRIVATE_H
#define KIZUNA_INGEST_REGISTRY_PRIVATE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "registry.h"

struct db;
struct line_bot;
struct metric;
struct registry_cache;

struct registry {
    uint8_t key[CRYPTO_KEY_LEN];
    /* Where time zones are checked; NULL when the host has no zoneinfo
     * (then only the name's pattern is checked). */
    const char *zoneinfo_dir;
    char zoneinfo_buf[PATH_MAX];

    /* Admin API: one connection, one transaction at a time. */
    pthread_mutex_t api_lock;
    struct db *api_db;

    /* Cache refills: one connection, used by one refilling thread at a
     * time (lookup_busy). lookup_lock guards the fields below and is never
     * held during a query, so a database that stops answering holds up the
     * one refill, never the webhook threads: those with an expired entry
     * answer from it, the others wait on lookup_done for a bounded time. */
    pthread_mutex_t lookup_lock;
    pthread_cond_t lookup_done; /* a refill ended (monotonic clock) */
    bool lookup_busy;           /* a thread is querying lookup_db */
    struct db *lookup_db;       /* only the thread that set lookup_busy */
    int64_t lookup_db_down_until_ms;

    /* The ownership check's calls to LINE (line_bot.h): no lock, any thread. */
    struct line_bot *line;

    struct registry_cache *cache;
    struct metric *lookups;      /* kizuna_registry_lookups_total{result} */
    struct metric *changes;      /* kizuna_registry_changes_total{op} */
    struct metric *owner_checks; /* kizuna_registry_ownership_checks_total{result} */
};

struct httpd_response;

/* Proves that access_token is the token of bot bot_user_id's channel: asks
 * LINE's GET /v2/bot/info (line_bot.h) and compares its userId. Call with
 * no lock held and outside any transaction; it blocks for up to
 * LINE_BOT_TIMEOUT_MS. Returns true, or false after answering resp: 422
 * invalid_access_token (field access_token) when LINE refuses the token,
 * 422 channel_not_owned (field bot_user_id) when the token is another
 * bot's, 503 line_unavailable with Retry-After when LINE cannot be asked,
 * 502 line_unavailable when its answer is unreadable. Logs once, never the
 * token (registry_owner.c). Any thread. */
bool registry_owner_check(struct registry *reg, const char *tenant, const char *channel_id,
                          const char *access_token, const char *bot_user_id,
                          struct httpd_response *resp);

#endif
