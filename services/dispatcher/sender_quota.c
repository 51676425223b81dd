/* The sender's monthly quota: each channel's month (in its time zone) and
 * usage, read from the delivery log when the channel is first used, counted
 * as sends are decided, and corrected now and then by LINE's own quota and
 * count (the effective quota is the lower of the contract's and LINE's).
 * Runs under sender.mu: on the sender's thread, or the admin API's for a
 * quota view. */
#include "sender_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "db.h"
#include "deliveries.h"
#include "log.h"
#include "metrics.h"
#include "strmap.h"
#include "worker.h"

/* --- quota ------------------------------------------------------------------------ */

static const struct quota_zone *zone_get(struct sender *s, const char *name)
{
    struct quota_zone *z = strmap_get(s->zones, name);
    if (z)
        return z;
    char errstr[256];
    z = quota_zone_load(name, NULL, errstr, sizeof errstr);
    if (!z) {
        log_warn("channel time zone unusable; counting its months in Asia/Tokyo", "timezone", name,
                 "error", errstr);
        if (strcmp(name, "Asia/Tokyo") != 0)
            return zone_get(s, "Asia/Tokyo");
        z = quota_zone_load("UTC", NULL, errstr, sizeof errstr);
        if (!z)
            return NULL;
    }
    if (strmap_put(s->zones, name, z) != 0) {
        quota_zone_free(&z);
        return NULL;
    }
    return z;
}

static struct quota_limits chan_limits(const struct sender *s, const struct chan *c,
                                       const struct channel_creds *cr)
{
    struct quota_limits lim = {
        .contract = cr->monthly_quota > 0 ? cr->monthly_quota : QUOTA_NONE,
        .line = c->line_limit,
        .warn_percent = s->cfg.quota_warn_percent,
    };
    return lim;
}

/* --- usage reads, off the send path ------------------------------------------- */

static struct quota_load *load_find(struct sender *s, const char *tenant_id, const char *channel_id)
{
    for (struct quota_load *l = s->loads; l; l = l->next)
        if (strcmp(l->channel_id, channel_id) == 0 && strcmp(l->tenant_id, tenant_id) == 0)
            return l;
    return NULL;
}

static void load_remove(struct sender *s, struct quota_load *gone)
{
    for (struct quota_load **link = &s->loads; *link; link = &(*link)->next) {
        if (*link == gone) {
            *link = gone->next;
            free(gone);
            return;
        }
    }
}

