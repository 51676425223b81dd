/* The simulator's state and the rules that need it (see sim_state.h for
 * the locking). Critical sections only touch maps and counters: JSON
 * parsing, validation and rendering happen outside the locks, in the
 * routes, so the channel mutex is held for microseconds even at the ~10k
 * requests/s the benchmark drives. */
#include "sim_state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_bot.h"
#include "sim_dedup.h"
#include "sim_map.h"
#include "sim_quota.h"
#include "sim_retrykey.h"

#define SIM_REPLY_TOKEN_TTL_S 60
#define SIM_RETRY_KEY_TTL_S 86400
#define SIM_REPLY_SWEEP_EVERY 1024

struct sim_user {
    char *display_name, *picture_url, *status_message, *language;
    bool blocked;
};

struct sim_reply_token {
    char *user_id;
    int64_t issued_ns;
};

/* One accepted send, shared by every recipient's inbox (refcounted under
 * the channel lock). */
struct sim_sent {
    int refs;
    enum sim_endpoint ep;
    char request_id[40];
    char *retry_key;
    int64_t accepted_ms;
    char *messages; /* canonical JSON */
};

struct sim_inbox {
    struct sim_sent **items;
    size_t n, cap;
};

struct sim_narrowcast {
    int64_t accepted_ms;
    long long target, success;
};

struct sim_ep_state {
    struct sim_bucket bucket;
    struct sim_ratemeter seen, ok;
    uint64_t requests, accepted, rate_limited, quota_exceeded, conflicts, rejected;
    uint64_t fault_errors, fault_drops, deliveries, duplicate_deliveries, duplicates;
};

struct sim_channel {
    char *id;
    char bot_user_id[SIM_BOT_USER_ID_LEN + 1]; /* fixed at registration */
    size_t ntokens;
    pthread_mutex_t lock;
    struct sim_ep_state ep[SIM_EP_COUNT];
    long reply_token_ttl_s, retry_key_ttl_s;
    struct sim_quota quota;
    struct sim_retrykeys *retrykeys;
    struct sim_map *reply_tokens; /* token -> struct sim_reply_token */
    unsigned reply_adds;          /* for the periodic expiry sweep */
    struct sim_map *users;        /* user id -> struct sim_user */
    struct sim_map *inboxes;      /* recipient -> struct sim_inbox */
    struct sim_map *richmenus;    /* user id -> char * */
    struct sim_map *menus;        /* rich menus that exist -> &menu_exists (none: any id) */
    struct sim_map *narrowcasts;  /* request id -> struct sim_narrowcast */
    struct sim_fpset fps;
};

struct sim_counters {
    atomic_uint_fast64_t requests, unauthorized, not_found, accepted, duplicates,
        duplicate_deliveries, deliveries, rate_limited, quota_exceeded, conflicts, rejected,
        fault_errors, fault_drops, fault_after;
};

struct sim_state {
    pthread_rwlock_t lock;
    struct sim_map *by_id;    /* id -> struct sim_channel (owned) */
    struct sim_map *by_token; /* token -> struct sim_channel (borrowed) */
    pthread_mutex_t faults_lock;
    struct sim_faults faults;
    atomic_bool record;
    size_t max_recorded;
    atomic_size_t recorded;
    atomic_bool truncated;
    struct sim_counters c;
};

/* The value of every entry of sim_channel.menus: only the keys matter. */
static char menu_exists;

/* --- small helpers ----------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void add64(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get64(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct sim_rate sim_state_default_rate(enum sim_endpoint ep)
{
    switch (ep) {
    case SIM_EP_MULTICAST:
        return (struct sim_rate){200, 1, 200};
    case SIM_EP_BROADCAST:
    case SIM_EP_NARROWCAST:
        return (struct sim_rate){60, 3600, 60};
    default:
        return (struct sim_rate){2000, 1, 2000};
    }
}

/* --- freeing ----------------------------------------------------------- */

static void user_free(void *p)
{
    struct sim_user *u = p;
    if (!u)
        return;
    free(u->display_name);
    free(u->picture_url);
    free(u->status_message);
    free(u->language);
    free(u);
}

static void reply_token_free(void *p)
{
    struct sim_reply_token *t = p;
    if (t)
        free(t->user_id);
    free(t);
}

static void sent_unref(struct sim_sent *s)
{
    if (s && --s->refs == 0) {
        free(s->retry_key);
        free(s->messages);
        free(s);
    }
}

static void inbox_free(void *p)
{
    struct sim_inbox *in = p;
    if (!in)
        return;
    for (size_t i = 0; i < in->n; i++)
        sent_unref(in->items[i]);
    free(in->items);
    free(in);
}

/* Drops what a reset clears; keeps id, tokens, users and limits. */
static int channel_clear_traffic(struct sim_channel *ch, int64_t now_ns)
{
    sim_retrykeys_free(&ch->retrykeys);
    sim_map_free(&ch->reply_tokens, reply_token_free);
    sim_map_free(&ch->inboxes, inbox_free);
    sim_map_free(&ch->richmenus, free);
    sim_map_free(&ch->narrowcasts, free);
    sim_fpset_clear(&ch->fps);
    for (int i = 0; i < SIM_EP_COUNT; i++) {
        struct sim_ep_state *e = &ch->ep[i];
        struct sim_rate rate = e->bucket.rate;
        sim_ratemeter_clear(&e->seen);
        sim_ratemeter_clear(&e->ok);
        memset(e, 0, sizeof *e);
        sim_bucket_set(&e->bucket, rate, now_ns);
    }
    ch->quota.usage = 0;
    ch->reply_adds = 0;
    ch->retrykeys = sim_retrykeys_new();
    ch->reply_tokens = sim_map_new();
    ch->inboxes = sim_map_new();
    ch->richmenus = sim_map_new();
    ch->narrowcasts = sim_map_new();
    if (!ch->retrykeys || !ch->reply_tokens || !ch->inboxes || !ch->richmenus || !ch->narrowcasts)
        return -1;
    return 0;
}

