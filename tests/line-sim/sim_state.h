/* The simulator's memory: channels and their tokens, friends, reply tokens,
 * accepted retry keys, quotas, rate buckets and meters, what each recipient
 * received, and the counters the tests read.
 *
 * Locking: a registry read-write lock guards the set of channels; each
 * channel has its own mutex for everything inside it. A handler takes the
 * registry read lock with sim_state_acquire_*(), makes a few short calls on
 * the channel (each locks the channel mutex itself) and then calls
 * sim_state_release(). Reset takes the registry write lock, so a channel is
 * never freed under a handler. Global counters are atomics. Every function
 * here may be called from any httpd worker thread. */
#ifndef LINESIM_STATE_H
#define LINESIM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "sim_endpoint.h"
#include "sim_faults.h"
#include "sim_ratelimit.h"

struct sim_state;
struct sim_channel;

struct sim_state_options {
    bool record;         /* keep per-recipient messages and fingerprints */
    size_t max_recorded; /* cap on recorded deliveries, all channels */
};

/* NULL on allocation failure. */
struct sim_state *sim_state_new(const struct sim_state_options *opts);
/* Frees everything; no handler may run any more. Accepts NULL. */
void sim_state_free(struct sim_state **st);

/* LINE's default limit for ep: 2,000/s for push, reply and every endpoint
 * LINE lists as "other", 200/s for multicast, 60/hour for broadcast and
 * narrowcast. */
struct sim_rate sim_state_default_rate(enum sim_endpoint ep);

/* --- registry -------------------------------------------------------- */

/* Registers channel id with an access token and its bot's LINE user id
 * (NULL: keep the channel's, or for a new channel derive one from the id,
 * sim_bot_user_id_default). Registering an existing id adds the token
 * (LINE lets a channel hold several). Returns 0, -1 on allocation failure,
 * -2 when the token belongs to another channel, -3 when bot_user_id
 * differs from the existing channel's, -4 when it is not LINE's user id
 * form. *created tells whether the channel is new. */
int sim_state_channel_add(struct sim_state *st, const char *id, const char *token,
                          const char *bot_user_id, bool *created);

/* The channel for an access token (or id), with the registry read lock
 * held until sim_state_release(). NULL (and no lock held) when unknown. */
struct sim_channel *sim_state_acquire_token(struct sim_state *st, const char *token);
struct sim_channel *sim_state_acquire_id(struct sim_state *st, const char *id);
void sim_state_release(struct sim_state *st);
/* The channel's id; valid while the channel is acquired. */
const char *sim_channel_id(const struct sim_channel *ch);

/* --- hot path ---------------------------------------------------------- */

/* Counts one request in ep's meter and takes a token from ep's bucket.
 * Returns false when the request must be answered 429. */
bool sim_channel_admit(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                       int64_t now_ns);

enum sim_count {
    SIM_COUNT_REJECTED,    /* a 4xx other than 409/429 */
    SIM_COUNT_FAULT_ERROR, /* an injected 5xx */
    SIM_COUNT_FAULT_DROP,  /* an injected connection drop */
    SIM_COUNT_FAULT_AFTER, /* of those, injected after acceptance */
    SIM_COUNT_OK,          /* a 2xx from an endpoint that sends nothing */
};
/* Counts an outcome against ch and ep (ch may be NULL: global only). */
void sim_state_count(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                     enum sim_count what);
/* Counts a request that never reached a channel (unknown path, 401). */
void sim_state_count_unauthenticated(struct sim_state *st, bool unauthorized);

struct sim_send {
    enum sim_endpoint ep;    /* a send endpoint */
    const char *request_id;  /* this request's x-line-request-id */
    const char *retry_key;   /* NULL when absent */
    const char *reply_token; /* reply only */
    const char *const *to;   /* push: 1 id, multicast: up to 500 */
    size_t nto;
    long long narrowcast_max;   /* narrowcast limit.max; 0: none */
    bool up_to_remaining_quota; /* narrowcast limit.upToRemainingQuota */
    const char *canonical;      /* canonical messages JSON (sim_dedup) */
    const char *sent_messages;  /* push/reply: the sentMessages array text */
};

enum sim_send_outcome {
    SIM_SEND_ACCEPTED = 0,
    SIM_SEND_CONFLICT,        /* retry key already accepted: 409 */
    SIM_SEND_QUOTA,           /* monthly limit: 429 */
    SIM_SEND_BAD_REPLY_TOKEN, /* unknown, used or expired: 400 */
    SIM_SEND_NOMEM,           /* 500 */
};

struct sim_send_result {
    enum sim_send_outcome outcome;
    char accepted_request_id[40]; /* CONFLICT: the first acceptance's id */
    char *sent_messages;          /* CONFLICT on push: its sentMessages (caller frees) */
    long long recipients;         /* ACCEPTED: deliveries made (blocked friends excluded) */
};

/* Accepts or refuses a validated send, atomically with respect to retry
 * keys, reply tokens and quota: check the retry key, the reply token and
 * the quota, then record the key, consume the token, add the usage and
 * deliver to every recipient who has not blocked the channel. now_ns is
 * CLOCK_MONOTONIC, now_ms wall-clock milliseconds. */
