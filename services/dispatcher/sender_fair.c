/* The sender's fair shares (sender_fair.h): a round-robin that resumes
 * after the last channel served and gives each channel one call per round,
 * and per-tenant counters with caps. Pure: no clock, no locks, no I/O. */
#include "sender_fair.h"

#include <limits.h>
#include <stdlib.h>

#include "strmap.h"

size_t sender_rr_run(struct sender_rr *rr, size_t n,
                     enum sender_rr_step (*visit)(void *ctx, size_t i), void *ctx)
{
    if (n == 0)
        return 0;
    if (rr->next >= n)
        rr->next = 0;
    size_t started = 0;
    for (;;) {
        size_t first = rr->next, round = 0;
        for (size_t k = 0; k < n; k++) {
            size_t i = (first + k) % n;
            enum sender_rr_step step = visit(ctx, i);
            if (step == SENDER_RR_STOP)
                return started + round;
            if (step == SENDER_RR_STARTED) {
                round++;
                rr->next = (i + 1) % n;
            }
        }
        if (round == 0)
            return started;
        started += round;
    }
}

size_t sender_rr_compact(struct sender_rr *rr, size_t n, bool (*keep)(void *ctx, size_t i),
                         void (*move)(void *ctx, size_t from, size_t to), void *ctx)
{
    size_t out = 0, next = rr->next < n ? rr->next : 0, new_next = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == next)
            new_next = out; /* this slot, or the first kept one after it */
        if (!keep(ctx, i))
            continue;
        if (out != i)
            move(ctx, i, out);
        out++;
    }
    rr->next = new_next < out ? new_next : 0;
    return out;
}

struct sender_counts {
    struct strmap *map; /* key -> long* */
};

struct sender_counts *sender_counts_new(void)
{
    struct sender_counts *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map = strmap_new();
    if (!c->map) {
        free(c);
        return NULL;
    }
    return c;
}

void sender_counts_free(struct sender_counts **cp)
{
    if (!cp || !*cp)
        return;
    strmap_free(&(*cp)->map, free);
    free(*cp);
    *cp = NULL;
}

long sender_counts_get(const struct sender_counts *c, const char *key)
{
    const long *v = strmap_get(c->map, key);
    return v ? *v : 0;
}

int sender_counts_add(struct sender_counts *c, const char *key, long delta)
{
    long *v = strmap_get(c->map, key);
    if (!v) {
        if (delta <= 0)
            return 0;
        v = malloc(sizeof *v);
        if (!v || strmap_put(c->map, key, v) != 0) {
            free(v);
            return -1;
        }
        *v = 0;
    }
    *v += delta;
    if (*v <= 0)
        free(strmap_remove(c->map, key));
    return 0;
}

long sender_counts_room(const struct sender_counts *c, const char *key, long cap)
{
    if (cap <= 0)
        return LONG_MAX;
    long have = sender_counts_get(c, key);
    return have >= cap ? 0 : cap - have;
}
