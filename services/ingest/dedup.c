/* A bounded set per channel: a ring of the last ids (the oldest is
 * overwritten) plus chained hash buckets over the ring's slots, so that a
 * lookup costs a hash and a short chain whatever the size. One mutex for
 * all: a lookup or a record is a few hundred nanoseconds. */
#include "dedup.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEDUP_CHANNEL_BUCKETS 256

struct dedup_slot {
    char id[DEDUP_ID_MAX + 1]; /* "" when unused */
    int next;                  /* next slot in the same bucket, -1 ends */
    uint32_t bucket;
};

struct dedup_channel {
    char channel[DEDUP_CHANNEL_MAX + 1];
    struct dedup_slot *slots; /* the ring, per_channel long */
    int *buckets;             /* heads, nbuckets long, -1 when empty */
    size_t oldest;            /* the slot the next id takes */
    struct dedup_channel *next;
};

struct dedup {
    pthread_mutex_t mu;
    size_t per_channel;
    size_t nbuckets; /* per channel: a power of two, at least 2 x per_channel */
    size_t nchannels;
    struct dedup_channel *channels[DEDUP_CHANNEL_BUCKETS];
};

/* FNV-1a: short keys, no adversary gets to choose many (only signed
 * requests reach here). */
static uint32_t dedup_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

struct dedup *dedup_new(size_t per_channel)
{
    struct dedup *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->per_channel = per_channel ? per_channel : DEDUP_PER_CHANNEL;
    d->nbuckets = 1;
    while (d->nbuckets < 2 * d->per_channel)
        d->nbuckets *= 2;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void channel_free(struct dedup_channel *c)
{
    free(c->slots);
    free(c->buckets);
    free(c);
}

void dedup_free(struct dedup **dp)
{
    if (!dp || !*dp)
        return;
    struct dedup *d = *dp;
    for (size_t b = 0; b < DEDUP_CHANNEL_BUCKETS; b++) {
        while (d->channels[b]) {
            struct dedup_channel *c = d->channels[b];
            d->channels[b] = c->next;
            channel_free(c);
        }
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
    *dp = NULL;
}

static bool dedup_key_ok(const char *channel, const char *id)
{
    return channel && id && id[0] && strlen(channel) <= DEDUP_CHANNEL_MAX &&
           strlen(id) <= DEDUP_ID_MAX;
}

/* The channel's set; created when create is true (and the cap allows).
 * Under d->mu. */
static struct dedup_channel *channel_get(struct dedup *d, const char *channel, bool create)
{
    uint32_t b = dedup_hash(channel) % DEDUP_CHANNEL_BUCKETS;
    for (struct dedup_channel *c = d->channels[b]; c; c = c->next)
        if (strcmp(c->channel, channel) == 0)
            return c;
    if (!create || d->nchannels >= DEDUP_MAX_CHANNELS)
        return NULL;
    struct dedup_channel *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = calloc(d->per_channel, sizeof *c->slots);
    c->buckets = malloc(d->nbuckets * sizeof *c->buckets);
    if (!c->slots || !c->buckets) {
        channel_free(c);
        return NULL;
    }
    for (size_t i = 0; i < d->nbuckets; i++)
        c->buckets[i] = -1;
    memcpy(c->channel, channel, strlen(channel) + 1);
    c->next = d->channels[b];
    d->channels[b] = c;
    d->nchannels++;
    return c;
}

static int slot_find(const struct dedup *d, const struct dedup_channel *c, const char *id)
{
    uint32_t b = dedup_hash(id) & (uint32_t)(d->nbuckets - 1);
    for (int i = c->buckets[b]; i >= 0; i = c->slots[i].next)
        if (strcmp(c->slots[i].id, id) == 0)
            return i;
    return -1;
}

bool dedup_seen(struct dedup *d, const char *channel, const char *id)
{
    if (!d || !dedup_key_ok(channel, id))
        return false;
    pthread_mutex_lock(&d->mu);
    struct dedup_channel *c = channel_get(d, channel, false);
    bool seen = c && slot_find(d, c, id) >= 0;
    pthread_mutex_unlock(&d->mu);
    return seen;
}

void dedup_record(struct dedup *d, const char *channel, const char *id)
{
    if (!d || !dedup_key_ok(channel, id))
        return;
    pthread_mutex_lock(&d->mu);
    struct dedup_channel *c = channel_get(d, channel, true);
    if (!c || slot_find(d, c, id) >= 0) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    int i = (int)c->oldest;
    struct dedup_slot *s = &c->slots[i];
    if (s->id[0]) { /* evict the oldest id from its bucket's chain */
        int *link = &c->buckets[s->bucket];
        while (*link != i)
            link = &c->slots[*link].next;
        *link = s->next;
    }
    uint32_t b = dedup_hash(id) & (uint32_t)(d->nbuckets - 1);
    memcpy(s->id, id, strlen(id) + 1);
    s->bucket = b;
    s->next = c->buckets[b];
    c->buckets[b] = i;
    c->oldest = (c->oldest + 1) % d->per_channel;
    pthread_mutex_unlock(&d->mu);
}