void sim_channel_send(struct sim_state *st, struct sim_channel *ch, const struct sim_send *s,
                      int64_t now_ns, int64_t now_ms, struct sim_send_result *r);

/* --- other LINE endpoints ---------------------------------------------- */

/* BotInfoResponse of GET /v2/bot/info (sim_bot.h). Caller owns it. */
json_t *sim_channel_bot_info(struct sim_state *st, struct sim_channel *ch);
/* LINE's profile object, or NULL when the user is unknown or blocked the
 * channel (LINE answers 404 for both). Caller owns the result. */
json_t *sim_channel_profile(struct sim_state *st, struct sim_channel *ch, const char *user_id);
/* Rich menus per user. Linking returns 0, -1 on allocation failure, or -2
 * when the channel has registered rich menus (sim_channel_richmenus_add)
 * and menu_id is not one of them (LINE: 404); with none registered any id
 * links. */
int sim_channel_richmenu_link(struct sim_state *st, struct sim_channel *ch, const char *user_id,
                              const char *menu_id);
void sim_channel_richmenu_unlink(struct sim_state *st, struct sim_channel *ch, const char *user_id);
/* Links menu_id to every user, or unlinks them all when menu_id is NULL,
 * atomically: an unknown menu (-2) changes nothing. Returns as link. */
int sim_channel_richmenu_bulk(struct sim_state *st, struct sim_channel *ch, const char *menu_id,
                              const char *const *user_ids, size_t n);
/* The linked rich menu id (malloc'd), or NULL when none. */
char *sim_channel_richmenu_get(struct sim_state *st, struct sim_channel *ch, const char *user_id);
/* {"type":"none"} or {"type":"limited","value":N}. */
json_t *sim_channel_quota_json(struct sim_state *st, struct sim_channel *ch);
/* {"totalUsage":N} for this month. */
json_t *sim_channel_consumption_json(struct sim_state *st, struct sim_channel *ch);
/* Narrowcast progress for a request id, or NULL when unknown. */
json_t *sim_channel_narrowcast_progress(struct sim_state *st, struct sim_channel *ch,
                                        const char *request_id);

/* --- control API ------------------------------------------------------- */

/* Registers a reply token for user_id, issued age_ms ago. Returns 0, -1 on
 * allocation failure, -2 when the token is already registered. */
int sim_channel_reply_token_add(struct sim_state *st, struct sim_channel *ch, const char *token,
                                const char *user_id, long long age_ms, int64_t now_ns);
/* Upserts friends from an array of {"user_id", "display_name",
 * "picture_url", "status_message", "language", "blocked"}. Returns the
 * number upserted, or -1 with err filled (nothing changed on bad input). */
long sim_channel_users_upsert(struct sim_state *st, struct sim_channel *ch, const json_t *users,
                              char *err, size_t errcap);
/* Applies {"rate_limits": {...}, "quota": {...}, "usage": N,
 * "reply_token_ttl_s": N, "retry_key_ttl_s": N}; see README. Returns 0, or
 * -1 with err naming the field (nothing changed). */
int sim_channel_limits_update(struct sim_state *st, struct sim_channel *ch, const json_t *body,
                              int64_t now_ns, char *err, size_t errcap);
json_t *sim_channel_limits_json(struct sim_state *st, struct sim_channel *ch);

/* Registers rich menu ids (a JSON array of strings) as existing on the
 * channel. Returns how many, or -1 with err filled (nothing changed on bad
 * input). Kept by a reset with keep_channels, like friends. */
long sim_channel_richmenus_add(struct sim_state *st, struct sim_channel *ch, const json_t *ids,
                               char *err, size_t errcap);
/* {"channel_id", "rich_menus": [registered ids], "links": {"<user>": "<menu>"}}. */
json_t *sim_channel_richmenus_json(struct sim_state *st, struct sim_channel *ch);

/* Every channel id with its bot user id and token count (never the
 * tokens). */
json_t *sim_state_channels_json(struct sim_state *st);
/* Messages received by `to` (optionally on one channel only); with to NULL,
 * the number of deliveries per recipient, per channel. */
json_t *sim_state_messages_json(struct sim_state *st, const char *to, const char *channel_id);
/* The counters; see README for each one. */
json_t *sim_state_stats_json(struct sim_state *st, int64_t now_ns);
/* Clears messages, counters, retry keys, reply tokens, usage and faults.
 * keep_channels keeps channels, tokens, friends, registered rich menus and
 * limits (not which user has which menu); otherwise the
 * simulator is as freshly started. */
void sim_state_reset(struct sim_state *st, bool keep_channels, int64_t now_ns);

void sim_state_faults_get(struct sim_state *st, struct sim_faults *out);
int sim_state_faults_update(struct sim_state *st, const json_t *body, char *err, size_t errcap);
void sim_state_set_record(struct sim_state *st, bool record);
bool sim_state_record(struct sim_state *st);

#endif
