/* Takes SendRequests from Kafka into the delivery log and the sender, in
 * that order: the rows are committed before their offsets may be stored and
 * before the sender may call LINE, so neither a crash nor a rebalance can
 * lose a request or let two replicas both send it from the topic. A batch
 * of messages is one statement (the arrays of its columns, unnested by the
 * server), so one round trip and one commit make many requests durable: a
 * commit per message, then a statement per message, were each in turn the
 * dispatcher's bottleneck (docs/benchmarks.md). */
#include "intake.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "deliveries.h"
#include "deliveries_writer.h"
#include "log.h"
#include "metrics.h"
#include "sender.h"
#include "strmap.h"

/* The most request bytes in one statement (a whole batch of pushes fits). */
#define INTAKE_CHUNK_BYTES (8 * 1024 * 1024)

void intake_init(struct intake *in)
{
    in->taken = metrics_counter("kizuna_dispatcher_requests_total",
                                "send requests read from Kafka, by what became of them", "result");
    static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   1};
    in->commit = metrics_histogram("kizuna_dispatcher_intake_commit_seconds",
                                   "time to make one batch of send requests durable", NULL, buckets,
                                   sizeof buckets / sizeof buckets[0]);
    in->paused = false;
}

static void intake_resubmit(void *ctx, struct delivery *d)
{
    struct intake *in = ctx;
    log_info("resuming a pending delivery whose intake answer was lost", "request_id",
             d->request_id);
    sender_submit(in->sender, d);
}

static struct delivery *intake_decode(struct intake *in, const struct kafka_message *msg)
{
    char key[CHANNEL_ID_MAX + 1] = "";
    if (msg->key && msg->keylen > 0 && msg->keylen <= CHANNEL_ID_MAX) {
        memcpy(key, msg->key, msg->keylen);
        key[msg->keylen] = '\0';
    }
    char errstr[256] = "";
    struct delivery *d = delivery_from_bytes(msg->value, msg->len, key, errstr, sizeof errstr);
    if (!d) {
        char partition[16], offset[24];
        snprintf(partition, sizeof partition, "%d", (int)msg->partition);
        snprintf(offset, sizeof offset, "%lld", (long long)msg->offset);
        log_warn("send request unusable: no result can be produced without a request_id",
                 "partition", partition, "offset", offset, "error", errstr);
        metrics_add(in->taken, 1, "malformed");
    }
    return d;
}

/* One statement for the batch's rows. Returns DB_OK with claimed[i] set
 * (1 new, 0 seen before), or the failing status (nothing written). */
static enum db_status intake_commit(struct intake *in, const struct kafka_message *msgs,
                                    struct delivery **ds, size_t n, int *claimed)
{
    int64_t t0 = clock_mono_ns();
    const void **bytes = calloc(n, sizeof *bytes);
    size_t *lens = calloc(n, sizeof *lens);
    enum db_status st = DB_FATAL;
    if (bytes && lens) {
        for (size_t i = 0; i < n; i++) {
            bytes[i] = msgs[i].value;
            lens[i] = msgs[i].len;
        }
        st = (enum db_status)deliveries_intake_batch(in->db, in->instance, ds, bytes, lens, n,
                                                     claimed);
    }
    free(bytes);
    free(lens);
    metrics_observe(in->commit, (double)(clock_mono_ns() - t0) / 1e9);
    return st;
}

bool intake_full(struct intake *in)
{
    /* Backpressure: past the sender's cap, the messages wait in Kafka. */
    bool full =
        sender_full(in->sender) || (long)deliveries_writer_backlog(in->writer) > in->max_backlog;
    if (full && !in->paused)
        log_warn("sender full: intake paused until deliveries drain");
    else if (!full && in->paused)
        log_info("intake resumed");
    in->paused = full;
    return full;
}

/* Leaves in Kafka (KAFKA_RETRY: they come again) the requests of tenants
 * whose share of the sender is full, counting the batch's own requests
 * against it, so that one tenant's campaign cannot fill the memory whose
 * cap pauses the intake for every tenant. Only that campaign's partitions
 * are rewound. */
