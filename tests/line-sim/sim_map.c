/* The simulator's one hash map. Chaining keeps removal simple (retry keys
 * and reply tokens expire); the table doubles at load factor 1 so lookups
 * stay O(1) at benchmark volumes (hundreds of thousands of retry keys). */
#include "sim_map.h"

#include <stdlib.h>
#include <string.h>

struct sim_map_entry {
    struct sim_map_entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated copy */
};

struct sim_map {
    struct sim_map_entry **slots;
    size_t nslots; /* power of two */
    size_t count;
};

#define SIM_MAP_INITIAL 16

uint64_t sim_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    /* splitmix64 finaliser: FNV alone leaves the low bits weak. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

struct sim_map *sim_map_new(void)
{
    struct sim_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->slots = calloc(SIM_MAP_INITIAL, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->nslots = SIM_MAP_INITIAL;
    return m;
}

void sim_map_free(struct sim_map **mp, void (*free_value)(void *))
{
    if (!mp || !*mp)
        return;
    struct sim_map *m = *mp;
    for (size_t i = 0; i < m->nslots; i++) {
        struct sim_map_entry *e = m->slots[i];
        while (e) {
            struct sim_map_entry *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->slots);
    free(m);
    *mp = NULL;
}

static struct sim_map_entry **map_find(const struct sim_map *m, const char *key, uint64_t h)
{
    struct sim_map_entry **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp) {
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
            return pp;
        pp = &(*pp)->next;
    }
    return pp;
}

void *sim_map_get(const struct sim_map *m, const char *key)
{
    uint64_t h = sim_hash_bytes(key, strlen(key), SIM_HASH_SEED);
    struct sim_map_entry **pp = map_find(m, key, h);
    return *pp ? (*pp)->value : NULL;
}

/* Doubling failure is harmless: the map just stays denser. */
static void map_grow(struct sim_map *m)
{
    size_t n = m->nslots * 2;
    struct sim_map_entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        struct sim_map_entry *e = m->slots[i];
        while (e) {
            struct sim_map_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = slots[j];
            slots[j] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

int sim_map_put(struct sim_map *m, const char *key, void *value, void **old)
{
    size_t klen = strlen(key);
    uint64_t h = sim_hash_bytes(key, klen, SIM_HASH_SEED);
    struct sim_map_entry **pp = map_find(m, key, h);
    if (*pp) {
        if (old)
            *old = (*pp)->value;
        (*pp)->value = value;
        return 0;
    }
    struct sim_map_entry *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return -1;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, klen + 1);
    *pp = e;
    m->count++;
    if (old)
        *old = NULL;
    if (m->count > m->nslots)
        map_grow(m);
    return 0;
}

void *sim_map_remove(struct sim_map *m, const char *key)
{
    uint64_t h = sim_hash_bytes(key, strlen(key), SIM_HASH_SEED);
    struct sim_map_entry **pp = map_find(m, key, h);
    struct sim_map_entry *e = *pp;
    if (!e)
        return NULL;
    void *value = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return value;
}

size_t sim_map_count(const struct sim_map *m)
{
    return m ? m->count : 0;
}

void sim_map_each(const struct sim_map *m, void (*fn)(const char *key, void *value, void *ctx),
                  void *ctx)
{
    for (size_t i = 0; m && i < m->nslots; i++)
        for (struct sim_map_entry *e = m->slots[i]; e; e = e->next)
            fn(e->key, e->value, ctx);
}
