/* What "delivered twice" means to the simulator.
 *
 * X-Line-Retry-Key makes a second acceptance of the same key impossible, so
 * counting repeated keys would always read 0 and prove nothing. What a
 * friend would notice is receiving the same messages twice. So a delivery
 * is a duplicate when the same recipient, on the same channel, already
 * received an identical `messages` array (compared canonically: keys
 * sorted, whitespace removed), by any send endpoint, since the last reset.
 * A dispatcher that re-sends with a fresh key, re-batches a failed multicast
 * or replies and then falls back to push is caught; tests must therefore
 * give each logical send distinct content. Fingerprints are 64-bit hashes
 * of (recipient, canonical messages); a false match needs a hash collision.
 * Not thread-safe; the channel lock guards a set. */
#ifndef LINESIM_DEDUP_H
#define LINESIM_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Canonical text of a messages array (malloc'd, caller frees), or NULL. */
char *sim_dedup_canonical(const json_t *messages);
/* Hash of canonical messages text. */
uint64_t sim_dedup_messages_hash(const char *canonical);
/* Fingerprint of one delivery: recipient plus messages hash. */
uint64_t sim_dedup_fingerprint(const char *recipient, uint64_t messages_hash);

/* An open-addressing set of fingerprints. */
struct sim_fpset {
    uint64_t *slots; /* 0 marks an empty slot */
    size_t cap;      /* power of two, or 0 */
    size_t count;
};

/* Adds fp. Returns 1 when it was new, 0 when already present (a duplicate
 * delivery), -1 on allocation failure. */
int sim_fpset_add(struct sim_fpset *s, uint64_t fp);
/* Frees the slots and zeroes the set. */
void sim_fpset_clear(struct sim_fpset *s);

#endif