#define TENANT_REFUSED UINTPTR_MAX

static void intake_tenant_shares(struct intake *in, struct delivery **ds, size_t n)
{
    struct strmap *taken = strmap_new(); /* tenant -> (void *)(uintptr_t) count in batch */
    if (!taken)
        return; /* out of memory: the global cap still holds */
    for (size_t i = 0; i < n; i++) {
        if (!ds[i])
            continue;
        uintptr_t mine = (uintptr_t)strmap_get(taken, ds[i]->tenant_id);
        long room = mine == TENANT_REFUSED ? 0 : sender_tenant_room(in->sender, ds[i]->tenant_id);
        if (room != LONG_MAX && (uintptr_t)room <= mine) {
            /* Its later requests in the batch wait too, so that a channel's
             * requests still reach the sender in order. */
            metrics_add(in->taken, 1, "tenant_full");
            strmap_put(taken, ds[i]->tenant_id, (void *)TENANT_REFUSED);
            delivery_free(ds[i]);
            ds[i] = NULL; /* stays KAFKA_RETRY */
            continue;
        }
        strmap_put(taken, ds[i]->tenant_id, (void *)(mine + 1));
    }
    strmap_free(&taken, NULL);
}

void intake_handle(void *ctx, const struct kafka_message *msgs, size_t n,
                   enum kafka_handled *results)
{
    struct intake *in = ctx;
    /* Backpressure is the caller's (intake_full before it polls): a batch
     * taken is made durable, not handed back, because handing back means a
     * seek per partition, and a seek that times out ends the consumer. */

    struct delivery **ds = calloc(n, sizeof *ds);
    int *claimed = calloc(n, sizeof *claimed);
    if (!ds || !claimed)
        goto out; /* all come again */
    for (size_t i = 0; i < n; i++) {
        ds[i] = intake_decode(in, &msgs[i]);
        if (!ds[i])
            results[i] = KAFKA_SKIP;
    }
    intake_tenant_shares(in, ds, n);
    /* Statements of at most INTAKE_CHUNK_BYTES of requests (multicasts are
     * large); each is durable on its own, so a failure leaves the chunks
     * before it done and the rest to come again. */
    size_t durable = 0;
    while (durable < n) {
        size_t end = durable, bytes = 0;
        while (end < n && (end == durable || bytes + msgs[end].len <= INTAKE_CHUNK_BYTES))
            bytes += msgs[end++].len;
        if (intake_commit(in, msgs + durable, ds + durable, end - durable, claimed + durable) !=
            DB_OK) {
            log_warn("delivery log unavailable; the requests will be read again", "error",
                     db_error_message(in->db));
            break;
        }
        durable = end;
    }
    for (size_t i = durable; i < n; i++)
        if (ds[i])
            metrics_add(in->taken, 1, "retry");
    for (size_t i = 0; i < durable; i++) {
        struct delivery *d = ds[i];
        if (!d)
            continue;
        if (claimed[i]) {
            metrics_add(in->taken, 1, "new");
            ds[i] = NULL;
            sender_submit(in->sender, d); /* takes ownership */
            results[i] = KAFKA_DONE;
            continue;
        }
        /* Seen before. If an earlier commit's answer was lost, its row is
         * pending here but held by nobody: pick it up. */
        if (!sender_holds(in->sender, d->request_id) &&
            deliveries_reload(in->db, in->instance, d->request_id, intake_resubmit, in) < 0) {
            metrics_add(in->taken, 1, "retry");
            continue; /* KAFKA_RETRY */
        }
        log_debug("send request seen before; not sent again", "request_id", d->request_id);
        metrics_add(in->taken, 1, "duplicate");
        results[i] = KAFKA_DONE;
    }
out:
    for (size_t i = 0; ds && i < n; i++)
        delivery_free(ds[i]);
    free(ds);
    free(claimed);
}
