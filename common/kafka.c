/* Kafka for every service, hiding librdkafka behind kafka.h. The producer is
 * idempotent with acks=all so that "acknowledged" means durable on the
 * broker; the consumer stores an offset only after the handler says its work
 * committed, so a crash replays rather than loses. Topics are never
 * auto-created: they come from the manifest through kafka_topics_apply. */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka_security.h"
#include "log.h"
#include "worker.h"

/* A message that is not acknowledged within this time fails for good; the
 * caller decides what to do with it (ingest spools it). */
#define KAFKA_MESSAGE_TIMEOUT_MS "30000"
/* How long the producer gathers messages into one request. Every ack waits
 * this long, but 1 ms cost the broker a third more CPU and gave ingest
 * a worse p99 at 5,000 req/s on the 2-core box (docs/benchmarks.md); a
 * -DKAFKA_LINGER_MS='"1"' build repeats the experiment. */
#ifndef KAFKA_LINGER_MS
#define KAFKA_LINGER_MS "5"
#endif
/* Topics come from the manifest before any client starts, so a topic absent
 * from metadata this long is missing, not still propagating. */
#define KAFKA_TOPIC_PROPAGATION_MS "5000"
#define KAFKA_POLL_INTERVAL_MS 100
#define KAFKA_FREE_FLUSH_MS 5000
#define KAFKA_SEEK_TIMEOUT_MS 5000
#define KAFKA_RETRY_BACKOFF_MIN_MS 100
#define KAFKA_RETRY_BACKOFF_MAX_MS 1000
/* A number from kafka_limits.h as the text librdkafka's config takes. */
#define KAFKA_TEXT_(n) #n
#define KAFKA_TEXT(n) KAFKA_TEXT_(n)

/* The producer is a small pool of librdkafka instances, each with its own
 * connection to the broker and its own poll thread. librdkafka sends one
 * ProduceRequest per partition, an idempotent producer keeps at most 5 in
 * flight per connection, and the broker handles one request per connection
 * at a time: with line.webhook's 48 partitions at 5,000 records/s that is
 * some 2,600 requests/s through one connection, whose queue then grows
 * into tens of milliseconds at the least hiccup (docs/benchmarks.md). A
 * record goes to instance crc32(key) % n, the hash librdkafka's default
 * partitioner uses, so one key always takes one instance (its order is
 * kept), and with a partition count that n divides, each partition is fed
 * by one instance only. Keyless records take instance 0. */

struct kafka_producer_conn {
    rd_kafka_t *rk;
    struct worker *poller; /* serves delivery reports (common/worker.h) */
};

struct kafka_producer {
    int n;
    struct kafka_producer_conn conns[KAFKA_PRODUCER_CONNECTIONS_MAX];
};

/* A message's opaque is one of the two structs below; the delivery report
 * tells them apart by this first member. */
enum kafka_opaque_kind {
    KAFKA_OPAQUE_ACK = 1,
    KAFKA_OPAQUE_NOTIFY,
};

/* Shared between the caller and the delivery report, hence refcounted. */
struct kafka_ack {
    enum kafka_opaque_kind kind;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int refs;
    int state;         /* 1 pending, 0 acknowledged, KAFKA_FAILED_* */
    const char *error; /* rd_kafka_err2name of a failure, static; "" otherwise */
};

/* kafka_produce_error's answer: the calling thread's last refusal. */
static _Thread_local const char *kafka_produce_refusal = "";

/* kafka_produce_notify's: owned by the delivery report, which frees it. */
struct kafka_notify {
    enum kafka_opaque_kind kind;
    kafka_delivered_fn fn;
    void *arg;
};

struct kafka_consumer {
    rd_kafka_t *rk;
    bool no_commit;
    bool caller_backs_off;
    bool closed;
    int backoff_ms;
};

/* --- shared plumbing ---------------------------------------------------- */

