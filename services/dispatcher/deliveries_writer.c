/* The delivery log's writer thread: outcomes queued by the sender are
 * applied in order, many per transaction, on the writer's own connection,
 * with the outbox row and the quota usage in the same transaction. */
#include "deliveries_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "deliveries.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgarray.h"
#include "worker.h"

#define WRITER_BATCH_MAX 1000
#define WRITER_RETRY_MS 500
#define WRITER_IDLE_MS 200 /* an idle writer looks at its queue this often */
#define WRITER_LINGER_MS 5 /* gather outcomes this long before a transaction */

/* --- the writer --------------------------------------------------------------- */

struct deliveries_writer {
    struct db *db;
    char instance[DELIVERY_INSTANCE_MAX + 1];
    char topic[128];
    void (*notify)(void *ctx);
    void *notify_ctx;
    struct worker *worker;
    pthread_mutex_t mu; /* the queue */
    struct delivery_record *head, *tail;
    size_t backlog;
    struct metric *written;
    struct metric *lost;
    struct metric *fenced;
};

/* A retry's update; *mine says whether the row was still ours (owner and
 * epoch). */
static enum db_status writer_retry(struct deliveries_writer *w, const struct delivery_record *r,
                                   bool *mine)
{
    char attempts[16], http[16], first[24], next[24], last[16], epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)r->epoch);
    snprintf(attempts, sizeof attempts, "%d", r->attempts);
    snprintf(http, sizeof http, "%d", r->http_status);
    snprintf(first, sizeof first, "%lld", (long long)r->first_attempt_ms);
    snprintf(next, sizeof next, "%lld", (long long)r->next_attempt_ms);
    snprintf(last, sizeof last, "%d", r->last_attempt_ms);
    const char *values[] = {r->request_id,
                            attempts,
                            http,
                            r->line_request_id ? r->line_request_id : "",
                            r->error_message ? r->error_message : "",
                            first,
                            next,
                            last,
                            w->instance,
                            epoch};
    /* The pending row locked first: a takeover changing its owner waits,
     * or has already moved it (and its epoch) and nothing is written. */
    struct db_result *res = NULL;
    enum db_status st =
        db_exec(w->db,
                "WITH mine AS (SELECT request_id FROM pending WHERE request_id = $1 "
                "  AND owner = $9 AND epoch = $10::bigint FOR UPDATE) "
                "UPDATE deliveries d SET status = 'retrying', attempts = $2::int, "
                "http_status = $3::int, line_request_id = $4, error_message = $5, "
                "first_attempt_at = COALESCE(CASE WHEN $6::bigint > 0 THEN "
                "to_timestamp($6::bigint / 1000.0) END, first_attempt_at), "
                "next_attempt_at = to_timestamp($7::bigint / 1000.0), "
                "last_attempt_ms = $8::int "
                "FROM mine WHERE d.request_id = mine.request_id",
                10, values, &res);
    *mine = st == DB_OK && db_result_affected(res) > 0;
    db_result_free(&res);
    return st;
}

/* Quota usage to add, summed per tenant, channel and month over one batch,
 * so a batch of pushes costs one upsert per channel instead of one per
 * push. The tenant is the one whose request it was: the sender refuses a
 * request whose tenant does not own the channel. */
struct usage_sum {
    const char *tenant_id;
    const char *channel_id;
    int64_t month;
    long long cost;
};

static void usage_add(struct usage_sum *sums, int *n, const struct delivery_record *r)
{
    for (int i = 0; i < *n; i++)
        if (sums[i].month == r->quota_month && strcmp(sums[i].channel_id, r->channel_id) == 0 &&
            strcmp(sums[i].tenant_id, r->tenant_id) == 0) {
            sums[i].cost += r->quota_cost;
            return;
        }
    sums[*n].tenant_id = r->tenant_id;
    sums[*n].channel_id = r->channel_id;
    sums[*n].month = r->quota_month;
    sums[*n].cost = r->quota_cost;
    (*n)++;
}

static enum db_status usage_write(struct deliveries_writer *w, const struct usage_sum *u)
{
    char month[24], cost[24];
    snprintf(month, sizeof month, "%lld", (long long)u->month);
    snprintf(cost, sizeof cost, "%lld", u->cost);
    const char *qv[] = {u->tenant_id, u->channel_id, month, cost};
    return db_exec(w->db,
                   "INSERT INTO quota_usage (tenant_id, channel_id, month_start, used) "
                   "VALUES ($1, $2, to_timestamp($3::bigint), $4::bigint) "
                   "ON CONFLICT (tenant_id, channel_id, month_start) DO UPDATE "
                   "SET used = quota_usage.used + EXCLUDED.used, updated_at = now()",
                   4, qv, NULL);
}

