/* Accepted retry keys live in a map for lookup and in a FIFO in acceptance
 * order, so expiry pops from the head instead of scanning: memory stays
 * bounded by 24 hours of traffic however long the simulator runs. */
#include "sim_retrykey.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sim_map.h"

struct rk_node {
    struct sim_retrykey_entry entry;
    struct rk_node *next;
    char key[]; /* copy, to remove the map entry on expiry */
};

struct sim_retrykeys {
    struct sim_map *map; /* key -> struct rk_node */
    struct rk_node *head, *tail;
};

bool sim_retrykey_valid(const char *key)
{
    if (!key || strlen(key) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? key[i] != '-' : !isxdigit((unsigned char)key[i]))
            return false;
    }
    return true;
}

struct sim_retrykeys *sim_retrykeys_new(void)
{
    struct sim_retrykeys *rk = calloc(1, sizeof *rk);
    if (!rk)
        return NULL;
    rk->map = sim_map_new();
    if (!rk->map) {
        free(rk);
        return NULL;
    }
    return rk;
}

static void rk_node_free(struct rk_node *n)
{
    free(n->entry.sent_messages);
    free(n);
}

void sim_retrykeys_free(struct sim_retrykeys **rkp)
{
    if (!rkp || !*rkp)
        return;
    struct sim_retrykeys *rk = *rkp;
    sim_map_free(&rk->map, NULL);
    for (struct rk_node *n = rk->head; n;) {
        struct rk_node *next = n->next;
        rk_node_free(n);
        n = next;
    }
    free(rk);
    *rkp = NULL;
}

void sim_retrykeys_expire(struct sim_retrykeys *rk, int64_t now_ns, int64_t ttl_ns)
{
    while (rk->head && rk->head->entry.accepted_ns <= now_ns - ttl_ns) {
        struct rk_node *n = rk->head;
        rk->head = n->next;
        if (!rk->head)
            rk->tail = NULL;
        sim_map_remove(rk->map, n->key);
        rk_node_free(n);
    }
}

const struct sim_retrykey_entry *sim_retrykeys_find(struct sim_retrykeys *rk, const char *key,
                                                    int64_t now_ns, int64_t ttl_ns)
{
    sim_retrykeys_expire(rk, now_ns, ttl_ns);
    struct rk_node *n = sim_map_get(rk->map, key);
    return n ? &n->entry : NULL;
}

int sim_retrykeys_add(struct sim_retrykeys *rk, const char *key, const char *request_id,
                      const char *sent_messages, int64_t now_ns)
{
    size_t klen = strlen(key);
    struct rk_node *n = calloc(1, sizeof *n + klen + 1);
    if (!n)
        return -1;
    memcpy(n->key, key, klen + 1);
    size_t rlen = strlen(request_id);
    if (rlen >= sizeof n->entry.request_id)
        rlen = sizeof n->entry.request_id - 1;
    memcpy(n->entry.request_id, request_id, rlen);
    n->entry.accepted_ns = now_ns;
    if (sent_messages && !(n->entry.sent_messages = strdup(sent_messages)))
        goto fail;
    void *old = NULL;
    if (sim_map_put(rk->map, key, n, &old) != 0)
        goto fail;
    if (old) {
        /* Callers add only after find() returned NULL, so this is not
         * expected; should the key still be present, replace it cleanly. */
        struct rk_node **pp = &rk->head;
        struct rk_node *prev = NULL;
        while (*pp && *pp != old) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = ((struct rk_node *)old)->next;
            if (rk->tail == old)
                rk->tail = prev;
        }
        rk_node_free(old);
    }
    if (rk->tail)
        rk->tail->next = n;
    else
        rk->head = n;
    rk->tail = n;
    return 0;
fail:
    rk_node_free(n);
    return -1;
}

size_t sim_retrykeys_count(const struct sim_retrykeys *rk)
{
    return sim_map_count(rk->map);
}
