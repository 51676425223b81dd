/* Per-channel rate-limit overrides (the admin API and the channel_limits
 * table): kept beside the rate limiter's own state so that a sync with the
 * table can tell which overrides no longer have a row. Any thread; takes
 * sender.mu. */
#include "sender_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strmap.h"

/* --- limits ---------------------------------------------------------------------- */

static struct override *override_find(struct sender *s, const char *channel_id,
                                      enum ratelimit_class cls)
{
    for (size_t i = 0; i < s->noverrides; i++)
        if (s->overrides[i].cls == cls && strcmp(s->overrides[i].channel_id, channel_id) == 0)
            return &s->overrides[i];
    return NULL;
}

int sender_limit_get(struct sender *s, const char *channel_id, enum ratelimit_class cls,
                     struct ratelimit_rate *out, bool *overridden)
{
    pthread_mutex_lock(&s->mu);
    int rc = ratelimit_get(s->rl, channel_id, cls, out, overridden);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static bool rate_equal(const struct ratelimit_rate *a, const struct ratelimit_rate *b)
{
    return a->limit == b->limit && a->period_s == b->period_s && a->burst == b->burst;
}

/* Under mu. */
static int limit_set_locked(struct sender *s, const char *channel_id, const char *tenant,
                            enum ratelimit_class cls, const struct ratelimit_rate *rate,
                            char *errstr, size_t errcap)
{
    struct override *o = override_find(s, channel_id, cls);
    if (rate && o && rate_equal(&o->rate, rate)) {
        snprintf(o->tenant_id, sizeof o->tenant_id, "%s", tenant);
        return 0;
    }
    if (!rate && !o)
        return 0;
    if (strlen(channel_id) > CHANNEL_ID_MAX) {
        snprintf(errstr, errcap, "channel id too long");
        return -1;
    }
    if (rate && !o && s->noverrides == s->overrides_cap) {
        size_t cap = s->overrides_cap ? s->overrides_cap * 2 : 16;
        void *p = realloc(s->overrides, cap * sizeof *s->overrides);
        if (!p) {
            snprintf(errstr, errcap, "out of memory");
            return -2;
        }
        s->overrides = p;
        s->overrides_cap = cap;
    }
    int rc = ratelimit_set(s->rl, channel_id, cls, rate, clock_mono_ns(), errstr, errcap);
    if (rc != 0)
        return rc;
    struct chan *c = strmap_get(s->chans, channel_id);
    if (c)
        c->blocked_until_ns[cls] = 0;
    if (rate) {
        if (!o) {
            o = &s->overrides[s->noverrides++];
            memset(o, 0, sizeof *o);
            snprintf(o->channel_id, sizeof o->channel_id, "%s", channel_id);
            o->cls = cls;
        }
        o->rate = *rate;
        snprintf(o->tenant_id, sizeof o->tenant_id, "%s", tenant);
    } else {
        *o = s->overrides[--s->noverrides];
    }
    return 0;
}

int sender_limit_set(struct sender *s, const char *channel_id, const char *tenant_id,
                     enum ratelimit_class cls, const struct ratelimit_rate *rate, char *errstr,
                     size_t errcap)
{
    pthread_mutex_lock(&s->mu);
    int rc = limit_set_locked(s, channel_id, tenant_id, cls, rate, errstr, errcap);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        curl_multi_wakeup(s->multi);
    return rc;
}

/* Whether tenant's row for channel_id applies: the channel is unknown to
 * the `channels` topic yet, or tenant owns it. No lock of the sender. */
static bool row_applies(struct sender *s, struct channel_creds *cr, const char *channel_id,
                        const char *tenant)
{
    if (channels_lookup(s->channels, channel_id, cr) != 0)
        return true;
    bool mine = strcmp(cr->tenant_id, tenant) == 0;
    channels_creds_wipe(cr);
    return mine;
}

void sender_limits_sync(struct sender *s, const struct sender_limit_row *rows, size_t n)
{
    char errstr[256];
    /* Whose rows count is decided before mu: the lookup copies a token. */
    bool *applies = calloc(n ? n : 1, sizeof *applies);
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!applies || !cr) {
        log_warn("out of memory reading channel limits; keeping the current ones");
        free(applies);
        free(cr);
        return;
    }
    for (size_t i = 0; i < n; i++)
        applies[i] = row_applies(s, cr, rows[i].channel_id, rows[i].tenant_id);
    free(cr);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->noverrides; i++)
        s->overrides[i].seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!applies[i])
            continue; /* a former owner's: as if there were no row */
        if (limit_set_locked(s, rows[i].channel_id, rows[i].tenant_id, rows[i].cls, &rows[i].rate,
                             errstr, sizeof errstr) != 0) {
            log_warn("channel limit row ignored", "channel", rows[i].channel_id, "class",
                     ratelimit_class_name(rows[i].cls), "error", errstr);
            continue;
        }
        struct override *o = override_find(s, rows[i].channel_id, rows[i].cls);
        if (o)
            o->seen = true;
    }
    for (size_t i = 0; i < s->noverrides;) {
        struct override o = s->overrides[i];
        if (o.seen) {
            i++;
            continue;
        }
        if (limit_set_locked(s, o.channel_id, o.tenant_id, o.cls, NULL, errstr, sizeof errstr) != 0)
            i++;
    }
    pthread_mutex_unlock(&s->mu);
    free(applies);
}

/* --- owners ----------------------------------------------------------------------- */

void sender_chan_owner_locked(struct sender *s, struct chan *c, const char *tenant)
{
    if (strcmp(c->owner, tenant) == 0)
        return;
    char errstr[256];
    /* The overrides another tenant set for this channel id are not the
     * owner's: back to LINE's defaults (the rows stay theirs). */
    for (size_t i = 0; i < s->noverrides;) {
        struct override o = s->overrides[i];
        if (strcmp(o.channel_id, c->id) != 0 || strcmp(o.tenant_id, tenant) == 0 ||
            limit_set_locked(s, o.channel_id, o.tenant_id, o.cls, NULL, errstr, sizeof errstr) != 0)
            i++;
    }
    if (c->owner[0]) {
        /* The month is read again, for the new owner (sender_quota_ensure). */
        c->quota_ready = false;
        c->line_limit = QUOTA_NONE;
        c->sync_due_ms = 0;
        c->sync_failed = false;
        log_info("channel has a new owner: its limits and quota usage start afresh", "channel",
                 c->id, "tenant", tenant, "former_tenant", c->owner);
    }
    snprintf(c->owner, sizeof c->owner, "%s", tenant);
}

void sender_channel_owner(struct sender *s, const char *channel_id, const char *tenant_id)
{
    pthread_mutex_lock(&s->mu);
    struct chan *c = sender_chan_get(s, channel_id);
    if (c)
        sender_chan_owner_locked(s, c, tenant_id);
    pthread_mutex_unlock(&s->mu);
    curl_multi_wakeup(s->multi);
}
