/* Every webhook request looks its channel up here, so a hit must cost a
 * hash and a read lock and never a database round trip. A chained hash table
 * under a rwlock: readers share the lock, and writers (a refill after a miss,
 * an admin change) are rare. */
#include "registry_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "registry_input.h"

#define CACHE_BUCKETS 1024 /* power of two */

struct cache_entry {
    struct cache_entry *next;
    char channel_id[sizeof((struct channel_view *)0)->channel_id];
    bool found;
    int64_t expires_at_ms;
    struct channel_view view; /* valid when found */
};

struct registry_cache {
    pthread_rwlock_t lock;
    struct cache_entry *buckets[CACHE_BUCKETS];
    size_t count;
    size_t max_entries;
};

static size_t cache_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & (CACHE_BUCKETS - 1);
}

static void entry_free(struct cache_entry *e)
{
    crypto_wipe(e, sizeof *e);
    free(e);
}

struct registry_cache *registry_cache_new(size_t max_entries)
{
    struct registry_cache *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    if (pthread_rwlock_init(&cache->lock, NULL) != 0) {
        free(cache);
        return NULL;
    }
    cache->max_entries = max_entries ? max_entries : 1;
    return cache;
}

void registry_cache_free(struct registry_cache **cache)
{
    if (!cache || !*cache)
        return;
    struct registry_cache *c = *cache;
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        for (struct cache_entry *e = c->buckets[b], *next; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    }
    pthread_rwlock_destroy(&c->lock);
    free(c);
    *cache = NULL;
}

static struct cache_entry *cache_find(struct registry_cache *c, const char *channel_id)
{
    for (struct cache_entry *e = c->buckets[cache_hash(channel_id)]; e; e = e->next)
        if (strcmp(e->channel_id, channel_id) == 0)
            return e;
    return NULL;
}

enum registry_cache_result registry_cache_get(struct registry_cache *cache, const char *channel_id,
                                              int64_t now_ms, int64_t stale_ms, bool *found,
                                              struct channel_view *out)
{
    enum registry_cache_result res = REGISTRY_CACHE_MISS;
    *found = false;
    pthread_rwlock_rdlock(&cache->lock);
    struct cache_entry *e = cache_find(cache, channel_id);
    if (e && now_ms < e->expires_at_ms) {
        res = REGISTRY_CACHE_FRESH;
        *found = e->found;
    } else if (e && e->found && now_ms - e->expires_at_ms < stale_ms) {
        res = REGISTRY_CACHE_STALE;
        *found = true;
    }
    if (res != REGISTRY_CACHE_MISS && *found && out)
        *out = e->view;
    pthread_rwlock_unlock(&cache->lock);
    return res;
}

/* Drops entries matching the predicate; called with the write lock held. */
static void cache_sweep(struct registry_cache *c, int64_t now_ms, bool unknown_ids_too)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        struct cache_entry **link = &c->buckets[b];
        while (*link) {
            struct cache_entry *e = *link;
            if (now_ms >= e->expires_at_ms || (unknown_ids_too && !e->found)) {
                *link = e->next;
                entry_free(e);
                c->count--;
            } else {
                link = &e->next;
            }
        }
    }
}

void registry_cache_put(struct registry_cache *cache, const char *channel_id,
                        const struct channel_view *view, int64_t now_ms, int64_t ttl_ms)
{
    size_t idlen = strlen(channel_id);
    if (idlen >= sizeof((struct cache_entry *)0)->channel_id)
        return;
    pthread_rwlock_wrlock(&cache->lock);
    struct cache_entry *e = cache_find(cache, channel_id);
    if (!e) {
        if (cache->count >= cache->max_entries)
            cache_sweep(cache, now_ms, false);
        if (cache->count >= cache->max_entries)
            cache_sweep(cache, now_ms, true);
        if (cache->count >= cache->max_entries)
            goto out;
        e = calloc(1, sizeof *e);
        if (!e)
            goto out;
        memcpy(e->channel_id, channel_id, idlen + 1);
        size_t b = cache_hash(channel_id);
        e->next = cache->buckets[b];
        cache->buckets[b] = e;
        cache->count++;
    }
    e->found = view != NULL;
    if (view)
        e->view = *view;
    else
        crypto_wipe(&e->view, sizeof e->view);
    e->expires_at_ms = now_ms + ttl_ms;
out:
    pthread_rwlock_unlock(&cache->lock);
}

void registry_cache_forget(struct registry_cache *cache, const char *channel_id)
{
    pthread_rwlock_wrlock(&cache->lock);
    struct cache_entry **link = &cache->buckets[cache_hash(channel_id)];
    for (; *link; link = &(*link)->next) {
        if (strcmp((*link)->channel_id, channel_id) == 0) {
            struct cache_entry *e = *link;
            *link = e->next;
            entry_free(e);
            cache->count--;
            break;
        }
    }
    pthread_rwlock_unlock(&cache->lock);
}

size_t registry_cache_size(struct registry_cache *cache)
{
    pthread_rwlock_rdlock(&cache->lock);
    size_t n = cache->count;
    pthread_rwlock_unlock(&cache->lock);
    return n;
}
