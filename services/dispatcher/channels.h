/* The credential table: every channel's tenant, time zone, contract quota
 * and opened access token, as the compacted `channels` topic last said.
 * Each replica reads the whole topic from the beginning under a group of
 * its own and never commits, so every replica holds every channel. The
 * tokens are opened with KIZUNA_DATA_KEY and the associated data
 * "<tenant_id>/<channel_id>", as ingest sealed them; they are held in
 * memory only, wiped on replacement, and never logged.
 * Thread-safe: one follower thread writes, any thread looks up. */
#ifndef KIZUNA_DISPATCHER_CHANNELS_H
#define KIZUNA_DISPATCHER_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "crypto.h"
#include "quota.h"

#define CHANNEL_ID_MAX 64
#define CHANNEL_TOKEN_MAX 4096

/* A copy of one channel's entry. token is a secret: channels_creds_wipe()
 * it when done. */
struct channel_creds {
    char tenant_id[AUTH_FIELD_MAX];
    char timezone[QUOTA_ZONE_NAME_MAX];
    long long monthly_quota; /* the contract's; 0: no contract limit */
    long long version;
    bool deleted;
    bool token_ok; /* false: the sealed token did not open with our data key */
    char token[CHANNEL_TOKEN_MAX];
};

struct channels;

/* An empty table that opens tokens with key (copied). NULL if out of memory. */
struct channels *channels_new(const uint8_t key[CRYPTO_KEY_LEN]);
/* Stops the follower if running, wipes and frees everything, sets *t to
 * NULL; accepts NULL and *t == NULL. */
void channels_free(struct channels **t);

/* Applies one record of the topic: a ChannelConfig replaces the entry when
 * its version is higher; a null or empty value (tombstone) marks the key's
 * channel deleted. Returns 1 if applied, 0 if ignored as not newer, -1 if
 * the record is malformed (reason in errstr, which never holds secrets). */
int channels_apply(struct channels *t, const void *key, size_t keylen, const void *value,
                   size_t len, char *errstr, size_t errcap);

/* Copies channel_id's entry into *out. Returns 0, or -1 if unknown. */
int channels_lookup(struct channels *t, const char *channel_id, struct channel_creds *out);
/* The ids of tenant's channels that are not deleted, sorted, as a malloc'd
 * array of *n ids of CHANNEL_ID_MAX + 1 bytes each (caller frees; NULL
 * with *n == 0 when there are none). Returns 0, or -1 if out of memory. */
int channels_tenant_list(struct channels *t, const char *tenant, char (**ids)[CHANNEL_ID_MAX + 1],
                         size_t *n);
void channels_creds_wipe(struct channel_creds *c);

/* Starts the follower thread: a consumer of topic under group (unique to
 * this process), from the beginning, never committing. Returns 0, or -1
 * with errstr. */
int channels_follow_start(struct channels *t, const char *brokers, const char *group,
                          const char *topic, char *errstr, size_t errcap);
/* True once the follower has read what the topic held when it started (a
 * quiet poll after the first records, or a quiet start of 10 s on an empty
 * topic). Sending waits for it, so that no request uses a stale token. */
bool channels_caught_up(struct channels *t);
/* Stops and joins the follower and closes its consumer; safe to repeat. */
void channels_follow_stop(struct channels *t);

#endif
