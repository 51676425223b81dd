/* Issue 3's "never lose an accepted event", against the real local stack:
 * with the broker stopped, signed webhooks still get 200 within the ack
 * budget because their events are committed to ingest.spool; with
 * PostgreSQL stopped as well the answer is 503 (LINE redelivers); once both
 * are back, the relay republishes every spooled event to line.webhook
 * exactly as it was sent and the spool empties.
 *
 * This suite stops and starts the shared infra (deploy/local/stack.sh
 * kafka-stop / pg-stop / pg-start / kafka-start), so it keeps the outage
 * short and restores both parts whatever happens (.fini). kizuna-ingest runs
 * on its own ports (public 18190, admin 18191). */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "crypto.h"
#include "db.h"
#include "kafka.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "log.h"

#define PUBLIC_PORT 18190
#define ADMIN_PORT 18191
#define ACK_BUDGET_MS 1000
/* A 200 must come within the budget plus the spool write, well under
 * LINE's 2 s. */
#define ANSWER_LIMIT_MS 1800
#define BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"
#define NREQ 3

static pid_t ingest_pid;
static char ingest_log[256];
static char stack_log[256];
static char tenant[64];
static char channel[32];
static char secret[33];
static char admin_token[4096];

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run through `deploy/local/stack.sh with-stack`", name);
    return v;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void unique_digits(char *out, size_t cap)
{
    static int counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "8%09ld%05ld%02d", (long)(ts.tv_sec % 1000000000L),
             (long)(getpid() % 100000), ++counter % 100);
}

static void random_hex(char *out, size_t nbytes)
{
    uint8_t b[32];
    cr_assert(nbytes <= sizeof b && crypto_random(b, nbytes) == 0);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Runs `deploy/local/stack.sh <cmd>`, its output appended to stack_log. */
static int stack(const char *cmd)
{
    char line[768];
    snprintf(line, sizeof line, "deploy/local/stack.sh %s >>%s 2>&1", cmd, stack_log);
    int rc = system(line);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* --- HTTP ----------------------------------------------------------------- */

struct sink {
    char body[4096];
    size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t add = size * n;
    if (add > sizeof s->body - 1 - s->len)
        add = sizeof s->body - 1 - s->len;
    memcpy(s->body + s->len, p, add);
    s->len += add;
    s->body[s->len] = '\0';
    return size * n;
}

static long http_do(const char *method, const char *url, const char *const *headers,
                    const char *body, size_t len, struct sink *out)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *list = NULL;
    long status = 0;
    memset(out, 0, sizeof *out);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    for (const char *const *h = headers; h && *h; h++)
        list = curl_slist_append(list, *h);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return status;
}

/* The text of GET url, malloc'd (the metrics page outgrows struct sink). */
static char *http_get_text(const char *url)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -fsS --max-time 5 '%s'", url);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap + 1);
    cr_assert_not_null(text);
    len = fread(text, 1, cap, p);
    text[len] = '\0';
    pclose(p);
    return text;
}

static long post_webhook(const char *body, struct sink *out, long *took_ms)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    char sig[64], h[128], url[128];
    crypto_hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
    crypto_base64_encode(mac, sizeof mac, sig, sizeof sig);
    snprintf(h, sizeof h, "x-line-signature: %s", sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, channel);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    long t0 = now_ms();
    long status = http_do("POST", url, headers, body, strlen(body), out);
    *took_ms = now_ms() - t0;
    return status;
}

/* --- fixture ---------------------------------------------------------------- */

static bool wait_ready(long timeout_ms)
{
    char url[128];
    struct sink s;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", ADMIN_PORT);
    for (long start = now_ms(); now_ms() - start < timeout_ms;) {
        if (http_do("GET", url, NULL, NULL, 0, &s) == 200)
            return true;
        usleep(200 * 1000);
    }
    return false;
}

