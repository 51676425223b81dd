/* The dispatcher tests' stage: processes, the channel, Kafka and HTTP
 * helpers. Everything that fails here fails the calling test with a
 * message that says which part of the stack was missing. */
#include "test_dispatcher_harness.h"

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
#include <uuid/uuid.h>

#include "auth.h"
#include "crypto.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "topics.h"

struct dh dh;

static struct kafka_producer *producer;
static int dispatcher_starts; /* one log file per start: dispatcher-<name>-<n>.log */
static char test_name[64];
static char sim_log[256];

long dh_monotonic_ms(void)
{
    return itest_now_ms();
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void uuid_text(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

bool dh_wait(bool (*fn)(void *ctx), void *ctx, long timeout_ms)
{
    for (long start = dh_monotonic_ms(); dh_monotonic_ms() - start < timeout_ms;) {
        if (fn(ctx))
            return true;
        usleep(100 * 1000);
    }
    return fn(ctx);
}

/* --- HTTP ----------------------------------------------------------------- */

struct sink {
    char *buf;
    size_t len;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t add = size * n;
    char *b = realloc(s->buf, s->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + s->len, p, add);
    s->len += add;
    b[s->len] = '\0';
    s->buf = b;
    return add;
}

static long http(const char *method, const char *url, const char *bearer, const char *body,
                 json_t **out)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    struct sink sink = {0};
    char auth[2200];
    long status = 0;
    if (out)
        *out = NULL;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, auth);
    }
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (out && sink.buf)
        *out = json_loads(sink.buf, 0, NULL);
    free(sink.buf);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

long dh_sim(const char *method, const char *path, const char *body, json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", DH_SIM_PORT, path);
    return http(method, url, NULL, body, out);
}

long dh_api(const char *method, const char *path, const char *body, json_t **out)
{
    return dh_api_as(dh.jwt, method, path, body, out);
}

long dh_api_as(const char *jwt, const char *method, const char *path, const char *body,
               json_t **out)
{
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", DH_ADMIN_PORT, path);
    return http(method, url, jwt, body, out);
}

/* The simulator's endpoint names and per-endpoint counters, as
 * tests/line-sim/sim_endpoint.c and sim_state.c (stats_one_channel) name
 * them: a name not listed is a typo in a test, and fails it. */
static const char *const sim_endpoints[] = {"reply",
                                            "push",
                                            "multicast",
                                            "broadcast",
                                            "narrowcast",
                                            "narrowcast_progress",
                                            "quota",
                                            "quota_consumption",
                                            "profile",
                                            "richmenu_link",
                                            "richmenu_unlink",
                                            "richmenu_get",
                                            "richmenu_bulk_link",
                                            "richmenu_bulk_unlink",
                                            "bot_info"};
static const char *const sim_endpoint_fields[] = {"requests",
                                                  "accepted",
                                                  "rate_limited",
                                                  "quota_exceeded",
                                                  "conflict",
                                                  "rejected",
                                                  "fault_errors",
                                                  "fault_drops",
                                                  "deliveries",
                                                  "duplicate",
                                                  "duplicate_deliveries",
                                                  "max_rate_1s",
                                                  "max_accepted_rate_1s",
                                                  "current_rate_1s"};