/* One look at the read of tenant_id's month of channel_id (see usage_take). */
static int usage_take_once(struct sender *s, const char *tenant_id, const char *channel_id,
                           int64_t month_start, long long *used)
{
    int rc = 0;
    bool wake = false;
    pthread_mutex_lock(&s->loads_mu);
    struct quota_load *l = load_find(s, tenant_id, channel_id);
    if (l && l->month_start == month_start && l->state == QUOTA_LOAD_DONE) {
        *used = l->used;
        load_remove(s, l);
        rc = 1;
    } else if (l && l->month_start == month_start && l->state == QUOTA_LOAD_FAILED) {
        load_remove(s, l);
        rc = -1;
    } else if (l && l->state != QUOTA_LOAD_RUNNING && l->month_start != month_start) {
        l->month_start = month_start;
        l->state = QUOTA_LOAD_WANTED;
        wake = true;
    } else if (!l) {
        l = calloc(1, sizeof *l);
        if (l) {
            snprintf(l->channel_id, sizeof l->channel_id, "%s", channel_id);
            snprintf(l->tenant_id, sizeof l->tenant_id, "%s", tenant_id);
            l->month_start = month_start;
            l->state = QUOTA_LOAD_WANTED;
            l->next = s->loads;
            s->loads = l;
            wake = true;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&s->loads_mu);
    if (wake)
        worker_wake(s->loader);
    return rc;
}

/* The usage of tenant_id's channel_id in the month starting at month_start
 * (another tenant's usage of the same channel id is not read): 1 with *used
 * once the loader has read it, 0 while it is asked for or being read, -1
 * when the read failed (the next call asks again). A read just asked for
 * is waited for SENDER_QUOTA_LOAD_WAIT_MS at most: a healthy database
 * answers within it, so a channel's first send is not parked for nothing,
 * and a stalled one costs the send path no more. Under mu or not. */
static int usage_take(struct sender *s, const char *tenant_id, const char *channel_id,
                      int64_t month_start, long long *used)
{
    int rc = usage_take_once(s, tenant_id, channel_id, month_start, used);
    if (rc != 0)
        return rc;
    struct timespec give_up = clock_mono_deadline(SENDER_QUOTA_LOAD_WAIT_MS);
    pthread_mutex_lock(&s->loads_mu);
    struct quota_load *l = load_find(s, tenant_id, channel_id);
    while (l && (l->state == QUOTA_LOAD_WANTED || l->state == QUOTA_LOAD_RUNNING) &&
           pthread_cond_timedwait(&s->loads_done, &s->loads_mu, &give_up) == 0)
        l = load_find(s, tenant_id, channel_id);
    pthread_mutex_unlock(&s->loads_mu);
    return usage_take_once(s, tenant_id, channel_id, month_start, used);
}

long sender_quota_load_round(struct worker *w, void *ctx)
{
    (void)w;
    struct sender *s = ctx;
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX];
    int64_t month = 0;
    pthread_mutex_lock(&s->loads_mu);
    struct quota_load *l = s->loads;
    while (l && l->state != QUOTA_LOAD_WANTED)
        l = l->next;
    if (l) {
        l->state = QUOTA_LOAD_RUNNING;
        snprintf(channel_id, sizeof channel_id, "%s", l->channel_id);
        snprintf(tenant_id, sizeof tenant_id, "%s", l->tenant_id);
        month = l->month_start;
    }
    pthread_mutex_unlock(&s->loads_mu);
    if (!l)
        return SENDER_IDLE_MS * 10;

    /* No lock held: a database that does not answer holds this thread only
     * (for DB_STATEMENT_TIMEOUT_MS at most). */
    long long used = 0;
    int rc = deliveries_quota_used(s->db, tenant_id, channel_id, month, &used);
    if (rc != 0)
        log_warn("cannot read quota usage; the channel waits", "channel", channel_id, "error",
                 db_error_message(s->db));

    pthread_mutex_lock(&s->loads_mu);
    l = load_find(s, tenant_id,
                  channel_id); /* still there: only usage_take removes, and not RUNNING ones */
    if (l && l->state == QUOTA_LOAD_RUNNING) {
        if (l->month_start != month) {
            l->state = QUOTA_LOAD_WANTED; /* the month turned meanwhile */
        } else {
            l->state = rc == 0 ? QUOTA_LOAD_DONE : QUOTA_LOAD_FAILED;
            l->used = used;
        }
    }
    pthread_cond_broadcast(&s->loads_done);
    pthread_mutex_unlock(&s->loads_mu);
    return 0;
}

void sender_quota_loads_free(struct sender *s)
{
    while (s->loads) {
        struct quota_load *next = s->loads->next;
        free(s->loads);
        s->loads = next;
    }
}

/* --- quota ---------------------------------------------------------------------- */