/* Every final record of the batch in one statement: the rows are updated
 * (only those still pending and ours) and, for exactly the rows updated,
 * the DeliveryResults go into the outbox in the batch's order. Sets
 * done[k] to 1 for the k-th final record whose row was ours. Returns a
 * db_status. */
static enum db_status writer_finals(struct deliveries_writer *w, struct delivery_record *batch,
                                    int nfinal, int *done)
{
    enum { COLS = 14 };
    struct pgarray col[COLS], fence;
    for (int c = 0; c < COLS; c++)
        pgarray_init(&col[c], c >= 12 ? PGARRAY_BYTEA_OID : PGARRAY_TEXT_OID);
    pgarray_init(&fence, PGARRAY_TEXT_OID);
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type != DELIVERY_RECORD_FINAL)
            continue;
        pgarray_add_text(&col[0], r->request_id);
        pgarray_add_text(&col[1], delivery_status_name(r->status));
        pgarray_add_ll(&col[2], r->attempts);
        pgarray_add_ll(&col[3], r->http_status);
        pgarray_add_text(&col[4], r->line_request_id ? r->line_request_id : "");
        pgarray_add_text(&col[5], r->accepted_request_id ? r->accepted_request_id : "");
        pgarray_add_text(&col[6], r->error_message ? r->error_message : "");
        pgarray_add_text(&col[7], r->error_details_json); /* NULL stays NULL */
        pgarray_add_text(&col[8], r->fell_back ? "true" : "false");
        pgarray_add_ll(&col[9], r->first_attempt_ms);
        pgarray_add_ll(&col[10], r->finished_ms);
        pgarray_add_ll(&col[11], r->last_attempt_ms);
        pgarray_add(&col[12], r->key, r->key ? strlen(r->key) : 0);
        pgarray_add(&col[13], r->payload ? (const void *)r->payload : "", r->len);
        char token[DELIVERY_ID_MAX + 32];
        snprintf(token, sizeof token, "%s/%lld", r->request_id, (long long)r->epoch);
        pgarray_add_text(&fence, token);
    }
    enum db_status st = DB_FATAL;
    const char *values[COLS + 3];
    int lengths[COLS + 3] = {0}, binary[COLS + 3] = {0};
    for (int c = 0; c < COLS; c++) {
        values[c] = pgarray_finish(&col[c], &lengths[c]);
        binary[c] = 1;
        if (!values[c])
            goto out;
    }
    values[COLS] = w->instance;
    values[COLS + 1] = w->topic;
    values[COLS + 2] = pgarray_finish(&fence, &lengths[COLS + 2]);
    binary[COLS + 2] = 1;
    if (!values[COLS + 2])
        goto out;
    struct db_result *res = NULL;
    st = db_execv(
        w->db,
        "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "  $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], "
        "  $12::text[], $13::bytea[], $14::bytea[]) WITH ORDINALITY AS t(request_id, status, "
        "  attempts, http_status, line_request_id, accepted_request_id, error_message, "
        "  error_details, fell_back, first_ms, finished_ms, last_ms, key, payload, ord)), "
        /* Deleting the pending row is the owner check and the fence: a row
         * taken over by another replica (a new owner and epoch, even if it
         * came back to this instance since) is no longer ours and is left
         * alone; "request_id/epoch" is this delivery's token. No index of
         * deliveries covers a column set here, so the update is HOT. The
         * ids as an array, not a join with input: joined, the planner
         * hashed every pending row of this owner (the owner index) for each
         * batch; "= ANY" is one index probe per id. */
        "mine AS (DELETE FROM pending p WHERE p.request_id = ANY($1::text[]) "
        "  AND p.owner = $15 AND (p.request_id || '/' || p.epoch) = ANY($17::text[]) "
        "  RETURNING p.request_id), "
        "upd AS (UPDATE deliveries d SET status = i.status, attempts = i.attempts::int, "
        "  http_status = i.http_status::int, line_request_id = i.line_request_id, "
        "  accepted_request_id = i.accepted_request_id, error_message = i.error_message, "
        "  error_details = i.error_details::jsonb, fell_back_to_push = i.fell_back::boolean, "
        "  first_attempt_at = COALESCE(CASE WHEN i.first_ms::bigint > 0 THEN "
        "  to_timestamp(i.first_ms::bigint / 1000.0) END, d.first_attempt_at), "
        "  finished_at = to_timestamp(i.finished_ms::bigint / 1000.0), "
        "  last_attempt_ms = i.last_ms::int, next_attempt_at = NULL "
        "  FROM input i JOIN mine m ON m.request_id = i.request_id "
        "  WHERE d.request_id = i.request_id RETURNING i.ord), "
        "ob AS (INSERT INTO outbox (topic, key, payload) SELECT $16, i.key, i.payload "
        "  FROM input i JOIN upd u ON u.ord = i.ord ORDER BY i.ord RETURNING 1) "
        "SELECT ord::text FROM upd",
        COLS + 3, values, lengths, binary, false, &res);
    if (st != DB_OK)
        goto out;
    for (int i = 0; i < db_result_rows(res); i++) {
        long k = strtol(db_result_value(res, i, 0), NULL, 10) - 1;
        if (k >= 0 && k < nfinal)
            done[k] = 1;
    }
    db_result_free(&res);
