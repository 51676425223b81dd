/* The dispatcher's copy of the channel registry. Ingest owns the registry
 * and publishes each change as a full snapshot with an increasing version
 * to the compacted `channels` topic; this table keeps the newest snapshot
 * per channel, with the access token already opened, so the send path
 * never touches the database or the data key. */
#include "channels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "strmap.h"
#include "worker.h"

#define CHANNELS_POLL_MS 200
#define CHANNELS_QUIET_MS 500         /* an empty poll this long after records: caught up */
#define CHANNELS_EMPTY_TOPIC_MS 10000 /* no record at all this long: the topic is empty */
#define CHANNELS_AAD_MAX (AUTH_FIELD_MAX + CHANNEL_ID_MAX + 2)

struct channels {
    pthread_mutex_t mu;
    struct strmap *map; /* channel id -> struct channel_creds * */
    uint8_t key[CRYPTO_KEY_LEN];
    /* the follower */
    struct kafka_consumer *consumer;
    struct worker *follower;
    atomic_bool caught_up;
    struct metric *records;
};

static void creds_free(void *p)
{
    struct channel_creds *c = p;
    if (!c)
        return;
    channels_creds_wipe(c);
    free(c);
}

void channels_creds_wipe(struct channel_creds *c)
{
    if (!c)
        return;
    /* volatile: the compiler may not drop a wipe of memory about to die. */
    volatile char *p = c->token;
    for (size_t i = 0; i < sizeof c->token; i++)
        p[i] = 0;
}

struct channels *channels_new(const uint8_t key[CRYPTO_KEY_LEN])
{
    struct channels *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->map = strmap_new();
    if (!t->map) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    memcpy(t->key, key, CRYPTO_KEY_LEN);
    atomic_init(&t->caught_up, false);
    t->records = metrics_counter("kizuna_dispatcher_channel_records_total",
                                 "records read from the channels topic", "result");
    return t;
}

void channels_free(struct channels **tp)
{
    if (!tp || !*tp)
        return;
    struct channels *t = *tp;
    channels_follow_stop(t);
    strmap_free(&t->map, creds_free);
    volatile uint8_t *k = t->key;
    for (size_t i = 0; i < sizeof t->key; i++)
        k[i] = 0;
    pthread_mutex_destroy(&t->mu);
    free(t);
    *tp = NULL;
}

static int copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return -1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

/* Marks the key's channel deleted (a tombstone), whatever its version. */
static int channels_tombstone(struct channels *t, const char *id)
{
    pthread_mutex_lock(&t->mu);
    struct channel_creds *c = strmap_get(t->map, id);
    if (c) {
        c->deleted = true;
        c->token_ok = false;
        channels_creds_wipe(c);
    }
    pthread_mutex_unlock(&t->mu);
    return c ? 1 : 0;
}

