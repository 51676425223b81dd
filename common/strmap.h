/* A small string-keyed hash map of pointers, for tables keyed by an id
 * (in the dispatcher: credentials and send state by channel id, deliveries
 * in memory by request id). Chained, doubling at load 1. Not locked: one
 * owner, or the owner's lock around every call. */
#ifndef KIZUNA_STRMAP_H
#define KIZUNA_STRMAP_H

#include <stddef.h>

struct strmap;

/* An empty map, or NULL when memory runs out. */
struct strmap *strmap_new(void);
/* Frees the map (calling free_value on each value unless it is NULL) and
 * sets *m to NULL; accepts NULL and *m == NULL. */
void strmap_free(struct strmap **m, void (*free_value)(void *value));

/* The value under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Sets key (copied) to value (not owned by the map), replacing any value.
 * Returns 0, or -1 when memory runs out (nothing changed). */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value, or NULL if absent. */
void *strmap_remove(struct strmap *m, const char *key);
size_t strmap_size(const struct strmap *m);
/* Calls fn for every entry, in no particular order; fn must not change m. */
void strmap_each(const struct strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                 void *ctx);

#endif