out:
    for (int c = 0; c < COLS; c++)
        pgarray_free(&col[c]);
    pgarray_free(&fence);
    return st;
}

/* One transaction for the batch: the retries one by one (rare; each before
 * its request's final, which comes later in the queue), then every final in
 * one statement, then the quota usage summed per channel and month. Returns
 * DB_OK with *finals set, or the failing status (rolled back). */
static enum db_status writer_batch(struct deliveries_writer *w, struct delivery_record *batch,
                                   int *finals, int *fenced)
{
    *finals = 0;
    *fenced = 0;
    struct usage_sum sums[WRITER_BATCH_MAX];
    int nsums = 0, nfinal = 0;
    int done[WRITER_BATCH_MAX] = {0};
    enum db_status st = db_begin(w->db);
    if (st != DB_OK)
        return st;
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type == DELIVERY_RECORD_FINAL) {
            nfinal++;
            continue;
        }
        bool mine = false;
        st = writer_retry(w, r, &mine);
        if (st == DB_OK && !mine) {
            (*fenced)++;
            log_warn("retry not recorded: the delivery is no longer ours (taken over)",
                     "request_id", r->request_id, "channel", r->channel_id);
        }
        if (st != DB_OK) {
            char sqlstate[8];
            snprintf(sqlstate, sizeof sqlstate, "%s", db_error_sqlstate(w->db));
            db_rollback(w->db);
            log_warn("delivery log write failed", "request_id", r->request_id, "sqlstate",
                     sqlstate);
            return st;
        }
    }
    if (nfinal > 0) {
        st = writer_finals(w, batch, nfinal, done);
        if (st != DB_OK) {
            char sqlstate[8];
            snprintf(sqlstate, sizeof sqlstate, "%s", db_error_sqlstate(w->db));
            db_rollback(w->db);
            log_warn("delivery log write failed", "request_id",
                     batch->next ? "(a batch)" : batch->request_id, "sqlstate", sqlstate);
            return st;
        }
    }
    int k = 0;
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type != DELIVERY_RECORD_FINAL)
            continue;
        if (done[k]) {
            (*finals)++;
            if (r->quota_cost > 0)
                usage_add(sums, &nsums, r);
        } else {
            (*fenced)++;
            log_warn("delivery taken over by another replica; its result is theirs", "request_id",
                     r->request_id, "channel", r->channel_id);
        }
        k++;
    }
    for (int i = 0; i < nsums; i++) {
        st = usage_write(w, &sums[i]);
        if (st != DB_OK) {
            db_rollback(w->db);
            return st;
        }
    }
    return db_commit(w->db);
}

static bool writer_giving_up(struct deliveries_writer *w)
{
    return worker_stopping(w->worker) && worker_budget_left_ms(w->worker) == 0;
}

static void writer_drop(struct deliveries_writer *w, struct delivery_record *batch, const char *why)
{
    while (batch) {
        struct delivery_record *next = batch->next;
        /* The row stays pending: sent again after a restart (409 if it got through). */
        log_error("delivery outcome not recorded", "request_id", batch->request_id, "reason", why);
        metrics_add(w->lost, 1);
        delivery_record_free(batch);
        batch = next;
    }
}