/* log.h is thread-safe (one write(2) per line), so librdkafka may call this
 * from its internal threads directly; no log.queue needed. Connection
 * failures are retried by the library forever, so they are warnings. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level lvl;
    if (level <= 3)
        lvl = LOG_ERROR;
    else if (level == 4)
        lvl = LOG_WARN;
    else if (level <= 6)
        lvl = LOG_INFO;
    else
        lvl = LOG_DEBUG;
    if (lvl == LOG_ERROR && fac && strcmp(fac, "FAIL") == 0)
        lvl = LOG_WARN;
    log_write(lvl, "librdkafka", "client", rk ? rd_kafka_name(rk) : "", "facility", fac ? fac : "",
              "detail", buf ? buf : "", (const char *)0);
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char detail[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, detail, sizeof detail);
        log_error("kafka fatal error: client must be recreated", "client", rd_kafka_name(rk),
                  "error", rd_kafka_err2name(orig), "detail", detail);
        return;
    }
    /* The log callback already wrote this connection failure (facility FAIL). */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        return;
    /* Broker unreachable: transient, the library keeps reconnecting. */
    bool transient =
        err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__RESOLVE;
    log_write(transient ? LOG_WARN : LOG_ERROR, "kafka error", "client", rd_kafka_name(rk), "error",
              rd_kafka_err2name((rd_kafka_resp_err_t)err), "detail", reason, (const char *)0);
}

static int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                          size_t errcap)
{
    char detail[256];
    if (rd_kafka_conf_set(conf, name, value, detail, sizeof detail) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errcap, "kafka config %s=%s: %s", name, value, detail);
        return -1;
    }
    return 0;
}

/* kafka_conf_set for a secret: the value never reaches errstr. */
static int kafka_conf_set_secret(rd_kafka_conf_t *conf, const char *name, const char *value,
                                 char *errstr, size_t errcap)
{
    char detail[256];
    if (rd_kafka_conf_set(conf, name, value, detail, sizeof detail) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errcap, "kafka config %s: refused", name);
        return -1;
    }
    return 0;
}

/* TLS and SASL as kafka_security_set made them (common/kafka_security.h):
 * the same for every client, so that no path reaches the brokers in
 * plaintext when the deployment says otherwise. */
static int kafka_conf_security(rd_kafka_conf_t *conf, const struct kafka_security *s, char *errstr,
                               size_t errcap)
{
    const char *protocol = kafka_security_protocol_name(s->protocol);
    if (!protocol || kafka_conf_set(conf, "security.protocol", protocol, errstr, errcap) < 0)
        return -1;
    if (kafka_security_uses_sasl(s)) {
        const char *mechanism = kafka_security_mechanism_name(s->mechanism);
        if (!mechanism || kafka_conf_set(conf, "sasl.mechanisms", mechanism, errstr, errcap) < 0 ||
            kafka_conf_set(conf, "sasl.username", s->username ? s->username : "", errstr, errcap) <
                0 ||
            kafka_conf_set_secret(conf, "sasl.password", s->password ? s->password : "", errstr,
                                  errcap) < 0)
            return -1;
    }
    if (kafka_security_uses_tls(s)) {
        const struct {
            const char *name;
            const char *value;
            bool secret;
        } files[] = {
            {"ssl.ca.location", s->ca_location, false},
            {"ssl.certificate.location", s->certificate_location, false},
            {"ssl.key.location", s->key_location, false},
            {"ssl.key.password", s->key_password, true},
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            if (!files[i].value || !*files[i].value)
                continue;
            int rc =
                files[i].secret
                    ? kafka_conf_set_secret(conf, files[i].name, files[i].value, errstr, errcap)
                    : kafka_conf_set(conf, files[i].name, files[i].value, errstr, errcap);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

/* The settings every client shares. */
static rd_kafka_conf_t *kafka_conf_base(const char *brokers, const char *client_id, char *errstr,
                                        size_t errcap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errcap) < 0 ||
        kafka_conf_set(conf, "client.id", client_id, errstr, errcap) < 0 ||
        kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errcap) < 0 ||
        kafka_conf_set(conf, "topic.metadata.propagation.max.ms", KAFKA_TOPIC_PROPAGATION_MS,
                       errstr, errcap) < 0 ||
        kafka_conf_security(conf, kafka_security_get(), errstr, errcap) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    return conf;
}

/* Whether err means that this very message can never be stored, so that
 * sending it again would fail the same way for ever: it is too large for
 * the producer or the topic, malformed, or the topic refuses this client.
 * Everything else (timeouts, transport, leader changes, a topic not there
 * yet, a full queue) may pass later. Authorization is here because the
 * broker answers it per topic and a relay must not stop every other
 * topic's rows behind one that lacks an ACL; the dead letters keep the rows. */
static bool kafka_error_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        return true;
    default:
        return false;
    }
}

/* The verdict a failed message's caller gets for err. */
static int kafka_failure(rd_kafka_resp_err_t err)
{
    return kafka_error_permanent(err) ? KAFKA_FAILED_PERMANENT : KAFKA_FAILED_RETRIABLE;
}

