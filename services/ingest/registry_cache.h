/* The registry's read cache: channel id -> channel_view (or "no such
 * channel"), each entry with its own expiry, bounded in size so that a flood
 * of made-up ids cannot grow memory. Time is passed in, so the expiry rules
 * are unit-tested without sleeping. Internally locked: any thread. */
#ifndef KIZUNA_INGEST_REGISTRY_CACHE_H
#define KIZUNA_INGEST_REGISTRY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct registry_cache;

enum registry_cache_result {
    REGISTRY_CACHE_MISS = 0,  /* nothing usable: ask the database */
    REGISTRY_CACHE_FRESH = 1, /* within its TTL: *found tells which kind */
    REGISTRY_CACHE_STALE = 2, /* a known channel past its TTL but within
                               * stale_ms: ask the database, fall back to it */
};

/* max_entries bounds the number of entries. Returns NULL on allocation
 * failure. */
struct registry_cache *registry_cache_new(size_t max_entries);
/* Wipes the cached secrets, frees, sets *cache to NULL. Accepts NULL. */
void registry_cache_free(struct registry_cache **cache);

/* Looks channel_id up at time now_ms. On FRESH, *found says whether the
 * channel exists, and out is filled if it does; on STALE, out is filled
 * (only known channels are served stale). */
enum registry_cache_result registry_cache_get(struct registry_cache *cache, const char *channel_id,
                                              int64_t now_ms, int64_t stale_ms, bool *found,
                                              struct channel_view *out);

/* Stores view (found) or the absence of channel_id (view NULL) until
 * now_ms + ttl_ms. When the cache is full it first drops expired entries,
 * then entries for unknown ids; if it is still full the entry is not kept. */
void registry_cache_put(struct registry_cache *cache, const char *channel_id,
                        const struct channel_view *view, int64_t now_ms, int64_t ttl_ms);

/* Forgets channel_id, so that the next lookup reads the database. */
void registry_cache_forget(struct registry_cache *cache, const char *channel_id);

/* Number of entries (tests). */
size_t registry_cache_size(struct registry_cache *cache);

#endif