static void outage_start(void)
{
    log_init("test-ingest-outage", LOG_WARN);
    env_required("INGEST_DATABASE_URL");
    env_required("KAFKA_BROKERS");
    const char *jwt = env_required("KIZUNA_JWT_KEY");
    snprintf(stack_log, sizeof stack_log, "%s/tests/ingest-outage-stack.log", build_dir());
    snprintf(tenant, sizeof tenant, "t-outage-%ld", (long)getpid());
    char *tok =
        auth_token_issue(jwt, strlen(jwt), tenant, "outage-test", "admin", 3600, time(NULL));
    cr_assert_not_null(tok);
    snprintf(admin_token, sizeof admin_token, "%s", tok);
    free(tok);

    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-outage-%ld.log", build_dir(),
             (long)getpid());
    char path[512];
    snprintf(path, sizeof path, "%s/bin/kizuna-ingest", build_dir());
    ingest_pid = fork();
    cr_assert_neq(ingest_pid, -1);
    if (ingest_pid == 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", PUBLIC_PORT);
        setenv("INGEST_PUBLIC_PORT", v, 1);
        snprintf(v, sizeof v, "%d", ADMIN_PORT);
        setenv("INGEST_ADMIN_PORT", v, 1);
        snprintf(v, sizeof v, "%d", ACK_BUDGET_MS);
        setenv("INGEST_ACK_BUDGET_MS", v, 1);
        setenv("LOG_LEVEL", "info", 1);
        int fd = open(ingest_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    cr_assert(wait_ready(45000), "kizuna-ingest did not become ready; see %s", ingest_log);

    random_hex(secret, 16);
    unique_digits(channel, sizeof channel);
    char url[128], body[1024], auth[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/channels", ADMIN_PORT);
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"name\":\"outage test\",\"channel_secret\":\"%s\","
             "\"access_token\":\"token-%s\",\"bot_user_id\":\"%s\"}",
             channel, secret, channel, BOT_USER);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", admin_token);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct sink s;
    cr_assert_eq(http_do("POST", url, headers, body, strlen(body), &s), 201, "register: %s",
                 s.body);
}

/* Whatever happened: both parts of the infra back (other suites run after
 * this one), then the service stopped cleanly. */
static void outage_finish(void)
{
    cr_expect_eq(stack("pg-start"), 0, "could not restart PostgreSQL; see %s", stack_log);
    cr_expect_eq(stack("kafka-start"), 0, "could not restart Kafka; see %s", stack_log);
    if (ingest_pid <= 0)
        return;
    kill(ingest_pid, SIGTERM);
    int status = -1;
    for (long start = now_ms(); now_ms() - start < 10000; usleep(50 * 1000)) {
        if (waitpid(ingest_pid, &status, WNOHANG) == ingest_pid)
            break;
        status = -1;
    }
    if (status == -1) {
        kill(ingest_pid, SIGKILL);
        waitpid(ingest_pid, NULL, 0);
    }
    ingest_pid = 0;
    cr_expect(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "kizuna-ingest did not exit cleanly (status %d); see %s", status, ingest_log);
    FILE *f = fopen(ingest_log, "r");
    cr_assert_not_null(f);
    char line[16384];
    while (fgets(line, sizeof line, f)) {
        cr_expect(strstr(line, "Sanitizer") == NULL && strstr(line, "runtime error") == NULL, "%s",
                  line);
        cr_expect(strstr(line, secret) == NULL, "the log shows the channel secret: %s", line);
    }
    fclose(f);
}

TestSuite(ingest_outage, .init = outage_start, .fini = outage_finish, .timeout = 180);

/* --- spool and Kafka --------------------------------------------------------- */

/* Rows in ingest.spool for our channel, or -1 if PostgreSQL does not answer. */
static long spool_rows(void)
{
    char errstr[256], like[64];
    struct db *db = db_connect(env_required("INGEST_DATABASE_URL"), errstr, sizeof errstr);
    if (!db)
        return -1;
    snprintf(like, sizeof like, "%s:%%", channel);
    const char *params[] = {like};
    struct db_result *r = NULL;
    long n = -1;
    if (db_exec(db, "SELECT count(*) FROM spool WHERE encode(key, 'escape') LIKE $1", 1, params,
                &r) == DB_OK)
        n = strtol(db_result_value(r, 0, 0), NULL, 10);
    db_result_free(&r);
    db_free(&db);
    return n;
}

#define EVENTS_MAX 8

struct sent_event {
    char id[48];
    char key[96];
    char raw[1024];
    int seen;
};

struct collect {
    char prefix[48];
    struct sent_event *events;
    size_t nevents;
    size_t unexpected;
    char mismatch[512];
};

static enum kafka_handled collect_handle(void *ctx, const struct kafka_message *msg)
{
    struct collect *c = ctx;
    size_t pl = strlen(c->prefix);
    if (msg->keylen < pl || memcmp(msg->key, c->prefix, pl) != 0)
        return KAFKA_DONE;
    Kizuna__V1__WebhookEvent *ev = kizuna__v1__webhook_event__unpack(NULL, msg->len, msg->value);
    if (!ev) {
        c->unexpected++;
        return KAFKA_DONE;
    }
    bool known = false;
    for (size_t i = 0; i < c->nevents; i++) {
        struct sent_event *e = &c->events[i];
        if (strcmp(ev->webhook_event_id, e->id) != 0)
            continue;
        known = true;
        e->seen++;
        if (strcmp(ev->raw_json, e->raw) != 0 || msg->keylen != strlen(e->key) ||
            memcmp(msg->key, e->key, msg->keylen) != 0 ||
            strcmp(ev->envelope->channel_id, channel) != 0 ||
            strcmp(ev->envelope->tenant_id, tenant) != 0)
            snprintf(c->mismatch, sizeof c->mismatch, "%s arrived changed: %s", e->id,
                     ev->raw_json);
    }
    if (!known)
        c->unexpected++;
    kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool collect_done(const struct collect *c)
{
    for (size_t i = 0; i < c->nevents; i++)
        if (c->events[i].seen == 0)
            return false;
    return true;
}

static void collect_run(struct collect *c, long timeout_ms)
{
    char group[128], err[512];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(group, sizeof group, "test-outage-%ld-%ld%09ld", (long)getpid(), (long)ts.tv_sec,
             ts.tv_nsec);
    const char *topics[] = {"line.webhook"};
    struct kafka_consumer_options opts = {
        .brokers = env_required("KAFKA_BROKERS"),
        .group = group,
        .topics = topics,
        .ntopics = 1,
        .from_beginning = true,
        .no_commit = true,
    };
    struct kafka_consumer *k = kafka_consumer_new(&opts, err, sizeof err);
    cr_assert_not_null(k, "kafka_consumer_new: %s", err);
    for (long start = now_ms(); !collect_done(c) && now_ms() - start < timeout_ms;)
        kafka_consumer_poll(k, 200, collect_handle, c);
    kafka_consumer_close(k);
    kafka_consumer_free(&k);
}

/* One text message event, compact, in LINE's key order. */
static void event_make(struct sent_event *e, int i)
{
    char user[40];
    snprintf(user, sizeof user, "U");
    random_hex(user + 1, 16);
    snprintf(e->id, sizeof e->id, "01OUTAGE%s%02d", channel, i);
    snprintf(e->key, sizeof e->key, "%s:%s", channel, user);
    snprintf(e->raw, sizeof e->raw,
             "{\"type\":\"message\",\"message\":{\"type\":\"text\",\"id\":\"5000%02d\","
             "\"quoteToken\":\"q\",\"text\":\"outage %d \xe3\x81\xab\"},\"webhookEventId\":\"%s\","
             "\"deliveryContext\":{\"isRedelivery\":false},\"timestamp\":17000000%05d,"
             "\"source\":{\"type\":\"user\",\"userId\":\"%s\"},\"replyToken\":\"rt%d\","
             "\"mode\":\"active\"}",
             i, i, e->id, i, user, i);
    e->seen = 0;
}

Test(ingest_outage, broker_down_spools_and_relays_both_down_answers_503)
{
    struct sent_event events[EVENTS_MAX];
    size_t nevents = 0;
    char body[4096];
    struct sink s;
    long took;

    /* Warm: the broker is up, the channel is cached. */
    snprintf(body, sizeof body, "{\"destination\":\"%s\",\"events\":[]}", BOT_USER);
    cr_assert_eq(post_webhook(body, &s, &took), 200, "%s", s.body);

    long t0 = now_ms();
    cr_assert_eq(stack("kafka-stop"), 0, "kafka-stop failed; see %s", stack_log);
    long outage_start_ms = now_ms();

    /* Broker down: 200 within the budget, the events in the spool. Request
     * i carries i + 1 events (1, 2, 3). */
    for (int i = 0; i < NREQ; i++) {
        char list[3 * 1024 + 8] = "";
        size_t off = 0;
        for (int k = 0; k <= i; k++) {
            struct sent_event *e = &events[nevents];
            event_make(e, (int)nevents);
            nevents++;
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", k ? "," : "", e->raw);
        }
        snprintf(body, sizeof body, "{\"destination\":\"%s\",\"events\":[%s]}", BOT_USER, list);
        long status = post_webhook(body, &s, &took);
        cr_expect_eq(status, 200, "request %d with the broker down: %ld %s", i, status, s.body);
        cr_expect_lt(took, ANSWER_LIMIT_MS, "request %d answered in %ld ms", i, took);
    }
    long spooled = spool_rows();
    cr_expect_eq(spooled, (long)nevents, "spool rows for the channel: %ld, want %zu", spooled,
                 nevents);

    /* Broker and database down: nothing can make the events durable. */
    cr_assert_eq(stack("pg-stop"), 0, "pg-stop failed; see %s", stack_log);
    struct sent_event lost;
    event_make(&lost, 90);
    snprintf(body, sizeof body, "{\"destination\":\"%s\",\"events\":[%s]}", BOT_USER, lost.raw);
    long status = post_webhook(body, &s, &took);
    cr_expect_eq(status, 503, "both down: %ld %s", status, s.body);
    cr_expect(strstr(s.body, "\"code\":\"not_durable\"") != NULL, "both down: %s", s.body);
    cr_expect_lt(took, ANSWER_LIMIT_MS + 1000, "503 answered in %ld ms", took);

    /* Back: PostgreSQL first, then the broker; the relay drains the spool. */
    cr_assert_eq(stack("pg-start"), 0, "pg-start failed; see %s", stack_log);
    cr_assert_eq(stack("kafka-start"), 0, "kafka-start failed; see %s", stack_log);
    long outage_ms = now_ms() - outage_start_ms;
    long back = now_ms();

    struct collect c = {.events = events, .nevents = nevents};
    snprintf(c.prefix, sizeof c.prefix, "%s:", channel);
    collect_run(&c, 45000);
    for (size_t i = 0; i < nevents; i++)
        cr_expect_geq(events[i].seen, 1, "%s never arrived on line.webhook", events[i].id);
    cr_expect_str_eq(c.mismatch, "", "%s", c.mismatch);
    /* The refused event may arrive too: the producer kept it queued and
     * delivered it when the broker returned; LINE's redelivery would be the
     * duplicate, and consumers drop it by id. Anything else is a bug. */
    cr_expect_leq(c.unexpected, 1, "%zu records we never sent", c.unexpected);

    long left = -1;
    for (long start = now_ms(); now_ms() - start < 20000; usleep(200 * 1000)) {
        left = spool_rows();
        if (left == 0)
            break;
    }
    cr_expect_eq(left, 0, "the spool did not empty: %ld rows left", left);
    long drained_ms = now_ms() - back;

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    char *metrics = http_get_text(url);
    char want[160];
    snprintf(want, sizeof want, "kizuna_ingest_spooled_events_total{topic=\"line.webhook\"} %zu",
             nevents);
    cr_expect(strstr(metrics, want) != NULL, "metrics lack %s", want);
    cr_expect(strstr(metrics, "kizuna_ingest_time_to_ack_seconds_count{outcome=\"spooled\"} 3") !=
                  NULL,
              "time-to-ack of spooled requests");
    cr_expect(strstr(metrics, "kizuna_ingest_time_to_ack_seconds_count{outcome=\"failed\"} 1") !=
                  NULL,
              "time-to-ack of the refused request");
    free(metrics);
    cr_log_info("outage: %ld ms with infra parts down, spool drained %ld ms after both were back, "
                "whole test %ld ms",
                outage_ms, drained_ms, now_ms() - t0);
}