static bool listed(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

long long dh_sim_stat(const char *endpoint, const char *field)
{
    return dh_sim_stat_of(dh.channel, endpoint, field);
}

long long dh_sim_stat_of(const char *channel, const char *endpoint, const char *field)
{
    json_t *st = NULL;
    long status = dh_sim("GET", "/_sim/stats", NULL, &st);
    if (status != 200 || !json_is_object(st)) {
        json_decref(st);
        cr_assert_fail("GET /_sim/stats answered %ld%s; see %s", status,
                       status == 200 ? " without a JSON object" : "", sim_log);
    }
    json_t *v;
    if (endpoint) {
        cr_assert(listed(endpoint, sim_endpoints, sizeof sim_endpoints / sizeof *sim_endpoints),
                  "the simulator has no endpoint \"%s\"", endpoint);
        cr_assert(listed(field, sim_endpoint_fields,
                         sizeof sim_endpoint_fields / sizeof *sim_endpoint_fields),
                  "the simulator counts no \"%s\" per endpoint", field);
        json_t *ch = json_object_get(json_object_get(st, "channels"), channel);
        json_t *eps = json_object_get(ch, "endpoints");
        if (!json_is_object(eps)) {
            json_decref(st);
            cr_assert_fail("/_sim/stats has no endpoints for channel %s", channel);
        }
        json_t *ep = json_object_get(eps, endpoint);
        if (!ep) {
            /* Listed only once called: no request, so every counter is 0. */
            json_decref(st);
            return 0;
        }
        v = json_object_get(ep, field);
    } else {
        v = json_object_get(st, field);
    }
    if (!json_is_integer(v)) {
        json_decref(st);
        cr_assert_fail("/_sim/stats has no integer %s%s%s", endpoint ? endpoint : "",
                       endpoint ? "." : "", field);
    }
    long long n = json_integer_value(v);
    json_decref(st);
    return n;
}

/* --- processes -------------------------------------------------------------- */

/* The simulator (itest_service_spawn starts kizuna-* binaries only). */
static pid_t spawn(const char *binary, const char *const *settings, const char *log_path)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (const char *const *s = settings; s && *s; s++) {
            char kv[512];
            snprintf(kv, sizeof kv, "%s", *s);
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(binary, binary, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_pid(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return;
    kill(*pid, sig);
    int status;
    for (int i = 0; i < 150; i++) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        usleep(100 * 1000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    *pid = 0;
}

static bool sim_up(void *ctx)
{
    (void)ctx;
    return dh_sim("GET", "/healthz", NULL, NULL) == 200;
}

/* A dispatcher on admin_port with dh's settings and extra (which win). */
static pid_t dispatcher_spawn(int admin_port, const char *const *extra, char *log_path,
                              size_t log_cap)
{
    char port[64], base[128], instance[160], grp[160];
    snprintf(port, sizeof port, "DISPATCHER_ADMIN_PORT=%d", admin_port);
    snprintf(base, sizeof base, "DISPATCHER_LINE_API_BASE=http://127.0.0.1:%d", DH_SIM_PORT);
    snprintf(instance, sizeof instance, "DISPATCHER_INSTANCE_ID=%s", dh.instance);
    snprintf(grp, sizeof grp, "DISPATCHER_GROUP=%s", dh.group);
    const char *settings[32] = {port,
                                base,
                                instance,
                                grp,
                                "DISPATCHER_REQUESTS_TOPIC=" DH_TOPIC,
                                "DISPATCHER_INTAKE_FROM=latest",
                                "DISPATCHER_SESSION_TIMEOUT_MS=6000",
                                "DISPATCHER_UNKNOWN_CHANNEL_GRACE_S=5",
                                "LOG_LEVEL=info"};
    size_t n = 9;
    for (const char *const *s = extra; s && *s && n < 31; s++)
        settings[n++] = *s;
    settings[n] = NULL;
    snprintf(log_path, log_cap, "%s/tests/dispatcher-%s-%d.log", itest_build_dir(), test_name,
             ++dispatcher_starts);
    pid_t pid = itest_service_spawn("dispatcher", settings, log_path);
    cr_assert(itest_http_wait_ready(admin_port, 45000),
              "the dispatcher did not become ready; see %s", log_path);
    return pid;
}

void dh_dispatcher_start(const char *const *extra)
{
    dh.disp = dispatcher_spawn(DH_ADMIN_PORT, extra, dh.log_path, sizeof dh.log_path);
}

pid_t dh_replica_start(int admin_port, const char *const *settings, char *log_path, size_t cap)
{
    return dispatcher_spawn(admin_port, settings, log_path, cap);
}

static bool probe_seen(void *ctx)
{
    (void)ctx;
    return dh_sim_stat("profile", "requests") > 0;
}

void dh_dispatcher_wait_consuming(void)
{
    /* "latest" applies when the partitions are assigned: probes sent before
     * that are skipped, so keep sending until one arrives. */
    for (long start = dh_monotonic_ms(); dh_monotonic_ms() - start < 40000;) {
        Kizuna__V1__SendRequest req;
        Kizuna__V1__Envelope env;
        dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, NULL);
        req.to = DH_PROBE_USER;
        dh_produce(&req);
        dh_flush();
        if (dh_wait(probe_seen, NULL, 700))
            return;
    }
    cr_assert_fail("the dispatcher never consumed a probe from %s; see %s", DH_TOPIC, dh.log_path);
}

void dh_dispatcher_kill9(void)
{
    stop_pid(&dh.disp, SIGKILL);
}

void dh_dispatcher_stop(void)
{
    /* Drains and exits 0 within 10 s, or the test fails. */
    itest_service_stop(&dh.disp, dh.log_path);
}

/* --- Kafka -------------------------------------------------------------------- */

void dh_request_init(Kizuna__V1__SendRequest *req, Kizuna__V1__Envelope *env,
                     Kizuna__V1__SendKind kind, char *request_id)
{
    static char ids[2][37];
    kizuna__v1__send_request__init(req);
    kizuna__v1__envelope__init(env);
    uuid_text(ids[0]);
    uuid_text(ids[1]);
    if (request_id)
        memcpy(request_id, ids[1], 37);
    env->event_id = ids[0];
    env->tenant_id = DH_TENANT;
    env->channel_id = dh.channel;
    env->occurred_at = wall_ms();
    req->envelope = env;
    req->request_id = request_id ? request_id : ids[1];
    req->kind = kind;
    req->origin_type = "itest";
}

void dh_produce(const Kizuna__V1__SendRequest *req)
{
    dh_produce_keyed(req, dh.channel);
}

void dh_produce_keyed(const Kizuna__V1__SendRequest *req, const char *key)
{
    size_t len = kizuna__v1__send_request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    kizuna__v1__send_request__pack(req, buf);
    int rc = -1;
    for (int i = 0; i < 100 && rc != 0; i++) {
        rc = kafka_produce(producer, DH_TOPIC, key, strlen(key), buf, len, NULL);
        if (rc != 0)
            usleep(10 * 1000); /* local queue full: let it drain */
    }
    free(buf);
    cr_assert_eq(rc, 0, "cannot produce to %s", DH_TOPIC);
}

void dh_produce_push(const char *to, const char *text, char *request_id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    char id[37];
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, id);
    char msg[512];
    snprintf(msg, sizeof msg, "{\"type\":\"text\",\"text\":\"%s\"}", text);
    char *msgs[] = {msg};
    req.to = (char *)to;
    req.n_messages_json = 1;
    req.messages_json = msgs;
    dh_produce(&req);
    if (request_id)
        memcpy(request_id, id, 37);
}

void dh_flush(void)
{
    cr_assert_eq(kafka_producer_flush(producer, 15000), 0, "Kafka did not take the messages");
}

static void publish_config(const char *channel, const char *tenant, const char *token,
                           long long version, bool deleted)
{
    uint8_t key[CRYPTO_KEY_LEN];
    cr_assert_eq(crypto_key_from_hex(itest_env("KIZUNA_DATA_KEY"), key), 0);
    char aad[160];
    int aadlen = snprintf(aad, sizeof aad, "%s/%s", tenant, channel);
    uint8_t sealed[256];
    long n = crypto_seal(key, aad, (size_t)aadlen, token, strlen(token), sealed, sizeof sealed);
    cr_assert_gt(n, 0);
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    char event_id[37];
    uuid_text(event_id);
    env.event_id = event_id;
    env.tenant_id = (char *)tenant;
    env.channel_id = (char *)channel;
    env.occurred_at = wall_ms();
    cfg.envelope = &env;
    cfg.channel_id = (char *)channel;
    cfg.tenant_id = (char *)tenant;
    cfg.name = "dispatcher integration test";
    cfg.timezone = "Asia/Tokyo";
    cfg.monthly_quota = dh.monthly_quota;
    cfg.access_token_sealed.data = sealed;
    cfg.access_token_sealed.len = (size_t)n;
    cfg.deleted = deleted;
    cfg.version = version;
    cfg.updated_at = wall_ms();
    size_t len = kizuna__v1__channel_config__get_packed_size(&cfg);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    kizuna__v1__channel_config__pack(&cfg, buf);
    cr_assert_eq(kafka_produce(producer, "channels", channel, strlen(channel), buf, len, NULL), 0);
    free(buf);
    dh_flush();
}

/* The test channel's last published version and tenant (dh_channel_move
 * changes them; dh_teardown deletes it with the next version). */
static long long channel_version;
static char channel_tenant[64];

static void publish_channel(long long version, bool deleted)
{
    publish_config(dh.channel, channel_tenant[0] ? channel_tenant : DH_TENANT, dh.token, version,
                   deleted);
    channel_version = version;
}

void dh_channel_move(const char *tenant, bool deleted)
{
    snprintf(channel_tenant, sizeof channel_tenant, "%s", tenant);
    publish_channel(channel_version + 1, deleted);
}

/* Channels added by dh_channel_add, marked deleted by dh_teardown. */
static struct {
    char channel[24], tenant[64], token[64];
} extra[4];
static size_t nextra;

void dh_channel_add(char *channel, const char *tenant)
{
    cr_assert_lt(nextra, sizeof extra / sizeof extra[0], "too many channels for one test");
    itest_unique_digits(channel, 24, '8');
    snprintf(extra[nextra].channel, sizeof extra[nextra].channel, "%s", channel);
    snprintf(extra[nextra].tenant, sizeof extra[nextra].tenant, "%s", tenant);
    snprintf(extra[nextra].token, sizeof extra[nextra].token, "itest-token-%s", channel);
    char body[256];
    snprintf(body, sizeof body, "{\"channel_id\":\"%s\",\"access_token\":\"%s\"}", channel,
             extra[nextra].token);
    cr_assert_eq(dh_sim("POST", "/_sim/channels", body, NULL), 201);
    publish_config(channel, tenant, extra[nextra].token, 1, false);
    nextra++;
}

/* --- the stage ---------------------------------------------------------------- */

void dh_setup(const char *name)
{
    itest_env("KAFKA_BROKERS");
    itest_env("DISPATCHER_DATABASE_URL");
    const char *jwt_key = itest_env("KIZUNA_JWT_KEY");
    char errstr[512];

    snprintf(test_name, sizeof test_name, "%s", name);
    dispatcher_starts = 0;
    itest_unique_digits(dh.channel, sizeof dh.channel, '7');
    snprintf(dh.token, sizeof dh.token, "itest-token-%s", dh.channel);
    snprintf(dh.group, sizeof dh.group, "itest-dispatcher-%s", dh.channel);
    snprintf(dh.instance, sizeof dh.instance, "itest-%s", dh.channel);

    /* The test topic, created once and reused (an hour of retention). */
    struct topic_spec spec = {
        .name = DH_TOPIC, .partitions = 4, .retention_ms = 3600000, .cleanup = "delete"};
    cr_assert_geq(
        kafka_topics_apply(getenv("KAFKA_BROKERS"), &spec, 1, 10000, errstr, sizeof errstr), 0,
        "%s", errstr);
    producer =
        kafka_producer_new(getenv("KAFKA_BROKERS"), "itest-dispatcher", errstr, sizeof errstr);
    cr_assert_not_null(producer, "%s", errstr);

    char binary[512], port[64];
    snprintf(binary, sizeof binary, "%s/bin/line-sim", itest_build_dir());
    snprintf(port, sizeof port, "LINESIM_PORT=%d", DH_SIM_PORT);
    snprintf(sim_log, sizeof sim_log, "%s/tests/line-sim-%s.log", itest_build_dir(), name);
    unlink(sim_log);
    const char *sim_settings[] = {port, "LINESIM_THREADS=16", "LINESIM_CHANNELS=", NULL};
    dh.sim = spawn(binary, sim_settings, sim_log);
    cr_assert(dh_wait(sim_up, NULL, 10000), "line-sim did not start; see %s", sim_log);
    char body[256];
    snprintf(body, sizeof body, "{\"channel_id\":\"%s\",\"access_token\":\"%s\"}", dh.channel,
             dh.token);
    cr_assert_eq(dh_sim("POST", "/_sim/channels", body, NULL), 201);
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"user_id\":\"" DH_PROBE_USER "\",\"display_name\":\"Probe\"}",
             dh.channel);
    cr_assert_eq(dh_sim("POST", "/_sim/users", body, NULL) / 100, 2);

    channel_tenant[0] = '\0';
    publish_channel(1, false);

    char *jwt =
        auth_token_issue(jwt_key, strlen(jwt_key), DH_TENANT, "itest", "admin", 3600, time(NULL));
    cr_assert_not_null(jwt);
    snprintf(dh.jwt, sizeof dh.jwt, "%s", jwt);
    free(jwt);
}

void dh_finish(void)
{
    cr_assert_gt(dh.sim, 0, "the simulator was stopped before the end of the test");
    if (dh.disp > 0)
        dh_dispatcher_stop();
    itest_service_stop(&dh.sim, sim_log);
    /* No sanitizer report, and never the access token, in any log. */
    const char *forbidden[] = {dh.token, NULL};
    for (int i = 1; i <= dispatcher_starts; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/tests/dispatcher-%s-%d.log", itest_build_dir(), test_name,
                 i);
        itest_log_expect_clean(path, forbidden);
    }
    itest_log_expect_clean(sim_log, forbidden);
}

