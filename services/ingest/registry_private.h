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

    struct registry_cache *cache;
    struct metric *lookups; /* kizuna_registry_lookups_total{result} */
    struct metric *changes; /* kizuna_registry_changes_total{op} */
};

#endif