static void writer_process(struct deliveries_writer *w, struct delivery_record *batch)
{
    for (;;) {
        int finals = 0, fenced = 0;
        enum db_status st = writer_batch(w, batch, &finals, &fenced);
        if (st == DB_OK) {
            if (fenced > 0)
                metrics_add(w->fenced, (double)fenced);
            long n = 0;
            for (struct delivery_record *r = batch; r; r = r->next)
                n++;
            metrics_add(w->written, (double)n);
            if (finals > 0 && w->notify)
                w->notify(w->notify_ctx);
            break;
        }
        if (st == DB_FATAL && batch->next) {
            /* One bad record must not hold the others: one by one. */
            while (batch) {
                struct delivery_record *next = batch->next;
                batch->next = NULL;
                writer_process(w, batch);
                batch = next;
            }
            return;
        }
        if (st == DB_FATAL) {
            writer_drop(w, batch, "database refused it");
            return;
        }
        if (writer_giving_up(w)) {
            writer_drop(w, batch, "database unreachable at shutdown");
            return;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = WRITER_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    while (batch) {
        struct delivery_record *next = batch->next;
        delivery_record_free(batch);
        batch = next;
    }
}

/* The worker's body: write what is queued, sleep until a submit wakes it,
 * and once stopping, write what is left (see writer_giving_up) and end. */
static void writer_main(struct worker *wk, void *ctx)
{
    struct deliveries_writer *w = ctx;
    for (;;) {
        bool stopping = worker_stopping(wk);
        pthread_mutex_lock(&w->mu);
        if (!w->head) {
            pthread_mutex_unlock(&w->mu);
            if (stopping)
                break;
            worker_wait(wk, WRITER_IDLE_MS);
            continue;
        }
        if (w->backlog < WRITER_BATCH_MAX && !stopping) {
            /* A short linger gathers more outcomes per transaction: at a
             * steady 2,000/s, committing each few records cost PostgreSQL
             * (and the relay after every commit) more than the records. */
            pthread_mutex_unlock(&w->mu);
            struct timespec linger = {.tv_sec = 0, .tv_nsec = WRITER_LINGER_MS * 1000000L};
            nanosleep(&linger, NULL);
            pthread_mutex_lock(&w->mu);
        }
        struct delivery_record *batch = w->head, *last = w->head;
        size_t n = 1;
        while (last->next && n < WRITER_BATCH_MAX) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        w->backlog -= n;
        pthread_mutex_unlock(&w->mu);
        writer_process(w, batch);
    }
}

struct deliveries_writer *deliveries_writer_start(const char *dsn, const char *instance,
                                                  const char *results_topic,
                                                  void (*notify)(void *ctx), void *notify_ctx,
                                                  char *errstr, size_t errcap)
{
    struct deliveries_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    w->db = db_connect(dsn, errstr, errcap);
    if (!w->db) {
        free(w);
        return NULL;
    }
    snprintf(w->instance, sizeof w->instance, "%s", instance);
    snprintf(w->topic, sizeof w->topic, "%s", results_topic);
    w->notify = notify;
    w->notify_ctx = notify_ctx;
    w->written = metrics_counter("kizuna_dispatcher_log_writes_total",
                                 "delivery outcomes written to the delivery log", NULL);
    w->lost = metrics_counter("kizuna_dispatcher_log_write_failures_total",
                              "outcomes not written (the row stays pending and is resent "
                              "with its retry key after a restart)",
                              NULL);
    w->fenced = metrics_counter("kizuna_dispatcher_fenced_writes_total",
                                "outcomes not written because the row is no longer this "
                                "replica's (owner or epoch changed by a takeover)",
                                NULL);
    pthread_mutex_init(&w->mu, NULL);
    w->worker = worker_start("delivery-writer", writer_main, w, errstr, errcap);
    if (!w->worker) {
        pthread_mutex_destroy(&w->mu);
        db_free(&w->db);
        free(w);
        return NULL;
    }
    return w;
}

void deliveries_writer_submit(struct deliveries_writer *w, struct delivery_record *r)
{
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    /* The writer sleeps only after finding the queue empty (under w->mu),
     * and a wake sent before it sleeps is kept: so only the record that
     * makes the queue non-empty needs to wake it, not every record. */
    bool was_empty = w->head == NULL;
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->backlog++;
    pthread_mutex_unlock(&w->mu);
    if (was_empty)
        worker_wake(w->worker);
}

size_t deliveries_writer_backlog(struct deliveries_writer *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->backlog;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void deliveries_writer_stop(struct deliveries_writer **wp, long budget_ms)
{
    if (!wp || !*wp)
        return;
    struct deliveries_writer *w = *wp;
    worker_stop(&w->worker, budget_ms);
    pthread_mutex_destroy(&w->mu);
    db_free(&w->db);
    free(w);
    *wp = NULL;
}