const char *kafka_produce_error(void)
{
    return kafka_produce_refusal;
}

int kafka_conf_describe(const char *property, char *out, size_t cap, char *errstr, size_t errcap)
{
    rd_kafka_conf_t *conf = kafka_conf_base("127.0.0.1:1", "kizuna-describe", errstr, errcap);
    if (!conf)
        return -1;
    size_t size = cap;
    rd_kafka_conf_res_t res = rd_kafka_conf_get(conf, property, out, &size);
    rd_kafka_conf_destroy(conf);
    if (res != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errcap, "kafka config %s: %s", property,
                 res == RD_KAFKA_CONF_UNKNOWN ? "unknown property" : "does not fit");
        return -1;
    }
    return 0;
}

/* --- acks ----------------------------------------------------------------- */

static struct kafka_ack *kafka_ack_new(void)
{
    struct kafka_ack *ack = calloc(1, sizeof *ack);
    if (!ack)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ack->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ack->mu, NULL);
    ack->kind = KAFKA_OPAQUE_ACK;
    ack->refs = 2; /* the caller and the delivery report */
    ack->state = 1;
    ack->error = "";
    return ack;
}

static void kafka_ack_unref(struct kafka_ack *ack)
{
    pthread_mutex_lock(&ack->mu);
    int refs = --ack->refs;
    pthread_mutex_unlock(&ack->mu);
    if (refs > 0)
        return;
    pthread_cond_destroy(&ack->cond);
    pthread_mutex_destroy(&ack->mu);
    free(ack);
}

static void kafka_ack_complete(struct kafka_ack *ack, rd_kafka_resp_err_t err)
{
    pthread_mutex_lock(&ack->mu);
    ack->state = err ? kafka_failure(err) : 0;
    ack->error = err ? rd_kafka_err2name(err) : "";
    pthread_cond_broadcast(&ack->cond);
    pthread_mutex_unlock(&ack->mu);
    kafka_ack_unref(ack);
}

int kafka_ack_wait(struct kafka_ack *ack, int timeout_ms)
{
    struct timespec deadline = clock_mono_deadline(timeout_ms);
    pthread_mutex_lock(&ack->mu);
    while (ack->state == 1) {
        if (pthread_cond_timedwait(&ack->cond, &ack->mu, &deadline) != 0)
            break;
    }
    int state = ack->state;
    pthread_mutex_unlock(&ack->mu);
    return state;
}

const char *kafka_ack_error(struct kafka_ack *ack)
{
    pthread_mutex_lock(&ack->mu);
    const char *error = ack->error;
    pthread_mutex_unlock(&ack->mu);
    return error;
}

void kafka_ack_release(struct kafka_ack **ack)
{
    if (!ack || !*ack)
        return;
    kafka_ack_unref(*ack);
    *ack = NULL;
}

/* --- producer ------------------------------------------------------------- */

/* Runs on the producer's poll thread (or inside flush). The failure is logged
 * here, where topic, partition and error are all known. */
static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)opaque;
    if (m->err) {
        char partition[16];
        snprintf(partition, sizeof partition, "%d", (int)m->partition);
        log_warn("kafka delivery failed", "client", rd_kafka_name(rk), "topic",
                 rd_kafka_topic_name(m->rkt), "partition", partition, "error",
                 rd_kafka_err2name(m->err), "detail", rd_kafka_err2str(m->err));
    }
    if (!m->_private)
        return;
    if (*(const enum kafka_opaque_kind *)m->_private == KAFKA_OPAQUE_NOTIFY) {
        struct kafka_notify *n = m->_private;
        n->fn(n->arg, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
        free(n);
        return;
    }
    kafka_ack_complete(m->_private, m->err);
}

/* rd_kafka_poll blocks up to its interval, so a stop is seen within that. */
static void kafka_producer_poller(struct worker *w, void *arg)
{
    struct kafka_producer_conn *c = arg;
    while (!worker_stopping(w))
        rd_kafka_poll(c->rk, KAFKA_POLL_INTERVAL_MS);
}