static void channel_free(void *p)
{
    struct sim_channel *ch = p;
    if (!ch)
        return;
    sim_retrykeys_free(&ch->retrykeys);
    sim_map_free(&ch->reply_tokens, reply_token_free);
    sim_map_free(&ch->users, user_free);
    sim_map_free(&ch->menus, NULL);
    sim_map_free(&ch->inboxes, inbox_free);
    sim_map_free(&ch->richmenus, free);
    sim_map_free(&ch->narrowcasts, free);
    sim_fpset_clear(&ch->fps);
    for (int i = 0; i < SIM_EP_COUNT; i++) {
        sim_ratemeter_clear(&ch->ep[i].seen);
        sim_ratemeter_clear(&ch->ep[i].ok);
    }
    pthread_mutex_destroy(&ch->lock);
    free(ch->id);
    free(ch);
}

static struct sim_channel *channel_new(const char *id, int64_t now_ns)
{
    struct sim_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    if (pthread_mutex_init(&ch->lock, NULL) != 0) {
        free(ch);
        return NULL;
    }
    ch->id = strdup(id);
    sim_bot_user_id_default(id, ch->bot_user_id);
    ch->users = sim_map_new();
    ch->menus = sim_map_new();
    ch->reply_token_ttl_s = SIM_REPLY_TOKEN_TTL_S;
    ch->retry_key_ttl_s = SIM_RETRY_KEY_TTL_S;
    for (int i = 0; i < SIM_EP_COUNT; i++)
        ch->ep[i].bucket.rate = sim_state_default_rate((enum sim_endpoint)i);
    if (!ch->id || !ch->users || !ch->menus || channel_clear_traffic(ch, now_ns) != 0) {
        channel_free(ch);
        return NULL;
    }
    return ch;
}

/* --- state ------------------------------------------------------------- */

struct sim_state *sim_state_new(const struct sim_state_options *opts)
{
    struct sim_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writers (reset, channel registration) must not starve behind a
     * benchmark's constant stream of readers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&st->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(st);
        return NULL;
    }
    if (pthread_mutex_init(&st->faults_lock, NULL) != 0) {
        pthread_rwlock_destroy(&st->lock);
        free(st);
        return NULL;
    }
    sim_faults_default(&st->faults);
    atomic_init(&st->record, opts->record);
    st->max_recorded = opts->max_recorded;
    st->by_id = sim_map_new();
    st->by_token = sim_map_new();
    if (!st->by_id || !st->by_token) {
        sim_state_free(&st);
        return NULL;
    }
    return st;
}

void sim_state_free(struct sim_state **stp)
{
    if (!stp || !*stp)
        return;
    struct sim_state *st = *stp;
    sim_map_free(&st->by_token, NULL);
    sim_map_free(&st->by_id, channel_free);
    pthread_mutex_destroy(&st->faults_lock);
    pthread_rwlock_destroy(&st->lock);
    free(st);
    *stp = NULL;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SIM_NS_PER_S + ts.tv_nsec;
}

int sim_state_channel_add(struct sim_state *st, const char *id, const char *token,
                          const char *bot_user_id, bool *created)
{
    int rc = 0;
    *created = false;
    if (bot_user_id && !sim_bot_user_id_valid(bot_user_id))
        return -4;
    pthread_rwlock_wrlock(&st->lock);
    struct sim_channel *owner = sim_map_get(st->by_token, token);
    struct sim_channel *ch = sim_map_get(st->by_id, id);
    if (owner && owner != ch) {
        rc = -2;
        goto done;
    }
    /* A LINE channel's bot never changes: a different one is a mistake. */
    if (ch && bot_user_id && strcmp(ch->bot_user_id, bot_user_id) != 0) {
        rc = -3;
        goto done;
    }
    if (owner)
        goto done; /* already registered: idempotent */
    if (!ch) {
        ch = channel_new(id, mono_ns());
        if (!ch || sim_map_put(st->by_id, id, ch, NULL) != 0) {
            channel_free(ch);
            rc = -1;
            goto done;
        }
        if (bot_user_id)
            copy_id(ch->bot_user_id, sizeof ch->bot_user_id, bot_user_id);
        *created = true;
    }
    if (sim_map_put(st->by_token, token, ch, NULL) != 0) {
        rc = -1;
        goto done;
    }
    ch->ntokens++;
done:
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

struct sim_channel *sim_state_acquire_token(struct sim_state *st, const char *token)
{
    pthread_rwlock_rdlock(&st->lock);
    struct sim_channel *ch = sim_map_get(st->by_token, token);
    if (!ch)
        pthread_rwlock_unlock(&st->lock);
    return ch;
}

struct sim_channel *sim_state_acquire_id(struct sim_state *st, const char *id)
{
    pthread_rwlock_rdlock(&st->lock);
    struct sim_channel *ch = sim_map_get(st->by_id, id);
    if (!ch)
        pthread_rwlock_unlock(&st->lock);
    return ch;
}

void sim_state_release(struct sim_state *st)
{
    pthread_rwlock_unlock(&st->lock);
}

const char *sim_channel_id(const struct sim_channel *ch)
{
    return ch->id;
}

/* --- hot path ---------------------------------------------------------- */

bool sim_channel_admit(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                       int64_t now_ns)
{
    add64(&st->c.requests, 1);
    pthread_mutex_lock(&ch->lock);
    struct sim_ep_state *e = &ch->ep[ep];
    e->requests++;
    sim_ratemeter_hit(&e->seen, now_ns);
    bool ok = sim_bucket_take(&e->bucket, now_ns);
    if (!ok)
        e->rate_limited++;
    pthread_mutex_unlock(&ch->lock);
    if (!ok)
        add64(&st->c.rate_limited, 1);
    return ok;
}

void sim_state_count(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                     enum sim_count what)
{
    switch (what) {
    case SIM_COUNT_REJECTED:
        add64(&st->c.rejected, 1);
        break;
    case SIM_COUNT_FAULT_ERROR:
        add64(&st->c.fault_errors, 1);
        break;
    case SIM_COUNT_FAULT_DROP:
        add64(&st->c.fault_drops, 1);
        break;
    case SIM_COUNT_FAULT_AFTER:
        add64(&st->c.fault_after, 1);
        return; /* a qualifier of the two above, global only */
    case SIM_COUNT_OK:
        break; /* per endpoint only: the global "accepted" counts sends */
    }
    if (!ch)
        return;
    pthread_mutex_lock(&ch->lock);
    struct sim_ep_state *e = &ch->ep[ep];
    if (what == SIM_COUNT_REJECTED) {
        e->rejected++;
    } else if (what == SIM_COUNT_FAULT_ERROR) {
        e->fault_errors++;
    } else if (what == SIM_COUNT_FAULT_DROP) {
        e->fault_drops++;
    } else {
        e->accepted++;
        sim_ratemeter_hit(&e->ok, mono_ns());
    }
    pthread_mutex_unlock(&ch->lock);
}

void sim_state_count_unauthenticated(struct sim_state *st, bool unauthorized)
{
    add64(&st->c.requests, 1);
    add64(&st->c.rejected, 1);
    add64(unauthorized ? &st->c.unauthorized : &st->c.not_found, 1);
}

/* A friend who blocked the channel gets nothing and costs nothing. */
static bool channel_blocked(const struct sim_channel *ch, const char *user_id)
{
    const struct sim_user *u = sim_map_get(ch->users, user_id);
    return u && u->blocked;
}

struct recipients {
    const char **ids;
    size_t n, cap;
};

static int recipients_add(struct recipients *r, const char *id)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        const char **ids = realloc(r->ids, ncap * sizeof *ids);
        if (!ids)
            return -1;
        r->ids = ids;
        r->cap = ncap;
    }
    r->ids[r->n++] = id;
    return 0;
}

