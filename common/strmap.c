/* The hash map behind the dispatcher's per-channel and per-request tables:
 * FNV-1a over the key, chained buckets, doubling when the entries outnumber
 * the buckets, so lookups stay O(1) whether a replica holds ten channels or
 * a hundred thousand queued requests. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRMAP_INITIAL_BUCKETS 64

struct strmap_entry {
    struct strmap_entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated */
};

struct strmap {
    struct strmap_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t size;
};

static uint64_t strmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

struct strmap *strmap_new(void)
{
    struct strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->buckets = calloc(STRMAP_INITIAL_BUCKETS, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->nbuckets = STRMAP_INITIAL_BUCKETS;
    return m;
}

void strmap_free(struct strmap **mp, void (*free_value)(void *value))
{
    if (!mp || !*mp)
        return;
    struct strmap *m = *mp;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
    *mp = NULL;
}

static struct strmap_entry **strmap_slot(const struct strmap *m, const char *key, uint64_t hash)
{
    struct strmap_entry **slot = &m->buckets[hash & (m->nbuckets - 1)];
    while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->next;
    return slot;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (!m || !key)
        return NULL;
    struct strmap_entry *e = *strmap_slot(m, key, strmap_hash(key));
    return e ? e->value : NULL;
}

/* Doubling keeps chains short; a failed allocation just leaves them longer. */
static void strmap_grow(struct strmap *m)
{
    size_t n = m->nbuckets * 2;
    struct strmap_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
    if (!m || !key)
        return -1;
    uint64_t hash = strmap_hash(key);
    struct strmap_entry **slot = strmap_slot(m, key, hash);
    if (*slot) {
        (*slot)->value = value;
        return 0;
    }
    size_t len = strlen(key);
    struct strmap_entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return -1;
    e->next = NULL;
    e->hash = hash;
    e->value = value;
    memcpy(e->key, key, len + 1);
    *slot = e;
    m->size++;
    if (m->size > m->nbuckets)
        strmap_grow(m);
    return 0;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    if (!m || !key)
        return NULL;
    struct strmap_entry **slot = strmap_slot(m, key, strmap_hash(key));
    struct strmap_entry *e = *slot;
    if (!e)
        return NULL;
    *slot = e->next;
    void *value = e->value;
    free(e);
    m->size--;
    return value;
}

size_t strmap_size(const struct strmap *m)
{
    return m ? m->size : 0;
}

void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                 void *ctx)
{
    if (!m || !fn)
        return;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct strmap_entry *e = m->buckets[i]; e; e = e->next)
            fn(ctx, e->key, e->value);
}