int sender_quota_ensure(struct sender *s, struct chan *c, const struct channel_creds *cr,
                        int64_t now_ms)
{
    char errstr[256];
    /* Another tenant's channel now: its month is not the former owner's. */
    sender_chan_owner_locked(s, c, cr->tenant_id);
    if (c->quota_ready && c->quota_version == cr->version)
        return 0;
    struct quota_limits lim = chan_limits(s, c, cr);
    if (c->quota_ready && strcmp(c->timezone, cr->timezone) == 0) {
        if (quota_set_limits(&c->quota, &lim, errstr, sizeof errstr) != 0)
            return -1;
        c->quota_version = cr->version;
        return 0;
    }
    const struct quota_zone *z = zone_get(s, cr->timezone);
    if (!z)
        return -1;
    int64_t start, end;
    quota_month_window(z, now_ms / 1000, &start, &end);
    long long used = 0;
    int got = usage_take(s, cr->tenant_id, c->id, start, &used);
    if (got <= 0)
        return got == 0 ? 1 : -1; /* the loader logged a failure */
    /* A zone change keeps what this replica counted, if more. */
    if (c->quota_ready && c->quota.used > used)
        used = c->quota.used;
    if (quota_state_init(&c->quota, z, &lim, used, now_ms / 1000, errstr, sizeof errstr) != 0) {
        log_error("quota state refused", "channel", c->id, "error", errstr);
        return -1;
    }
    snprintf(c->timezone, sizeof c->timezone, "%s", cr->timezone);
    c->quota_ready = true;
    c->quota_version = cr->version;
    if (c->sync_due_ms == 0)
        c->sync_due_ms = now_ms;
    return 0;
}

void sender_quota_release(struct delivery *d, struct chan *c)
{
    if (d->reserved && c && c->quota_ready)
        quota_release(&c->quota, d->reserved_cost, d->reserved_month);
    d->reserved = false;
    d->reserved_cost = 0;
}

/* --- LINE's quota ------------------------------------------------------------- */

void sender_quota_sync_start(struct sender *s, struct chan *c, int64_t now_ns, int64_t now_ms)
{
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return;
    if (channels_lookup(s->channels, c->id, cr) != 0 || cr->deleted || !cr->token_ok) {
        c->sync_due_ms = now_ms + SENDER_QUOTA_RETRY_MS;
        goto out;
    }
    if (s->inflight + 2 > s->cfg.max_inflight)
        goto out;
    if (ratelimit_take(s->rl, c->id, RATELIMIT_QUOTA, now_ns) != 0)
        goto out;
    if (ratelimit_take(s->rl, c->id, RATELIMIT_QUOTA_CONSUMPTION, now_ns) != 0)
        goto out; /* the quota token is spent; both go next time */
    static const struct {
        enum transfer_kind kind;
        enum ratelimit_class cls;
        const char *path;
    } calls[] = {
        {TRANSFER_QUOTA, RATELIMIT_QUOTA, "/v2/bot/message/quota"},
        {TRANSFER_CONSUMPTION, RATELIMIT_QUOTA_CONSUMPTION, "/v2/bot/message/quota/consumption"},
    };
    c->sync_failed = false;
    for (size_t i = 0; i < 2; i++) {
        char auth[CHANNEL_TOKEN_MAX + 32];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cr->token);
        char *headers[] = {auth};
        struct transfer *t = sender_transfer_start(s, LINE_GET, calls[i].path, NULL, 0, headers, 1);
        crypto_wipe(auth, sizeof auth);
        if (!t) {
            c->sync_failed = true;
            continue;
        }
        t->kind = calls[i].kind;
        t->chan = c;
        t->cls = calls[i].cls;
        c->sync_inflight++;
    }
    c->sync_due_ms = now_ms + s->cfg.quota_sync_s * 1000;
out:
    channels_creds_wipe(cr);
    free(cr);
}