struct friends_ctx {
    struct recipients *r;
    int failed;
};

static void collect_friend(const char *key, void *value, void *ctx)
{
    struct friends_ctx *fc = ctx;
    const struct sim_user *u = value;
    if (!u->blocked && recipients_add(fc->r, key) != 0)
        fc->failed = 1;
}

/* Who a send reaches: push/multicast their `to` minus blocked friends;
 * reply the token's user; broadcast/narrowcast every unblocked friend. */
static int channel_recipients(struct sim_channel *ch, const struct sim_send *s,
                              const char *reply_user, struct recipients *r)
{
    switch (s->ep) {
    case SIM_EP_REPLY:
        if (!channel_blocked(ch, reply_user))
            return recipients_add(r, reply_user);
        return 0;
    case SIM_EP_PUSH:
    case SIM_EP_MULTICAST:
        for (size_t i = 0; i < s->nto; i++)
            if (!channel_blocked(ch, s->to[i]) && recipients_add(r, s->to[i]) != 0)
                return -1;
        return 0;
    default: {
        struct friends_ctx fc = {r, 0};
        sim_map_each(ch->users, collect_friend, &fc);
        return fc.failed ? -1 : 0;
    }
    }
}

/* Appends sent to recipient's inbox and checks its fingerprint. Returns 1
 * for a duplicate delivery, 0 otherwise, -1 when out of memory. */
static int channel_deliver(struct sim_state *st, struct sim_channel *ch, const char *recipient,
                           struct sim_sent *sent, uint64_t msg_hash)
{
    size_t n = atomic_fetch_add(&st->recorded, 1);
    if (st->max_recorded && n >= st->max_recorded) {
        atomic_fetch_sub(&st->recorded, 1);
        atomic_store(&st->truncated, true);
        return 0;
    }
    struct sim_inbox *in = sim_map_get(ch->inboxes, recipient);
    if (!in) {
        in = calloc(1, sizeof *in);
        if (!in || sim_map_put(ch->inboxes, recipient, in, NULL) != 0) {
            free(in);
            return -1;
        }
    }
    if (in->n == in->cap) {
        size_t ncap = in->cap ? in->cap * 2 : 4;
        struct sim_sent **items = realloc(in->items, ncap * sizeof *items);
        if (!items)
            return -1;
        in->items = items;
        in->cap = ncap;
    }
    in->items[in->n++] = sent;
    sent->refs++;
    int added = sim_fpset_add(&ch->fps, sim_dedup_fingerprint(recipient, msg_hash));
    return added == 0 ? 1 : 0;
}

