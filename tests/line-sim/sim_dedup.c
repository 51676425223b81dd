/* Delivery fingerprints for the duplicate counter; the definition of a
 * duplicate is in sim_dedup.h. */
#include "sim_dedup.h"

#include <stdlib.h>
#include <string.h>

#include "sim_map.h"

char *sim_dedup_canonical(const json_t *messages)
{
    return json_dumps(messages, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

uint64_t sim_dedup_messages_hash(const char *canonical)
{
    return sim_hash_bytes(canonical, strlen(canonical), SIM_HASH_SEED);
}

uint64_t sim_dedup_fingerprint(const char *recipient, uint64_t messages_hash)
{
    /* The NUL separates recipient from hash so "U1"+h never equals "U"+h'. */
    uint64_t h = sim_hash_bytes(recipient, strlen(recipient) + 1, SIM_HASH_SEED);
    h = sim_hash_bytes(&messages_hash, sizeof messages_hash, h);
    return h ? h : 1; /* 0 marks empty slots */
}

static int fpset_insert(uint64_t *slots, size_t cap, uint64_t fp)
{
    size_t i = (size_t)fp & (cap - 1);
    while (slots[i]) {
        if (slots[i] == fp)
            return 0;
        i = (i + 1) & (cap - 1);
    }
    slots[i] = fp;
    return 1;
}

int sim_fpset_add(struct sim_fpset *s, uint64_t fp)
{
    if (fp == 0)
        fp = 1;
    /* Keep the load under 1/2 so linear probes stay short. */
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *slots = calloc(ncap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                fpset_insert(slots, ncap, s->slots[i]);
        free(s->slots);
        s->slots = slots;
        s->cap = ncap;
    }
    int added = fpset_insert(s->slots, s->cap, fp);
    s->count += (size_t)added;
    return added;
}

void sim_fpset_clear(struct sim_fpset *s)
{
    free(s->slots);
    memset(s, 0, sizeof *s);
}