void sender_quota_sync_done(struct sender *s, struct transfer *t, long status)
{
    struct chan *c = t->chan;
    c->sync_inflight--;
    json_t *root = status == 200 && t->body ? json_loadb(t->body, t->body_len, 0, NULL) : NULL;
    int64_t now = clock_wall_ms() / 1000;
    char errstr[256];
    bool ok = false;
    if (root && t->kind == TRANSFER_QUOTA) {
        const char *type = json_string_value(json_object_get(root, "type"));
        json_t *value = json_object_get(root, "value");
        if (type && strcmp(type, "none") == 0) {
            c->line_limit = QUOTA_NONE;
            ok = true;
        } else if (type && strcmp(type, "limited") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 0) {
            c->line_limit = json_integer_value(value);
            ok = true;
        }
        if (ok && c->quota_ready) {
            struct quota_limits lim = c->quota.limits;
            lim.line = c->line_limit;
            if (quota_set_limits(&c->quota, &lim, errstr, sizeof errstr) != 0)
                ok = false;
        }
    } else if (root && t->kind == TRANSFER_CONSUMPTION) {
        json_t *total = json_object_get(root, "totalUsage");
        if (json_is_integer(total) && json_integer_value(total) >= 0 && c->quota_ready) {
            ok = true;
            if (quota_sync_usage(&c->quota, json_integer_value(total), now) == QUOTA_WARN) {
                char used[24], limit[24];
                snprintf(used, sizeof used, "%lld", c->quota.used);
                snprintf(limit, sizeof limit, "%lld", quota_effective_limit(&c->quota));
                log_warn("monthly quota usage crossed the warning threshold (LINE's count)",
                         "channel", c->id, "used", used, "limit", limit);
                metrics_add(s->m_quota_warn, 1, c->id);
            }
        }
    }
    json_decref(root);
    if (!ok) {
        char st[24];
        snprintf(st, sizeof st, "%ld", status);
        log_warn("LINE quota sync failed; the contract quota applies meanwhile", "channel", c->id,
                 "endpoint", t->kind == TRANSFER_QUOTA ? "quota" : "quota_consumption",
                 "http_status", st);
        c->sync_failed = true;
    }
    if (c->sync_inflight == 0 && c->sync_failed)
        c->sync_due_ms = clock_wall_ms() + SENDER_QUOTA_RETRY_MS;
}
/* --- quota view ----------------------------------------------------------------- */

int sender_quota_get(struct sender *s, const char *channel_id, struct sender_quota_view *out)
{
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return -2;
    int rc = -1;
    if (channels_lookup(s->channels, channel_id, cr) != 0 || cr->deleted)
        goto out;
    /* The usage read is the loader's: wait for it without holding mu. */
    struct timespec give_up = clock_mono_deadline(SENDER_QUOTA_VIEW_WAIT_MS);
    pthread_mutex_lock(&s->mu);
    struct chan *c = sender_chan_get(s, channel_id);
    int64_t now_ms = clock_wall_ms();
    int ready = c ? sender_quota_ensure(s, c, cr, now_ms) : -1;
    while (ready == 1) {
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->loads_mu);
        struct quota_load *l = load_find(s, cr->tenant_id, channel_id);
        int waited = 0;
        if (l && (l->state == QUOTA_LOAD_WANTED || l->state == QUOTA_LOAD_RUNNING))
            waited = pthread_cond_timedwait(&s->loads_done, &s->loads_mu, &give_up);
        pthread_mutex_unlock(&s->loads_mu);
        pthread_mutex_lock(&s->mu);
        c = sender_chan_get(s, channel_id);
        now_ms = clock_wall_ms();
        ready = c ? sender_quota_ensure(s, c, cr, now_ms) : -1;
        if (waited != 0 && ready == 1)
            ready = -1; /* timed out */
    }
    if (ready != 0) {
        rc = -2;
    } else {
        /* Reading turns an ended month over, as a send would. */
        quota_reserve(&c->quota, 0, false, now_ms / 1000, NULL, NULL);
        memset(out, 0, sizeof *out);
        snprintf(out->timezone, sizeof out->timezone, "%s", c->timezone);
        out->month_start = c->quota.month_start;
        out->month_end = c->quota.month_end;
        out->used = c->quota.used;
        out->limit = quota_effective_limit(&c->quota);
        out->contract = c->quota.limits.contract;
        out->line = c->quota.limits.line;
        out->warn_percent = c->quota.limits.warn_percent ? c->quota.limits.warn_percent
                                                         : QUOTA_WARN_PERCENT_DEFAULT;
        out->exhausted = c->quota.line_exhausted;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
out:
    channels_creds_wipe(cr);
    free(cr);
    return rc;
}