static rd_kafka_t *kafka_producer_instance(const char *brokers, const char *client_id, char *errstr,
                                           size_t errcap)
{
    rd_kafka_conf_t *conf = kafka_conf_base(brokers, client_id, errstr, errcap);
    if (!conf)
        return NULL;
    if (kafka_conf_set(conf, "enable.idempotence", "true", errstr, errcap) < 0 ||
        kafka_conf_set(conf, "acks", "all", errstr, errcap) < 0 ||
        kafka_conf_set(conf, "linger.ms", KAFKA_LINGER_MS, errstr, errcap) < 0 ||
        kafka_conf_set(conf, "message.timeout.ms", KAFKA_MESSAGE_TIMEOUT_MS, errstr, errcap) < 0 ||
        kafka_conf_set(conf, "message.max.bytes", KAFKA_TEXT(KAFKA_PRODUCER_MESSAGE_MAX_BYTES),
                       errstr, errcap) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errcap);
    if (!rk)
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
    return rk;
}

struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, char *errstr,
                                          size_t errcap)
{
    return kafka_producer_new_pool(brokers, client_id, 1, errstr, errcap);
}

struct kafka_producer *kafka_producer_new_pool(const char *brokers, const char *client_id, int n,
                                               char *errstr, size_t errcap)
{
    if (n < 1 || n > KAFKA_PRODUCER_CONNECTIONS_MAX) {
        snprintf(errstr, errcap, "producer connections: want 1 to %d, got %d",
                 KAFKA_PRODUCER_CONNECTIONS_MAX, n);
        return NULL;
    }
    struct kafka_producer *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        struct kafka_producer_conn *c = &p->conns[i];
        c->rk = kafka_producer_instance(brokers, client_id, errstr, errcap);
        if (!c->rk)
            goto fail;
        p->n = i + 1;
        char name[32];
        snprintf(name, sizeof name, "kafka-produce-%d", i);
        c->poller = worker_start(name, kafka_producer_poller, c, errstr, errcap);
        if (!c->poller)
            goto fail;
    }
    return p;

fail:
    for (int i = 0; i < p->n; i++) {
        struct kafka_producer_conn *c = &p->conns[i];
        worker_stop(&c->poller, KAFKA_POLL_INTERVAL_MS);
        rd_kafka_destroy(c->rk);
    }
    free(p);
    return NULL;
}

/* One line for a message librdkafka would not queue, with its size (never
 * its bytes). */
static void kafka_refusal_log(rd_kafka_t *rk, const char *topic, rd_kafka_resp_err_t err,
                              size_t bytes)
{
    char size[24];
    snprintf(size, sizeof size, "%zu", bytes);
    log_warn("kafka produce refused", "client", rd_kafka_name(rk), "topic", topic, "error",
             rd_kafka_err2name(err), "detail", rd_kafka_err2str(err), "bytes", size, "permanent",
             kafka_error_permanent(err) ? "true" : "false");
}

/* The instance for key: see struct kafka_producer. */
static rd_kafka_t *kafka_producer_pick(struct kafka_producer *p, const void *key, size_t keylen)
{
    if (p->n == 1 || !key || keylen == 0)
        return p->conns[0].rk;
    return p->conns[rd_kafka_msg_partitioner_consistent(NULL, key, keylen, p->n, NULL, NULL)].rk;
}

int kafka_produce(struct kafka_producer *p, const char *topic, const void *key, size_t keylen,
                  const void *value, size_t len, struct kafka_ack **ack)
{
    struct kafka_ack *a = NULL;
    if (ack) {
        *ack = NULL;
        a = kafka_ack_new();
        if (!a)
            return -1;
    }
    rd_kafka_t *rk = kafka_producer_pick(p, key, keylen);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(a), RD_KAFKA_V_END);
    kafka_produce_refusal = err ? rd_kafka_err2name(err) : "";
    if (err) {
        kafka_refusal_log(rk, topic, err, keylen + len);
        if (a) {
            /* No delivery report will come: drop both references. */
            kafka_ack_unref(a);
            kafka_ack_unref(a);
        }
        return kafka_failure(err);
    }
    if (ack)
        *ack = a;
    return 0;
}

int kafka_produce_notify(struct kafka_producer *p, const char *topic, const void *key,
                         size_t keylen, const void *value, size_t len, kafka_delivered_fn fn,
                         void *arg)
{
    if (!fn)
        return -1;
    struct kafka_notify *n = malloc(sizeof *n);
    if (!n)
        return -1;
    *n = (struct kafka_notify){.kind = KAFKA_OPAQUE_NOTIFY, .fn = fn, .arg = arg};
    rd_kafka_t *rk = kafka_producer_pick(p, key, keylen);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(n), RD_KAFKA_V_END);
    kafka_produce_refusal = err ? rd_kafka_err2name(err) : "";
    if (err) {
        kafka_refusal_log(rk, topic, err, keylen + len);
        free(n); /* no delivery report will come */
        return kafka_failure(err);
    }
    return 0;
}