void sim_channel_send(struct sim_state *st, struct sim_channel *ch, const struct sim_send *s,
                      int64_t now_ns, int64_t now_ms, struct sim_send_result *r)
{
    memset(r, 0, sizeof *r);
    struct recipients rcpt = {0};
    struct sim_sent *sent = NULL;
    time_t now_s = (time_t)(now_ms / 1000);
    bool record = atomic_load(&st->record);
    uint64_t msg_hash = record ? sim_dedup_messages_hash(s->canonical) : 0;

    pthread_mutex_lock(&ch->lock);
    struct sim_ep_state *e = &ch->ep[s->ep];
    int64_t rk_ttl = (int64_t)ch->retry_key_ttl_s * SIM_NS_PER_S;
    if (s->retry_key) {
        const struct sim_retrykey_entry *prev =
            sim_retrykeys_find(ch->retrykeys, s->retry_key, now_ns, rk_ttl);
        if (prev) {
            r->outcome = SIM_SEND_CONFLICT;
            copy_id(r->accepted_request_id, sizeof r->accepted_request_id, prev->request_id);
            r->sent_messages = dup_or_null(prev->sent_messages);
            e->conflicts++;
            goto unlock;
        }
    }
    struct sim_reply_token *token = NULL;
    if (s->ep == SIM_EP_REPLY) {
        token = sim_map_get(ch->reply_tokens, s->reply_token);
        if (!token || now_ns - token->issued_ns >= (int64_t)ch->reply_token_ttl_s * SIM_NS_PER_S) {
            r->outcome = SIM_SEND_BAD_REPLY_TOKEN;
            e->rejected++;
            goto unlock;
        }
    }
    if (channel_recipients(ch, s, token ? token->user_id : NULL, &rcpt) != 0)
        goto nomem;
    long long n = (long long)rcpt.n;
    if (s->ep == SIM_EP_NARROWCAST) {
        if (s->narrowcast_max > 0 && n > s->narrowcast_max)
            n = s->narrowcast_max;
        if (s->up_to_remaining_quota) {
            long long left = sim_quota_remaining(&ch->quota, now_s);
            if (n > left)
                n = left;
        }
        rcpt.n = (size_t)n;
    }
    if (s->ep != SIM_EP_REPLY && !sim_quota_allows(&ch->quota, n, now_s)) {
        r->outcome = SIM_SEND_QUOTA;
        e->quota_exceeded++;
        goto unlock;
    }
    if (record) {
        sent = calloc(1, sizeof *sent);
        if (!sent)
            goto nomem;
        sent->refs = 1; /* ours until unlock */
        sent->ep = s->ep;
        copy_id(sent->request_id, sizeof sent->request_id, s->request_id);
        sent->accepted_ms = now_ms;
        sent->retry_key = dup_or_null(s->retry_key);
        sent->messages = strdup(s->canonical);
        if (!sent->messages || (s->retry_key && !sent->retry_key))
            goto nomem;
    }
    /* Everything that can refuse has run: from here the send is accepted. */
    if (s->retry_key &&
        sim_retrykeys_add(ch->retrykeys, s->retry_key, s->request_id,
                          s->ep == SIM_EP_PUSH ? s->sent_messages : NULL, now_ns) != 0)
        goto nomem;
    if (s->ep != SIM_EP_REPLY)
        sim_quota_add(&ch->quota, n, now_s);
    uint64_t dups = 0;
    for (size_t i = 0; record && i < rcpt.n; i++) {
        int d = channel_deliver(st, ch, rcpt.ids[i], sent, msg_hash);
        if (d > 0)
            dups++;
    }
    /* Consumed only now: the recipient list points at the token's user. */
    if (token)
        reply_token_free(sim_map_remove(ch->reply_tokens, s->reply_token));
    if (s->ep == SIM_EP_NARROWCAST) {
        struct sim_narrowcast *nc = calloc(1, sizeof *nc);
        if (nc) {
            nc->accepted_ms = now_ms;
            nc->target = n;
            nc->success = n;
            if (sim_map_put(ch->narrowcasts, s->request_id, nc, NULL) != 0)
                free(nc);
        }
    }
    r->outcome = SIM_SEND_ACCEPTED;
    r->recipients = n;
    e->accepted++;
    e->deliveries += (uint64_t)n;
    e->duplicate_deliveries += dups;
    e->duplicates += dups ? 1 : 0;
    sim_ratemeter_hit(&e->ok, now_ns);
    add64(&st->c.accepted, 1);
    add64(&st->c.deliveries, (uint64_t)n);
    if (dups) {
        add64(&st->c.duplicates, 1);
        add64(&st->c.duplicate_deliveries, dups);
    }
    goto unlock;
nomem:
    r->outcome = SIM_SEND_NOMEM;
unlock:
    sent_unref(sent); /* our own reference; the inboxes keep theirs */
    pthread_mutex_unlock(&ch->lock);
    free(rcpt.ids);
    switch (r->outcome) {
    case SIM_SEND_CONFLICT:
        add64(&st->c.conflicts, 1);
        break;
    case SIM_SEND_QUOTA:
        add64(&st->c.quota_exceeded, 1);
        break;
    case SIM_SEND_BAD_REPLY_TOKEN:
        add64(&st->c.rejected, 1);
        break;
    default:
        break;
    }
}

/* --- other LINE endpoints ---------------------------------------------- */

json_t *sim_channel_bot_info(struct sim_state *st, struct sim_channel *ch)
{
    (void)st;
    /* id and bot_user_id never change while the channel is acquired. */
    return sim_bot_info_json(ch->id, ch->bot_user_id);
}

json_t *sim_channel_profile(struct sim_state *st, struct sim_channel *ch, const char *user_id)
{
    (void)st;
    json_t *p = NULL;
    pthread_mutex_lock(&ch->lock);
    const struct sim_user *u = sim_map_get(ch->users, user_id);
    if (u && !u->blocked) {
        p = json_pack("{s:s, s:s}", "userId", user_id, "displayName",
                      u->display_name ? u->display_name : "");
        if (p && u->picture_url)
            json_object_set_new(p, "pictureUrl", json_string(u->picture_url));
        if (p && u->status_message)
            json_object_set_new(p, "statusMessage", json_string(u->status_message));
        if (p && u->language)
            json_object_set_new(p, "language", json_string(u->language));
    }
    pthread_mutex_unlock(&ch->lock);
    return p;
}

/* Whether menu_id may be linked: any id until the test registers the
 * channel's rich menus, then only those. Channel lock held. */
static bool menu_known(const struct sim_channel *ch, const char *menu_id)
{
    return sim_map_count(ch->menus) == 0 || sim_map_get(ch->menus, menu_id) != NULL;
}

/* Links (menu_id) or unlinks (NULL) one user. Channel lock held. */
static int richmenu_set(struct sim_channel *ch, const char *user_id, const char *menu_id)
{
    if (!menu_id) {
        free(sim_map_remove(ch->richmenus, user_id));
        return 0;
    }
    char *copy = strdup(menu_id);
    void *old = NULL;
    if (!copy || sim_map_put(ch->richmenus, user_id, copy, &old) != 0) {
        free(copy);
        return -1;
    }
    free(old);
    return 0;
}

int sim_channel_richmenu_link(struct sim_state *st, struct sim_channel *ch, const char *user_id,
                              const char *menu_id)
{
    return sim_channel_richmenu_bulk(st, ch, menu_id, &user_id, 1);
}

void sim_channel_richmenu_unlink(struct sim_state *st, struct sim_channel *ch, const char *user_id)
{
    sim_channel_richmenu_bulk(st, ch, NULL, &user_id, 1);
}

