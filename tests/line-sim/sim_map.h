/* A string-keyed hash map (chained, grows by doubling) and the 64-bit hash
 * the simulator uses for keys and message fingerprints. Not thread-safe:
 * every map lives inside a channel or the registry and is used under that
 * owner's lock. */
#ifndef LINESIM_MAP_H
#define LINESIM_MAP_H

#include <stddef.h>
#include <stdint.h>

struct sim_map;

/* FNV-1a over len bytes, continuing from seed (use SIM_HASH_SEED to start),
 * then a final avalanche so that nearby inputs spread over all bits. */
#define SIM_HASH_SEED 0xcbf29ce484222325ULL
uint64_t sim_hash_bytes(const void *data, size_t len, uint64_t seed);

/* Returns NULL on allocation failure. */
struct sim_map *sim_map_new(void);
/* Frees the map and its key copies; free_value (may be NULL) is called on
 * each value. Accepts NULL and sets *m to NULL. */
void sim_map_free(struct sim_map **m, void (*free_value)(void *));

/* The value stored under key, or NULL. */
void *sim_map_get(const struct sim_map *m, const char *key);
/* Stores value under key (the key is copied). If the key was present its old
 * value is returned through *old (or NULL) and replaced. Returns 0, or -1 on
 * allocation failure (nothing changed). */
int sim_map_put(struct sim_map *m, const char *key, void *value, void **old);
/* Removes key and returns its value (the caller owns it), or NULL. */
void *sim_map_remove(struct sim_map *m, const char *key);
size_t sim_map_count(const struct sim_map *m);
/* Calls fn on every entry, in no particular order. fn must not change m. */
void sim_map_each(const struct sim_map *m, void (*fn)(const char *key, void *value, void *ctx),
                  void *ctx);

#endif