/* Flushes every instance within one deadline. */
static int kafka_producer_flush_all(struct kafka_producer *p, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int rc = 0;
    for (int i = 0; i < p->n; i++) {
        int64_t left = deadline - clock_mono_ms();
        if (rd_kafka_flush(p->conns[i].rk, left > 0 ? (int)left : 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = -1;
    }
    return rc;
}

int kafka_producer_flush(struct kafka_producer *p, int timeout_ms)
{
    return kafka_producer_flush_all(p, timeout_ms);
}

bool kafka_producer_ready(struct kafka_producer *p, int timeout_ms)
{
    char detail[256];
    for (int i = 0; i < p->n; i++)
        if (rd_kafka_fatal_error(p->conns[i].rk, detail, sizeof detail))
            return false;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->conns[0].rk, 0, NULL, &md, timeout_ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void kafka_producer_free(struct kafka_producer **pp)
{
    if (!pp || !*pp)
        return;
    struct kafka_producer *p = *pp;
    if (kafka_producer_flush_all(p, KAFKA_FREE_FLUSH_MS) != 0) {
        int left = 0;
        for (int i = 0; i < p->n; i++)
            left += rd_kafka_outq_len(p->conns[i].rk);
        char count[16];
        snprintf(count, sizeof count, "%d", left);
        log_error("kafka producer closing with undelivered messages", "client",
                  rd_kafka_name(p->conns[0].rk), "messages", count);
        /* Fail what is left, so every ack is completed and freed. */
        for (int i = 0; i < p->n; i++) {
            rd_kafka_purge(p->conns[i].rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(p->conns[i].rk, 1000);
        }
    }
    for (int i = 0; i < p->n; i++) {
        struct kafka_producer_conn *c = &p->conns[i];
        worker_stop(&c->poller, KAFKA_POLL_INTERVAL_MS);
        rd_kafka_destroy(c->rk);
    }
    free(p);
    *pp = NULL;
}

/* --- consumer ------------------------------------------------------------- */

struct kafka_consumer *kafka_consumer_new(const struct kafka_consumer_options *opts, char *errstr,
                                          size_t errcap)
{
    struct kafka_consumer *c = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_t *rk = NULL;

    if (!opts || !opts->brokers || !opts->group || !opts->topics || opts->ntopics == 0) {
        snprintf(errstr, errcap, "kafka consumer needs brokers, a group and topics");
        return NULL;
    }
    rd_kafka_conf_t *conf = kafka_conf_base(opts->brokers, opts->group, errstr, errcap);
    if (!conf)
        return NULL;
    /* Offsets are stored by kafka_consumer_poll after the handler returns, and
     * auto-commit only ships what was stored. */
    if (kafka_conf_set(conf, "group.id", opts->group, errstr, errcap) < 0 ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errcap) < 0 ||
        kafka_conf_set(conf, "enable.auto.commit", opts->no_commit ? "false" : "true", errstr,
                       errcap) < 0 ||
        kafka_conf_set(conf, "auto.offset.reset", opts->from_beginning ? "earliest" : "latest",
                       errstr, errcap) < 0)
        goto fail;
    if (opts->session_timeout_ms > 0) {
        char ms[16];
        snprintf(ms, sizeof ms, "%d", opts->session_timeout_ms);
        if (kafka_conf_set(conf, "session.timeout.ms", ms, errstr, errcap) < 0)
            goto fail;
    }

    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(errstr, errcap, "out of memory");
        goto fail;
    }
    c->no_commit = opts->no_commit;
    c->caller_backs_off = opts->caller_backs_off;
    c->backoff_ms = KAFKA_RETRY_BACKOFF_MIN_MS;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errcap);
    if (!rk)
        goto fail;
    conf = NULL; /* rd_kafka_new took ownership */
    rd_kafka_poll_set_consumer(rk);

    topics = rd_kafka_topic_partition_list_new((int)opts->ntopics);
    for (size_t i = 0; i < opts->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, opts->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errcap, "kafka subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    c->rk = rk;
    return c;

fail:
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(c);
    return NULL;
}

static void kafka_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Stores offset+1 (the next to read) for the message's partition. */
static void kafka_offset_store(struct kafka_consumer *c, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
    tp->offset = m->offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, list);
    if (!err)
        err = tp->err;
    if (err) {
        /* Typically the partition was revoked meanwhile: its new owner
         * replays from the last commit, which the inboxes make harmless. */
        char partition[16], offset[24];
        snprintf(partition, sizeof partition, "%d", (int)m->partition);
        snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
        log_warn("kafka offset not stored", "topic", rd_kafka_topic_name(m->rkt), "partition",
                 partition, "offset", offset, "error", rd_kafka_err2name(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Rewinds the partition to the message so that it is delivered again.
 * Returns 0, or -1 if the consumer can no longer guarantee that. */
static int kafka_rewind(struct kafka_consumer *c, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition);
    tp->offset = m->offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, list, KAFKA_SEEK_TIMEOUT_MS);
    rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error) : tp->err;
    int rc = 0;
    /* A partition revoked meanwhile is fine: nothing past the message was
     * stored, so its next owner starts at or before it. */
    if (err && err != RD_KAFKA_RESP_ERR__STATE && err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
        char partition[16], offset[24];
        snprintf(partition, sizeof partition, "%d", (int)m->partition);
        snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
        log_error("kafka seek failed: later messages could overtake a retried one", "topic",
                  rd_kafka_topic_name(m->rkt), "partition", partition, "offset", offset, "error",
                  rd_kafka_err2name(err));
        rc = -1;
    }
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Reports an error event from the consumer and destroys it. Returns -1 for
 * a fatal error (the consumer must be recreated), else 0. */
static int kafka_message_error(struct kafka_consumer *c, rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t err = m->err;
    int rc = 0;
    if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rc = 0;
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char detail[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(c->rk, detail, sizeof detail);
        log_error("kafka consumer fatal error", "error", rd_kafka_err2name(orig), "detail", detail);
        rc = -1;
    } else {
        /* e.g. a subscribed topic that does not exist: reported, retried. */
        log_warn("kafka consumer error", "topic", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
                 "error", rd_kafka_err2name(err), "detail", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    return rc;
}

/* What a handler sees of m: borrowed pointers, valid until m is destroyed. */
static struct kafka_message kafka_message_view(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    return (struct kafka_message){
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .keylen = m->key_len,
        .value = m->payload,
        .len = m->len,
        .timestamp_ms = rd_kafka_message_timestamp(m, &tstype),
    };
}

int kafka_consumer_poll(struct kafka_consumer *c, int timeout_ms, kafka_handler handler, void *ctx)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return 0;
    if (m->err)
        return kafka_message_error(c, m);

    struct kafka_message msg = kafka_message_view(m);
    enum kafka_handled handled = handler(ctx, &msg);
    int rc = 1;
    if (handled == KAFKA_RETRY) {
        if (kafka_rewind(c, m) < 0)
            rc = -1;
        int backoff = c->backoff_ms < timeout_ms ? c->backoff_ms : timeout_ms;
        if (c->caller_backs_off)
            backoff = 0;
        if (backoff > 0)
            kafka_sleep_ms(backoff);
        c->backoff_ms = c->backoff_ms * 2 > KAFKA_RETRY_BACKOFF_MAX_MS ? KAFKA_RETRY_BACKOFF_MAX_MS
                                                                       : c->backoff_ms * 2;
    } else {
        if (handled == KAFKA_SKIP && !c->caller_backs_off) {
            char partition[16], offset[24];
            snprintf(partition, sizeof partition, "%d", (int)m->partition);
            snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
            log_warn("kafka message skipped as bad input", "topic", msg.topic, "partition",
                     partition, "offset", offset);
        }
        if (!c->no_commit)
            kafka_offset_store(c, m);
        c->backoff_ms = KAFKA_RETRY_BACKOFF_MIN_MS;
    }
    rd_kafka_message_destroy(m);
    return rc;
}

int kafka_consumer_poll_batch(struct kafka_consumer *c, int timeout_ms, size_t max,
                              kafka_batch_handler handler, void *ctx)
{
    if (max == 0)
        return 0;
    rd_kafka_message_t **ms = calloc(max, sizeof *ms);
    struct kafka_message *msgs = calloc(max, sizeof *msgs);
    enum kafka_handled *results = calloc(max, sizeof *results);
    size_t n = 0;
    int rc = 0;
    if (!ms || !msgs || !results)
        goto done;
    /* Wait for the first message only; take what else has already arrived. */
    for (int wait = timeout_ms; n < max; wait = 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait);
        if (!m)
            break;
        if (m->err) {
            if (kafka_message_error(c, m) < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        ms[n] = m;
        msgs[n] = kafka_message_view(m);
        results[n] = KAFKA_RETRY;
        n++;
    }
    if (n == 0)
        goto done;
    handler(ctx, msgs, n, results);

    /* Per partition, in order: store offsets up to the first RETRY, rewind
     * there, and leave the partition's later messages to come again. */
    bool retried = false;
    for (size_t i = 0; i < n; i++) {
        bool rewound = false;
        for (size_t j = 0; j < i && !rewound; j++)
            rewound = results[j] == KAFKA_RETRY && ms[j]->rkt == ms[i]->rkt &&
                      ms[j]->partition == ms[i]->partition;
        if (rewound)
            continue;
        if (results[i] == KAFKA_RETRY) {
            if (kafka_rewind(c, ms[i]) < 0)
                rc = -1;
            retried = true;
            continue;
        }
        if (results[i] == KAFKA_SKIP && !c->caller_backs_off) {
            char partition[16], offset[24];
            snprintf(partition, sizeof partition, "%d", (int)ms[i]->partition);
            snprintf(offset, sizeof offset, "%lld", (long long)ms[i]->offset);
            log_warn("kafka message skipped as bad input", "topic", msgs[i].topic, "partition",
                     partition, "offset", offset);
        }
        if (!c->no_commit)
            kafka_offset_store(c, ms[i]);
    }
    if (retried) {
        int backoff = c->backoff_ms < timeout_ms ? c->backoff_ms : timeout_ms;
        if (c->caller_backs_off)
            backoff = 0;
        if (backoff > 0)
            kafka_sleep_ms(backoff);
        c->backoff_ms = c->backoff_ms * 2 > KAFKA_RETRY_BACKOFF_MAX_MS ? KAFKA_RETRY_BACKOFF_MAX_MS
                                                                       : c->backoff_ms * 2;
    } else {
        c->backoff_ms = KAFKA_RETRY_BACKOFF_MIN_MS;
    }
    if (rc == 0)
        rc = (int)n;
done:
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(ms[i]);
    free(ms);
    free(msgs);
    free(results);
    return rc;
}

void kafka_consumer_close(struct kafka_consumer *c)
{
    if (!c || c->closed)
        return;
    c->closed = true;
    if (!c->no_commit) {
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka final commit failed", "error", rd_kafka_err2name(err), "detail",
                     rd_kafka_err2str(err));
    }
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err)
        log_warn("kafka consumer close", "error", rd_kafka_err2name(err));
}

void kafka_consumer_free(struct kafka_consumer **cp)
{
    if (!cp || !*cp)
        return;
    kafka_consumer_close(*cp);
    rd_kafka_destroy((*cp)->rk);
    free(*cp);
    *cp = NULL;
}

/* --- topics --------------------------------------------------------------- */

/* A short-lived client for metadata and admin requests. */
static rd_kafka_t *kafka_admin_new(const char *brokers, char *errstr, size_t errcap)
{
    rd_kafka_conf_t *conf = kafka_conf_base(brokers, "kizuna-admin", errstr, errcap);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errcap);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

static const struct rd_kafka_metadata_topic *kafka_metadata_find(const struct rd_kafka_metadata *md,
                                                                 const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 &&
            md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return &md->topics[i];
    return NULL;
}

static int kafka_metadata_get(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                              const struct rd_kafka_metadata **md, char *errstr, size_t errcap)
{
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, md, timeout_ms);
    if (err) {
        snprintf(errstr, errcap, "kafka metadata from %s: %s", brokers, rd_kafka_err2str(err));
        *md = NULL;
        return -1;
    }
    return 0;
}

/* Appends one "name" to a comma-separated list in buf. */
static void kafka_list_append(char *buf, size_t cap, const char *name)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
}

int kafka_topics_apply(const char *brokers, const struct topic_spec *specs, size_t n,
                       int timeout_ms, char *errstr, size_t errcap)
{
    int created = -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_NewTopic_t **newt = NULL;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t nnew = 0;
    char failed[512] = "";

    rd_kafka_t *rk = kafka_admin_new(brokers, errstr, errcap);
    if (!rk)
        return -1;
    if (kafka_metadata_get(rk, brokers, timeout_ms, &md, errstr, errcap) < 0)
        goto done;

    newt = calloc(n ? n : 1, sizeof *newt);
    if (!newt) {
        snprintf(errstr, errcap, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct rd_kafka_metadata_topic *have = kafka_metadata_find(md, specs[i].name);
        if (have) {
            /* Never altered here, but a mismatch deserves attention. */
            if (have->partition_cnt != specs[i].partitions) {
                char want[16], got[16];
                snprintf(want, sizeof want, "%d", specs[i].partitions);
                snprintf(got, sizeof got, "%d", have->partition_cnt);
                log_warn("kafka topic partitions differ from the manifest", "topic", specs[i].name,
                         "manifest", want, "broker", got);
            }
            continue;
        }
        char detail[256], retention[24], max_bytes[24];
        /* -1 replication factor: the broker's default.replication.factor. */
        newt[nnew] =
            rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions, -1, detail, sizeof detail);
        if (!newt[nnew]) {
            snprintf(errstr, errcap, "topic %s: %s", specs[i].name, detail);
            goto done;
        }
        snprintf(retention, sizeof retention, "%lld", specs[i].retention_ms);
        snprintf(max_bytes, sizeof max_bytes, "%lld",
                 specs[i].max_message_bytes > 0 ? specs[i].max_message_bytes
                                                : (long long)KAFKA_TOPIC_MAX_MESSAGE_BYTES);
        /* max.message.bytes explicitly, whatever the broker's default: the
         * record limits agree end to end (kafka_limits.h). */
        if (rd_kafka_NewTopic_set_config(newt[nnew], "retention.ms", retention) ||
            rd_kafka_NewTopic_set_config(newt[nnew], "cleanup.policy", specs[i].cleanup) ||
            rd_kafka_NewTopic_set_config(newt[nnew], "max.message.bytes", max_bytes)) {
            rd_kafka_NewTopic_destroy(newt[nnew]);
            snprintf(errstr, errcap, "topic %s: invalid config", specs[i].name);
            goto done;
        }
        nnew++;
    }
    if (nnew == 0) {
        created = 0;
        goto done;
    }

    options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    char detail[256];
    if (rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, detail, sizeof detail) ||
        rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, detail, sizeof detail)) {
        snprintf(errstr, errcap, "kafka admin options: %s", detail);
        goto done;
    }
    queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, newt, nnew, options, queue);
    /* The request itself honours timeout_ms; the margin only covers the
     * result's trip through the queue. */
    ev = rd_kafka_queue_poll(queue, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errcap, "kafka CreateTopics on %s: no answer within %d ms", brokers,
                 timeout_ms);
        goto done;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errcap, "kafka CreateTopics on %s: %s", brokers,
                 rd_kafka_event_error_string(ev));
        goto done;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t nres = 0;
    const rd_kafka_topic_result_t **results = rd_kafka_CreateTopics_result_topics(res, &nres);
    int ok = 0;
    for (size_t i = 0; i < nres; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        const char *name = rd_kafka_topic_result_name(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_info("kafka topic created", "topic", name);
            ok++;
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            /* Created concurrently by someone else: just as good. */
        } else {
            const char *why = rd_kafka_topic_result_error_string(results[i]);
            char one[256];
            snprintf(one, sizeof one, "%s (%s)", name, why ? why : rd_kafka_err2str(err));
            kafka_list_append(failed, sizeof failed, one);
        }
    }
    if (failed[0]) {
        snprintf(errstr, errcap, "kafka could not create topics: %s", failed);
        goto done;
    }
    created = ok;

done:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (queue)
        rd_kafka_queue_destroy(queue);
    if (options)
        rd_kafka_AdminOptions_destroy(options);
    if (newt) {
        rd_kafka_NewTopic_destroy_array(newt, nnew);
        free(newt);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return created;
}

int kafka_topics_check(const char *brokers, const struct topic_spec *specs, size_t n,
                       int timeout_ms, char *errstr, size_t errcap)
{
    const struct rd_kafka_metadata *md = NULL;
    char missing[768] = "";
    int rc = -1;

    rd_kafka_t *rk = kafka_admin_new(brokers, errstr, errcap);
    if (!rk)
        return -1;
    if (kafka_metadata_get(rk, brokers, timeout_ms, &md, errstr, errcap) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const struct rd_kafka_metadata_topic *t = kafka_metadata_find(md, specs[i].name);
        if (!t) {
            kafka_list_append(missing, sizeof missing, specs[i].name);
        } else if (t->err) {
            char one[256];
            snprintf(one, sizeof one, "%s (%s)", specs[i].name, rd_kafka_err2str(t->err));
            kafka_list_append(missing, sizeof missing, one);
        }
    }
    if (missing[0]) {
        snprintf(errstr, errcap, "kafka at %s lacks topics: %s (run kizunactl topics apply)",
                 brokers, missing);
        goto done;
    }
    rc = 0;

done:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}