int channels_apply(struct channels *t, const void *key, size_t keylen, const void *value,
                   size_t len, char *errstr, size_t errcap)
{
    char id[CHANNEL_ID_MAX + 1] = "";
    if (key && keylen > 0) {
        if (keylen > CHANNEL_ID_MAX) {
            snprintf(errstr, errcap, "record key longer than %d bytes", CHANNEL_ID_MAX);
            return -1;
        }
        memcpy(id, key, keylen);
        id[keylen] = '\0';
    }
    if (!value || len == 0) {
        if (!id[0]) {
            snprintf(errstr, errcap, "tombstone without a key");
            return -1;
        }
        return channels_tombstone(t, id);
    }
    Kizuna__V1__ChannelConfig *cfg =
        kizuna__v1__channel_config__unpack(NULL, len, (const uint8_t *)value);
    if (!cfg) {
        snprintf(errstr, errcap, "not a kizuna.v1.ChannelConfig");
        return -1;
    }
    int rc = -1;
    struct channel_creds *fresh = calloc(1, sizeof *fresh);
    if (!fresh) {
        snprintf(errstr, errcap, "out of memory");
        goto done;
    }
    const char *cid = cfg->channel_id && cfg->channel_id[0] ? cfg->channel_id : id;
    if (!cid[0] || strlen(cid) > CHANNEL_ID_MAX) {
        snprintf(errstr, errcap, "channel_id missing or longer than %d bytes", CHANNEL_ID_MAX);
        goto done;
    }
    if (copy_field(fresh->tenant_id, sizeof fresh->tenant_id, cfg->tenant_id) != 0 ||
        !fresh->tenant_id[0]) {
        snprintf(errstr, errcap, "channel %s: tenant_id missing or too long", cid);
        goto done;
    }
    if (copy_field(fresh->timezone, sizeof fresh->timezone,
                   cfg->timezone && cfg->timezone[0] ? cfg->timezone : "Asia/Tokyo") != 0) {
        snprintf(errstr, errcap, "channel %s: timezone too long", cid);
        goto done;
    }
    fresh->monthly_quota = cfg->monthly_quota > 0 ? cfg->monthly_quota : 0;
    fresh->version = cfg->version;
    fresh->deleted = cfg->deleted;
    if (!cfg->deleted) {
        char aad[CHANNELS_AAD_MAX];
        int aadlen = snprintf(aad, sizeof aad, "%s/%s", fresh->tenant_id, cid);
        long n = -1;
        if (aadlen > 0 && (size_t)aadlen < sizeof aad && cfg->access_token_sealed.len > 0)
            n = crypto_open(t->key, aad, (size_t)aadlen, cfg->access_token_sealed.data,
                            cfg->access_token_sealed.len, (uint8_t *)fresh->token,
                            sizeof fresh->token - 1);
        if (n > 0) {
            fresh->token[n] = '\0';
            fresh->token_ok = strlen(fresh->token) == (size_t)n;
        }
        if (!fresh->token_ok) {
            channels_creds_wipe(fresh);
            /* Kept, so sends fail clearly instead of waiting for a channel. */
            log_warn("channel access token does not open with KIZUNA_DATA_KEY", "tenant",
                     fresh->tenant_id, "channel", cid);
        }
    }

    pthread_mutex_lock(&t->mu);
    struct channel_creds *old = strmap_get(t->map, cid);
    if (old && old->version >= fresh->version) {
        rc = 0;
    } else if (strmap_put(t->map, cid, fresh) != 0) {
        snprintf(errstr, errcap, "out of memory");
    } else {
        creds_free(old);
        fresh = NULL;
        rc = 1;
    }
    pthread_mutex_unlock(&t->mu);

done:
    creds_free(fresh);
    kizuna__v1__channel_config__free_unpacked(cfg, NULL);
    return rc;
}

int channels_lookup(struct channels *t, const char *channel_id, struct channel_creds *out)
{
    pthread_mutex_lock(&t->mu);
    const struct channel_creds *c = strmap_get(t->map, channel_id);
    if (c)
        memcpy(out, c, sizeof *out);
    pthread_mutex_unlock(&t->mu);
    return c ? 0 : -1;
}

struct tenant_collect {
    const char *tenant;
    char (*ids)[CHANNEL_ID_MAX + 1];
    size_t n, cap;
    bool oom;
};

static void tenant_collect_one(void *ctx, const char *key, void *value)
{
    struct tenant_collect *tc = ctx;
    const struct channel_creds *c = value;
    if (tc->oom || c->deleted || strcmp(c->tenant_id, tc->tenant) != 0)
        return;
    if (tc->n == tc->cap) {
        size_t cap = tc->cap ? tc->cap * 2 : 8;
        void *p = realloc(tc->ids, cap * sizeof *tc->ids);
        if (!p) {
            tc->oom = true;
            return;
        }
        tc->ids = p;
        tc->cap = cap;
    }
    snprintf(tc->ids[tc->n++], CHANNEL_ID_MAX + 1, "%s", key);
}