int sim_channel_richmenu_bulk(struct sim_state *st, struct sim_channel *ch, const char *menu_id,
                              const char *const *user_ids, size_t n)
{
    (void)st;
    int rc = 0;
    pthread_mutex_lock(&ch->lock);
    if (menu_id && !menu_known(ch, menu_id))
        rc = -2;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = richmenu_set(ch, user_ids[i], menu_id);
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

long sim_channel_richmenus_add(struct sim_state *st, struct sim_channel *ch, const json_t *ids,
                               char *err, size_t errcap)
{
    (void)st;
    size_t i;
    const json_t *id;
    if (!json_is_array(ids) || json_array_size(ids) == 0) {
        snprintf(err, errcap, "rich_menu_ids must be a non-empty array of strings");
        return -1;
    }
    json_array_foreach(ids, i, id)
    {
        if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 128) {
            snprintf(err, errcap, "rich_menu_ids[%zu] must be a string of 1 to 128 bytes", i);
            return -1;
        }
    }
    long added = 0;
    pthread_mutex_lock(&ch->lock);
    json_array_foreach(ids, i, id)
    {
        if (sim_map_put(ch->menus, json_string_value(id), &menu_exists, NULL) != 0) {
            snprintf(err, errcap, "out of memory");
            added = -1;
            break;
        }
        added++;
    }
    pthread_mutex_unlock(&ch->lock);
    return added;
}

static void menu_list_one(const char *key, void *value, void *ctx)
{
    (void)value;
    json_array_append_new(ctx, json_string(key));
}

static void link_list_one(const char *key, void *value, void *ctx)
{
    json_object_set_new(ctx, key, json_string(value));
}

json_t *sim_channel_richmenus_json(struct sim_state *st, struct sim_channel *ch)
{
    (void)st;
    json_t *menus = json_array(), *links = json_object();
    pthread_mutex_lock(&ch->lock);
    if (menus && links) {
        sim_map_each(ch->menus, menu_list_one, menus);
        sim_map_each(ch->richmenus, link_list_one, links);
    }
    json_t *out =
        json_pack("{s:s, s:o, s:o}", "channel_id", ch->id, "rich_menus", menus, "links", links);
    pthread_mutex_unlock(&ch->lock);
    return out;
}

char *sim_channel_richmenu_get(struct sim_state *st, struct sim_channel *ch, const char *user_id)
{
    (void)st;
    pthread_mutex_lock(&ch->lock);
    const char *menu = sim_map_get(ch->richmenus, user_id);
    char *copy = dup_or_null(menu);
    pthread_mutex_unlock(&ch->lock);
    return copy;
}

json_t *sim_channel_quota_json(struct sim_state *st, struct sim_channel *ch)
{
    (void)st;
    pthread_mutex_lock(&ch->lock);
    json_t *q = ch->quota.limited ? json_pack("{s:s, s:I}", "type", "limited", "value",
                                              (json_int_t)ch->quota.limit)
                                  : json_pack("{s:s}", "type", "none");
    pthread_mutex_unlock(&ch->lock);
    return q;
}

json_t *sim_channel_consumption_json(struct sim_state *st, struct sim_channel *ch)
{
    (void)st;
    pthread_mutex_lock(&ch->lock);
    sim_quota_roll(&ch->quota, time(NULL));
    json_int_t usage = (json_int_t)ch->quota.usage;
    pthread_mutex_unlock(&ch->lock);
    return json_pack("{s:I}", "totalUsage", usage);
}

/* ISO 8601 UTC with milliseconds, as LINE writes acceptedTime. */
static void iso_ms(char *out, size_t cap, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

json_t *sim_channel_narrowcast_progress(struct sim_state *st, struct sim_channel *ch,
                                        const char *request_id)
{
    (void)st;
    json_t *p = NULL;
    pthread_mutex_lock(&ch->lock);
    const struct sim_narrowcast *nc = sim_map_get(ch->narrowcasts, request_id);
    if (nc) {
        char at[40];
        iso_ms(at, sizeof at, nc->accepted_ms);
        /* The simulator delivers at once, so a narrowcast is finished as
         * soon as it is accepted. */
        p = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "phase", "succeeded", "successCount",
                      (json_int_t)nc->success, "failureCount", (json_int_t)0, "targetCount",
                      (json_int_t)nc->target, "acceptedTime", at, "completedTime", at);
    }
    pthread_mutex_unlock(&ch->lock);
    return p;
}

/* --- control API ------------------------------------------------------- */

struct expired_ctx {
    int64_t now_ns, ttl_ns;
    char **keys;
    size_t n, cap;
};

static void collect_expired(const char *key, void *value, void *ctx)
{
    struct expired_ctx *x = ctx;
    const struct sim_reply_token *t = value;
    if (x->now_ns - t->issued_ns < x->ttl_ns)
        return;
    if (x->n == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 64;
        char **keys = realloc(x->keys, ncap * sizeof *keys);
        if (!keys)
            return;
        x->keys = keys;
        x->cap = ncap;
    }
    char *k = strdup(key);
    if (k)
        x->keys[x->n++] = k;
}

/* Unused tokens would pile up in a long run; drop the expired ones now and
 * then. Called with the channel locked. */
static void channel_sweep_reply_tokens(struct sim_channel *ch, int64_t now_ns)
{
    struct expired_ctx x = {.now_ns = now_ns,
                            .ttl_ns = (int64_t)ch->reply_token_ttl_s * SIM_NS_PER_S};
    sim_map_each(ch->reply_tokens, collect_expired, &x);
    for (size_t i = 0; i < x.n; i++) {
        reply_token_free(sim_map_remove(ch->reply_tokens, x.keys[i]));
        free(x.keys[i]);
    }
    free(x.keys);
}

int sim_channel_reply_token_add(struct sim_state *st, struct sim_channel *ch, const char *token,
                                const char *user_id, long long age_ms, int64_t now_ns)
{
    (void)st;
    struct sim_reply_token *t = calloc(1, sizeof *t);
    if (!t || !(t->user_id = strdup(user_id))) {
        free(t);
        return -1;
    }
    t->issued_ns = now_ns - (int64_t)age_ms * 1000000;
    int rc = 0;
    pthread_mutex_lock(&ch->lock);
    if (++ch->reply_adds % SIM_REPLY_SWEEP_EVERY == 0)
        channel_sweep_reply_tokens(ch, now_ns);
    if (sim_map_get(ch->reply_tokens, token))
        rc = -2;
    else if (sim_map_put(ch->reply_tokens, token, t, NULL) != 0)
        rc = -1;
    pthread_mutex_unlock(&ch->lock);
    if (rc != 0)
        reply_token_free(t);
    return rc;
}

