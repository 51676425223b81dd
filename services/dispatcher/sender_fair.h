/* Fair shares for the sender, as pure functions that tests drive directly:
 * the round-robin over the channels that have work (so that one channel
 * with a large campaign cannot take every free slot while another waits),
 * and per-tenant counters with caps (calls in flight, deliveries held), so
 * that one tenant cannot take every slot or fill the memory that pauses
 * the intake for all.
 *
 * Not thread-safe: each object has one owner, or the owner's lock around
 * every call (sender_private.h says which lock). */
#ifndef KIZUNA_DISPATCHER_SENDER_FAIR_H
#define KIZUNA_DISPATCHER_SENDER_FAIR_H

#include <stdbool.h>
#include <stddef.h>

/* What a visit of one slot (a channel) did. */
enum sender_rr_step {
    SENDER_RR_STARTED, /* started one call; visit again in the next round */
    SENDER_RR_IDLE,    /* nothing to start now; do not visit again in this run */
    SENDER_RR_STOP,    /* no free slot at all: the run ends */
};

/* The round-robin's position: the slot visited first by the next run. */
struct sender_rr {
    size_t next;
};

/* Visits slots 0..n-1 in rounds, starting at rr->next and wrapping: in each
 * round every slot is visited once and may start one call, until a round
 * starts nothing or a visit answers STOP. visit must answer IDLE again for a
 * slot it already answered IDLE in this run. rr->next becomes the slot after
 * the last one that started a call (unchanged when none did), so the next run
 * resumes after the last channel served. Returns the calls started. */
size_t sender_rr_run(struct sender_rr *rr, size_t n,
                     enum sender_rr_step (*visit)(void *ctx, size_t i), void *ctx);

/* Drops the slots of 0..n-1 that keep(ctx, i) rejects: move(ctx, from, to)
 * shifts each kept slot down (from > to), so the rest keep their order.
 * rr->next moves so that it still names the same slot (or the next kept
 * one, when that slot was dropped). Returns the new count. */
size_t sender_rr_compact(struct sender_rr *rr, size_t n, bool (*keep)(void *ctx, size_t i),
                         void (*move)(void *ctx, size_t from, size_t to), void *ctx);

/* Counters by name (a tenant id), created on first use and removed at 0. */
struct sender_counts;

/* An empty table, or NULL when memory runs out. */
struct sender_counts *sender_counts_new(void);
/* Frees the table, sets *c to NULL; accepts NULL. */
void sender_counts_free(struct sender_counts **c);
/* key's count (0 when absent). */
long sender_counts_get(const struct sender_counts *c, const char *key);
/* Adds delta (may be negative; the count never goes below 0). Returns 0,
 * or -1 when memory runs out (nothing changed). */
int sender_counts_add(struct sender_counts *c, const char *key, long delta);
/* How many more key may have under cap (cap 0: unlimited, LONG_MAX). */
long sender_counts_room(const struct sender_counts *c, const char *key, long cap);

#endif