static int id_compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

int channels_tenant_list(struct channels *t, const char *tenant, char (**ids)[CHANNEL_ID_MAX + 1],
                         size_t *n)
{
    struct tenant_collect tc = {.tenant = tenant};
    pthread_mutex_lock(&t->mu);
    strmap_each(t->map, tenant_collect_one, &tc);
    pthread_mutex_unlock(&t->mu);
    if (tc.oom) {
        free(tc.ids);
        *ids = NULL;
        *n = 0;
        return -1;
    }
    if (tc.n > 1)
        qsort(tc.ids, tc.n, sizeof *tc.ids, id_compare);
    *ids = tc.ids;
    *n = tc.n;
    return 0;
}

/* --- the follower ----------------------------------------------------------- */

static enum kafka_handled channels_on_record(void *ctx, const struct kafka_message *msg)
{
    struct channels *t = ctx;
    char errstr[256] = "";
    int rc = channels_apply(t, msg->key, msg->keylen, msg->value, msg->len, errstr, sizeof errstr);
    if (rc < 0) {
        char partition[16], offset[24];
        snprintf(partition, sizeof partition, "%d", (int)msg->partition);
        snprintf(offset, sizeof offset, "%lld", (long long)msg->offset);
        log_warn("channels record ignored", "partition", partition, "offset", offset, "error",
                 errstr);
    }
    metrics_add(t->records, 1, rc < 0 ? "malformed" : rc == 0 ? "not_newer" : "applied");
    return KAFKA_DONE;
}

/* The follower's body: poll until stopped (a poll blocks at most
 * CHANNELS_POLL_MS), noting when the topic has been read to its end. */
static void channels_follow(struct worker *wk, void *ctx)
{
    struct channels *t = ctx;
    int64_t started = clock_mono_ms(), quiet_since = started;
    long seen = 0;
    while (!worker_stopping(wk)) {
        int rc = kafka_consumer_poll(t->consumer, CHANNELS_POLL_MS, channels_on_record, t);
        int64_t now = clock_mono_ms();
        if (rc > 0) {
            seen++;
            quiet_since = now;
            continue;
        }
        if (rc < 0) {
            log_error("channels consumer failed; credentials stop updating");
            worker_wait(wk, 1000);
            continue;
        }
        if (!atomic_load(&t->caught_up) && ((seen > 0 && now - quiet_since >= CHANNELS_QUIET_MS) ||
                                            now - started >= CHANNELS_EMPTY_TOPIC_MS)) {
            char count[24];
            snprintf(count, sizeof count, "%ld", seen);
            log_info("channels caught up", "records", count);
            atomic_store(&t->caught_up, true);
        }
    }
}

int channels_follow_start(struct channels *t, const char *brokers, const char *group,
                          const char *topic, char *errstr, size_t errcap)
{
    if (t->follower) {
        snprintf(errstr, errcap, "channels follower already running");
        return -1;
    }
    const char *topics[] = {topic};
    struct kafka_consumer_options opts = {
        .brokers = brokers,
        .group = group,
        .topics = topics,
        .ntopics = 1,
        .from_beginning = true,
        .no_commit = true,
    };
    t->consumer = kafka_consumer_new(&opts, errstr, errcap);
    if (!t->consumer)
        return -1;
    t->follower = worker_start("channels", channels_follow, t, errstr, errcap);
    if (!t->follower) {
        kafka_consumer_free(&t->consumer);
        return -1;
    }
    return 0;
}

bool channels_caught_up(struct channels *t)
{
    return atomic_load(&t->caught_up);
}

void channels_follow_stop(struct channels *t)
{
    if (!t || !t->follower)
        return;
    /* No work to finish: the budget covers the poll in progress. */
    worker_stop(&t->follower, CHANNELS_POLL_MS);
    kafka_consumer_free(&t->consumer);
}