/* Reads an optional string field; -1 (with err) when present but not one. */
static int opt_string(const json_t *obj, const char *key, const char **out, size_t i, char *err,
                      size_t errcap)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, errcap, "users[%zu].%s must be a string", i, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

long sim_channel_users_upsert(struct sim_state *st, struct sim_channel *ch, const json_t *users,
                              char *err, size_t errcap)
{
    (void)st;
    size_t i;
    const json_t *u;
    /* Check everything first so bad input changes nothing. */
    json_array_foreach(users, i, u)
    {
        const char *s;
        if (!json_is_object(u)) {
            snprintf(err, errcap, "users[%zu] must be an object", i);
            return -1;
        }
        const json_t *id = json_object_get(u, "user_id");
        if (!json_is_string(id) || json_string_length(id) == 0) {
            snprintf(err, errcap, "users[%zu].user_id must be a non-empty string", i);
            return -1;
        }
        const json_t *b = json_object_get(u, "blocked");
        if (b && !json_is_boolean(b)) {
            snprintf(err, errcap, "users[%zu].blocked must be a boolean", i);
            return -1;
        }
        if (opt_string(u, "display_name", &s, i, err, errcap) ||
            opt_string(u, "picture_url", &s, i, err, errcap) ||
            opt_string(u, "status_message", &s, i, err, errcap) ||
            opt_string(u, "language", &s, i, err, errcap))
            return -1;
    }
    long n = 0;
    pthread_mutex_lock(&ch->lock);
    json_array_foreach(users, i, u)
    {
        const char *id = json_string_value(json_object_get(u, "user_id"));
        struct sim_user *cur = sim_map_get(ch->users, id);
        struct sim_user *nu = calloc(1, sizeof *nu);
        if (!nu)
            break;
        const char *dn, *pic, *status, *lang;
        opt_string(u, "display_name", &dn, i, err, errcap);
        opt_string(u, "picture_url", &pic, i, err, errcap);
        opt_string(u, "status_message", &status, i, err, errcap);
        opt_string(u, "language", &lang, i, err, errcap);
        /* Fields left out keep their old values, so {"user_id", "blocked"}
         * just blocks or unblocks. */
        nu->display_name = dup_or_null(dn ? dn : cur ? cur->display_name : NULL);
        nu->picture_url = dup_or_null(pic ? pic : cur ? cur->picture_url : NULL);
        nu->status_message = dup_or_null(status ? status : cur ? cur->status_message : NULL);
        nu->language = dup_or_null(lang ? lang : cur ? cur->language : NULL);
        const json_t *b = json_object_get(u, "blocked");
        nu->blocked = b ? json_is_true(b) : cur ? cur->blocked : false;
        void *old = NULL;
        if (sim_map_put(ch->users, id, nu, &old) != 0) {
            user_free(nu);
            break;
        }
        user_free(old);
        n++;
    }
    pthread_mutex_unlock(&ch->lock);
    if (n < (long)json_array_size(users)) {
        snprintf(err, errcap, "out of memory after %ld users", n);
        return -1;
    }
    return n;
}

/* Parses one rate setting: a number (requests per second) or an object
 * {"limit", "period_s", "burst"}. 0 means unlimited. */
static int parse_rate(const json_t *v, const char *name, struct sim_rate *out, char *err,
                      size_t errcap)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            goto bad;
        *out = (struct sim_rate){(long)json_integer_value(v), 1, 0};
        return 0;
    }
    if (!json_is_object(v))
        goto bad;
    struct sim_rate r = {0, 1, 0};
    const json_t *limit = json_object_get(v, "limit");
    const json_t *period = json_object_get(v, "period_s");
    const json_t *burst = json_object_get(v, "burst");
    if (!json_is_integer(limit) || json_integer_value(limit) < 0 ||
        (period && (!json_is_integer(period) || json_integer_value(period) < 1)) ||
        (burst && (!json_is_integer(burst) || json_integer_value(burst) < 0)))
        goto bad;
    r.limit = (long)json_integer_value(limit);
    if (period)
        r.period_s = (long)json_integer_value(period);
    if (burst)
        r.burst = (long)json_integer_value(burst);
    *out = r;
    return 0;
bad:
    snprintf(err, errcap,
             "rate_limits.%s must be a non-negative integer or {\"limit\",\"period_s\",\"burst\"}",
             name);
    return -1;
}

