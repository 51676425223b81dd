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

    /* Cache refills: one connection; misses for the same id wait here and
     * then find the entry the first one stored. */
    pthread_mutex_t lookup_lock;
    struct db *lookup_db;
    int64_t lookup_db_down_until_ms; /* under lookup_lock */

    struct registry_cache *cache;
    struct metric *lookups; /* kizuna_registry_lookups_total{result} */
    struct metric *changes; /* kizuna_registry_changes_total{op} */
};

#endif
