/* X-Line-Retry-Key: the format check and the per-channel store of accepted
 * keys. LINE accepts a key once; a repeat within 24 hours answers 409 with
 * x-line-accepted-request-id (and, for push, the first sentMessages). Keys
 * are recorded only when a request is accepted, so a request that got 429,
 * 400 or a 5xx before acceptance can be retried with the same key.
 * Pure functions of a caller-given clock; the channel lock guards a store. */
#ifndef LINESIM_RETRYKEY_H
#define LINESIM_RETRYKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True for a UUID in hexadecimal 8-4-4-4-12 form (any version, any case),
 * which is what LINE asks for. */
bool sim_retrykey_valid(const char *key);

struct sim_retrykey_entry {
    char request_id[40]; /* x-line-request-id of the accepted request */
    char *sent_messages; /* JSON array text (push), or NULL */
    int64_t accepted_ns;
};

struct sim_retrykeys;

struct sim_retrykeys *sim_retrykeys_new(void);
/* Accepts NULL; sets *rk to NULL. */
void sim_retrykeys_free(struct sim_retrykeys **rk);

/* The entry for key if it was accepted less than ttl_ns before now_ns, else
 * NULL. Expired keys are dropped on the way. The entry stays valid until the
 * next call on the store. */
const struct sim_retrykey_entry *sim_retrykeys_find(struct sim_retrykeys *rk, const char *key,
                                                    int64_t now_ns, int64_t ttl_ns);
/* Records an accepted key (key, request_id and sent_messages are copied;
 * sent_messages may be NULL). Returns 0, or -1 on allocation failure.
 * Calls must come in non-decreasing now_ns order: expiry walks insertion
 * order. */
int sim_retrykeys_add(struct sim_retrykeys *rk, const char *key, const char *request_id,
                      const char *sent_messages, int64_t now_ns);
/* Drops every key accepted ttl_ns or longer before now_ns. */
void sim_retrykeys_expire(struct sim_retrykeys *rk, int64_t now_ns, int64_t ttl_ns);
size_t sim_retrykeys_count(const struct sim_retrykeys *rk);

#endif