static int positive_int(const json_t *body, const char *key, long *out, char *err, size_t errcap)
{
    const json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        snprintf(err, errcap, "%s must be a positive integer", key);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

int sim_channel_limits_update(struct sim_state *st, struct sim_channel *ch, const json_t *body,
                              int64_t now_ns, char *err, size_t errcap)
{
    (void)st;
    struct sim_rate rates[SIM_EP_COUNT];
    bool set[SIM_EP_COUNT] = {false};
    long reply_ttl = -1, retry_ttl = -1;
    int quota_set = 0; /* 1 none, 2 limited */
    long long quota_value = 0, usage = -1;

    if (!json_is_object(body)) {
        snprintf(err, errcap, "body must be a JSON object");
        return -1;
    }
    const json_t *rl = json_object_get(body, "rate_limits");
    if (rl && !json_is_object(rl)) {
        snprintf(err, errcap, "rate_limits must be an object");
        return -1;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)rl, name, v)
    {
        int ep = sim_endpoint_parse(name);
        if (ep < 0) {
            snprintf(err, errcap, "rate_limits.%s is not an endpoint", name);
            return -1;
        }
        if (parse_rate(v, name, &rates[ep], err, errcap) != 0)
            return -1;
        set[ep] = true;
    }
    const json_t *q = json_object_get(body, "quota");
    if (q) {
        const char *type = json_string_value(json_object_get(q, "type"));
        const json_t *value = json_object_get(q, "value");
        if (type && strcmp(type, "none") == 0) {
            quota_set = 1;
        } else if (type && strcmp(type, "limited") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 0) {
            quota_set = 2;
            quota_value = json_integer_value(value);
        } else {
            snprintf(err, errcap,
                     "quota must be {\"type\":\"none\"} or {\"type\":\"limited\",\"value\":N}");
            return -1;
        }
    }
    const json_t *u = json_object_get(body, "usage");
    if (u) {
        if (!json_is_integer(u) || json_integer_value(u) < 0) {
            snprintf(err, errcap, "usage must be a non-negative integer");
            return -1;
        }
        usage = json_integer_value(u);
    }
    if (positive_int(body, "reply_token_ttl_s", &reply_ttl, err, errcap) ||
        positive_int(body, "retry_key_ttl_s", &retry_ttl, err, errcap))
        return -1;

    pthread_mutex_lock(&ch->lock);
    for (int i = 0; i < SIM_EP_COUNT; i++)
        if (set[i])
            sim_bucket_set(&ch->ep[i].bucket, rates[i], now_ns);
    if (quota_set) {
        ch->quota.limited = quota_set == 2;
        ch->quota.limit = quota_value;
    }
    if (usage >= 0) {
        sim_quota_roll(&ch->quota, time(NULL));
        ch->quota.usage = usage;
    }
    if (reply_ttl > 0)
        ch->reply_token_ttl_s = reply_ttl;
    if (retry_ttl > 0)
        ch->retry_key_ttl_s = retry_ttl;
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

json_t *sim_channel_limits_json(struct sim_state *st, struct sim_channel *ch)
{
    (void)st;
    json_t *rl = json_object();
    pthread_mutex_lock(&ch->lock);
    for (int i = 0; rl && i < SIM_EP_COUNT; i++) {
        const struct sim_rate *r = &ch->ep[i].bucket.rate;
        json_object_set_new(rl, sim_endpoint_name((enum sim_endpoint)i),
                            json_pack("{s:I, s:I, s:I}", "limit", (json_int_t)r->limit, "period_s",
                                      (json_int_t)r->period_s, "burst", (json_int_t)r->burst));
    }
    sim_quota_roll(&ch->quota, time(NULL));
    json_t *quota = ch->quota.limited ? json_pack("{s:s, s:I}", "type", "limited", "value",
                                                  (json_int_t)ch->quota.limit)
                                      : json_pack("{s:s}", "type", "none");
    json_t *out = json_pack("{s:s, s:o, s:o, s:I, s:I, s:I}", "channel_id", ch->id, "rate_limits",
                            rl, "quota", quota, "usage", (json_int_t)ch->quota.usage,
                            "reply_token_ttl_s", (json_int_t)ch->reply_token_ttl_s,
                            "retry_key_ttl_s", (json_int_t)ch->retry_key_ttl_s);
    pthread_mutex_unlock(&ch->lock);
    return out;
}

static void channel_list_one(const char *key, void *value, void *ctx)
{
    const struct sim_channel *ch = value;
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:I}", "channel_id", key, "bot_user_id",
                                         ch->bot_user_id, "tokens", (json_int_t)ch->ntokens));
}

json_t *sim_state_channels_json(struct sim_state *st)
{
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&st->lock);
    if (arr)
        sim_map_each(st->by_id, channel_list_one, arr);
    pthread_rwlock_unlock(&st->lock);
    return json_pack("{s:o}", "channels", arr);
}

struct messages_ctx {
    const char *to;
    const char *channel_id;
    json_t *out; /* array (to given) or object of channel -> counts */
};

static void inbox_count_one(const char *key, void *value, void *ctx)
{
    const struct sim_inbox *in = value;
    json_object_set_new(ctx, key, json_integer((json_int_t)in->n));
}

static void messages_one_channel(const char *key, void *value, void *ctx)
{
    struct messages_ctx *mc = ctx;
    struct sim_channel *ch = value;
    if (mc->channel_id && strcmp(mc->channel_id, key) != 0)
        return;
    pthread_mutex_lock(&ch->lock);
    if (!mc->to) {
        json_t *counts = json_object();
        sim_map_each(ch->inboxes, inbox_count_one, counts);
        json_object_set_new(mc->out, key, counts);
    } else {
        const struct sim_inbox *in = sim_map_get(ch->inboxes, mc->to);
        for (size_t i = 0; in && i < in->n; i++) {
            const struct sim_sent *s = in->items[i];
            json_t *msgs = json_loads(s->messages, 0, NULL);
            json_array_append_new(
                mc->out, json_pack("{s:s, s:s, s:s, s:s?, s:I, s:o?}", "channel_id", key,
                                   "endpoint", sim_endpoint_name(s->ep), "request_id",
                                   s->request_id, "retry_key", s->retry_key, "accepted_at_ms",
                                   (json_int_t)s->accepted_ms, "messages", msgs));
        }
    }
    pthread_mutex_unlock(&ch->lock);
}

json_t *sim_state_messages_json(struct sim_state *st, const char *to, const char *channel_id)
{
    struct messages_ctx mc = {to, channel_id, to ? json_array() : json_object()};
    if (!mc.out)
        return NULL;
    pthread_rwlock_rdlock(&st->lock);
    sim_map_each(st->by_id, messages_one_channel, &mc);
    pthread_rwlock_unlock(&st->lock);
    if (to)
        return json_pack("{s:s, s:I, s:o}", "to", to, "count", (json_int_t)json_array_size(mc.out),
                         "messages", mc.out);
    return json_pack("{s:o}", "recipients", mc.out);
}

struct stats_ctx {
    json_t *channels;
    int64_t now_ns;
};