void dh_teardown(void)
{
    /* After a test that ended early (and failed): stop what still runs. */
    itest_service_reap(&dh.disp);
    itest_service_reap(&dh.sim);
    if (producer) {
        publish_channel(channel_version + 1, true);
        channel_tenant[0] = '\0';
        for (size_t i = 0; i < nextra; i++)
            publish_config(extra[i].channel, extra[i].tenant, extra[i].token, 2, true);
        kafka_producer_free(&producer);
    }
    nextra = 0;
    dh.monthly_quota = 0;
}

/* --- the admin API's view ------------------------------------------------------ */

void dh_counts(struct dh_counts *c)
{
    memset(c, 0, sizeof *c);
    char cursor[32] = "";
    for (int page = 0; page < 100; page++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/deliveries?channel=%s&limit=500%s%s", dh.channel,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *body = NULL;
        cr_assert_eq(dh_api("GET", path, NULL, &body), 200);
        json_t *list = json_object_get(body, "deliveries");
        size_t i;
        json_t *d;
        json_array_foreach(list, i, d)
        {
            const char *st = json_string_value(json_object_get(d, "status"));
            const char *kind = json_string_value(json_object_get(d, "kind"));
            if (kind && strcmp(kind, "profile") == 0)
                continue; /* the consuming probes */
            c->total++;
            if (!st)
                continue;
            long *slot = strcmp(st, "queued") == 0            ? &c->queued
                         : strcmp(st, "retrying") == 0        ? &c->retrying
                         : strcmp(st, "sent") == 0            ? &c->sent
                         : strcmp(st, "failed") == 0          ? &c->failed
                         : strcmp(st, "quota_exceeded") == 0  ? &c->quota_exceeded
                         : strcmp(st, "retry_exhausted") == 0 ? &c->retry_exhausted
                         : strcmp(st, "invalid") == 0         ? &c->invalid
                                                              : &c->reply_token_expired;
            (*slot)++;
        }
        json_t *next = json_object_get(body, "next_cursor");
        if (!json_is_string(next)) {
            json_decref(body);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(body);
    }
}

json_t *dh_delivery(const char *request_id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/deliveries?channel=%s&limit=500", dh.channel);
    json_t *body = NULL;
    if (dh_api("GET", path, NULL, &body) != 200)
        return NULL;
    json_t *found = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(body, "deliveries"), i, d)
    {
        const char *id = json_string_value(json_object_get(d, "request_id"));
        if (id && strcmp(id, request_id) == 0) {
            found = json_incref(d);
            break;
        }
    }
    json_decref(body);
    return found;
}

void dh_result_probe(struct kafka_producer *p)
{
    Kizuna__V1__DeliveryResult r = KIZUNA__V1__DELIVERY_RESULT__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    char id[64];
    snprintf(id, sizeof id, "probe-%ld", dh_monotonic_ms());
    env.event_id = id;
    env.tenant_id = DH_TENANT;
    env.channel_id = dh.channel;
    r.envelope = &env;
    r.request_id = id;
    uint8_t buf[512];
    size_t len = kizuna__v1__delivery_result__pack(&r, buf);
    cr_assert_eq(
        kafka_produce(p, "delivery.results", dh.channel, strlen(dh.channel), buf, len, NULL), 0);
    kafka_producer_flush(p, 5000);
}

void dh_limits_set(const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    cr_assert_eq(dh_api("PATCH", path, body, NULL), 200, "PATCH %s %s", path, body);
}
