/* Takes SendRequests from Kafka into the delivery log and the sender, in
 * that order: the row is committed before the offset may be stored and
 * before the sender may call LINE, so neither a crash nor a rebalance can
 * lose a request or let two replicas both send it from the topic. */
#include "intake.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "deliveries.h"
#include "log.h"
#include "metrics.h"
#include "sender.h"

void intake_init(struct intake *in)
{
    in->taken = metrics_counter("kizuna_dispatcher_requests_total",
                                "send requests read from Kafka, by what became of them",
                                "result");
    in->paused = false;
}

enum kafka_handled intake_handle(void *ctx, const struct kafka_message *msg)
{
    struct intake *in = ctx;
    /* Backpressure: past the sender's cap, the message waits in Kafka. */
    if (sender_full(in->sender)) {
        if (!in->paused)
            log_warn("sender full: intake paused until deliveries drain");
        in->paused = true;
        return KAFKA_RETRY;
    }
    if (in->paused)
        log_info("intake resumed");
    in->paused = false;

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
        return KAFKA_SKIP;
    }
    int rc = deliveries_intake(in->db, in->instance, d, msg->value, msg->len);
    if (rc < 0) {
        log_warn("delivery log unavailable; the request will be read again", "request_id",
                 d->request_id, "error", db_error_message(in->db));
        delivery_free(d);
        metrics_add(in->taken, 1, "retry");
        return KAFKA_RETRY;
    }
    if (rc == 0) {
        log_debug("send request seen before; not sent again", "request_id", d->request_id);
        delivery_free(d);
        metrics_add(in->taken, 1, "duplicate");
        return KAFKA_DONE;
    }
    metrics_add(in->taken, 1, "new");
    sender_submit(in->sender, d);
    return KAFKA_DONE;
}