static void stats_one_channel(const char *key, void *value, void *ctx)
{
    struct stats_ctx *sc = ctx;
    struct sim_channel *ch = value;
    json_t *eps = json_object();
    pthread_mutex_lock(&ch->lock);
    for (int i = 0; eps && i < SIM_EP_COUNT; i++) {
        struct sim_ep_state *e = &ch->ep[i];
        if (e->requests == 0)
            continue;
        json_t *o = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
            (json_int_t)e->requests, "accepted", (json_int_t)e->accepted, "rate_limited",
            (json_int_t)e->rate_limited, "quota_exceeded", (json_int_t)e->quota_exceeded,
            "conflict", (json_int_t)e->conflicts, "rejected", (json_int_t)e->rejected,
            "fault_errors", (json_int_t)e->fault_errors, "fault_drops", (json_int_t)e->fault_drops,
            "deliveries", (json_int_t)e->deliveries, "duplicate", (json_int_t)e->duplicates,
            "duplicate_deliveries", (json_int_t)e->duplicate_deliveries, "max_rate_1s",
            (json_int_t)e->seen.max, "max_accepted_rate_1s", (json_int_t)e->ok.max,
            "current_rate_1s", (json_int_t)sim_ratemeter_current(&e->seen, sc->now_ns));
        json_object_set_new(eps, sim_endpoint_name((enum sim_endpoint)i), o);
    }
    sim_quota_roll(&ch->quota, time(NULL));
    json_t *c = json_pack("{s:I, s:I, s:I, s:o}", "usage", (json_int_t)ch->quota.usage,
                          "retry_keys", (json_int_t)sim_retrykeys_count(ch->retrykeys),
                          "recipients", (json_int_t)sim_map_count(ch->inboxes), "endpoints", eps);
    pthread_mutex_unlock(&ch->lock);
    json_object_set_new(sc->channels, key, c);
}

json_t *sim_state_stats_json(struct sim_state *st, int64_t now_ns)
{
    struct sim_counters *c = &st->c;
    struct stats_ctx sc = {json_object(), now_ns};
    if (!sc.channels)
        return NULL;
    pthread_rwlock_rdlock(&st->lock);
    sim_map_each(st->by_id, stats_one_channel, &sc);
    pthread_rwlock_unlock(&st->lock);
    uint64_t rate = get64(&c->rate_limited), quota = get64(&c->quota_exceeded);
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:{s:I, s:I, s:I}, s:{s:b, s:I, s:I, s:b}, s:o}",
        "requests", (json_int_t)get64(&c->requests), "accepted", (json_int_t)get64(&c->accepted),
        "duplicate", (json_int_t)get64(&c->duplicates), "duplicate_deliveries",
        (json_int_t)get64(&c->duplicate_deliveries), "deliveries",
        (json_int_t)get64(&c->deliveries), "too_many_requests", (json_int_t)(rate + quota),
        "rate_limited", (json_int_t)rate, "quota_exceeded", (json_int_t)quota, "conflict",
        (json_int_t)get64(&c->conflicts), "rejected", (json_int_t)get64(&c->rejected),
        "unauthorized", (json_int_t)get64(&c->unauthorized), "not_found",
        (json_int_t)get64(&c->not_found), "faults", "errors", (json_int_t)get64(&c->fault_errors),
        "drops", (json_int_t)get64(&c->fault_drops), "after_accept",
        (json_int_t)get64(&c->fault_after), "recording", "enabled", (int)atomic_load(&st->record),
        "recorded", (json_int_t)atomic_load(&st->recorded), "max", (json_int_t)st->max_recorded,
        "truncated", (int)atomic_load(&st->truncated), "channels", sc.channels);
}

struct reset_ctx {
    int64_t now_ns;
    int failed;
};

static void reset_one_channel(const char *key, void *value, void *ctx)
{
    (void)key;
    struct reset_ctx *rc = ctx;
    struct sim_channel *ch = value;
    pthread_mutex_lock(&ch->lock);
    if (channel_clear_traffic(ch, rc->now_ns) != 0)
        rc->failed = 1;
    pthread_mutex_unlock(&ch->lock);
}

void sim_state_reset(struct sim_state *st, bool keep_channels, int64_t now_ns)
{
    pthread_rwlock_wrlock(&st->lock);
    if (keep_channels) {
        struct reset_ctx rc = {now_ns, 0};
        sim_map_each(st->by_id, reset_one_channel, &rc);
    } else {
        struct sim_map *by_id = sim_map_new(), *by_token = sim_map_new();
        if (by_id && by_token) {
            sim_map_free(&st->by_token, NULL);
            sim_map_free(&st->by_id, channel_free);
            st->by_id = by_id;
            st->by_token = by_token;
        } else {
            sim_map_free(&by_id, NULL);
            sim_map_free(&by_token, NULL);
        }
    }
    struct sim_counters *c = &st->c;
    atomic_uint_fast64_t *all[] = {&c->requests,    &c->unauthorized, &c->not_found,
                                   &c->accepted,    &c->duplicates,   &c->duplicate_deliveries,
                                   &c->deliveries,  &c->rate_limited, &c->quota_exceeded,
                                   &c->conflicts,   &c->rejected,     &c->fault_errors,
                                   &c->fault_drops, &c->fault_after};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        atomic_store(all[i], 0);
    atomic_store(&st->recorded, 0);
    atomic_store(&st->truncated, false);
    pthread_mutex_lock(&st->faults_lock);
    sim_faults_default(&st->faults);
    pthread_mutex_unlock(&st->faults_lock);
    pthread_rwlock_unlock(&st->lock);
}

void sim_state_faults_get(struct sim_state *st, struct sim_faults *out)
{
    pthread_mutex_lock(&st->faults_lock);
    *out = st->faults;
    pthread_mutex_unlock(&st->faults_lock);
}

int sim_state_faults_update(struct sim_state *st, const json_t *body, char *err, size_t errcap)
{
    pthread_mutex_lock(&st->faults_lock);
    int rc = sim_faults_update(&st->faults, body, err, errcap);
    pthread_mutex_unlock(&st->faults_lock);
    return rc;
}

void sim_state_set_record(struct sim_state *st, bool record)
{
    atomic_store(&st->record, record);
}

bool sim_state_record(struct sim_state *st)
{
    return atomic_load(&st->record);
}
