/* The dispatcher benchmark's driver (bench/dispatcher/run.sh builds and runs
 * it; not a test). It publishes one channel's ChannelConfig (the token sealed
 * under KIZUNA_DATA_KEY, as ingest seals it), waits until the dispatcher
 * consumes the benchmark topic, produces N pushes to distinct users with
 * distinct texts, then reads the simulator's counters once a second until
 * every push was accepted (or nothing moves for 15 s). It prints one line
 * per second and a RESULT line:
 *   RESULT sent=N seconds=S rate=R steady_rate=R30 max_1s=M 429=T duplicate=D
 *          dispatcher_cpu=C% sim_cpu=C% dispatcher_rss_mb=M dispatcher_peak_rss_mb=P
 * where steady_rate is the mean over the best window (-w, default 30 s) of
 * full seconds, max_1s the simulator's highest count in any sliding second,
 * 429 every rate-limited or over-quota answer, and CPU is per cent of one
 * core from the first push produced to the last one accepted.
 *
 * usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-w WINDOW_S]
 *                [-P DISPATCHER_PID] [-Q SIM_PID]
 *        loadgen -C -T TOPIC        (creates the topic, 12 partitions, 1 h)
 * environment: KAFKA_BROKERS, KIZUNA_DATA_KEY */
#include <curl/curl.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "crypto.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "topics.h"

#define TENANT "bench"

static const char *channel, *token, *topic;
static int sim_port;
static struct kafka_producer *producer;

/* utime + stime of pid in clock ticks; 0 if unknown. */
static long long proc_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    long long utime = 0, stime = 0;
    if (p &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime) == 2)
        return utime + stime;
    return 0;
}

/* A "VmRSS:" style line of /proc/pid/status, in MB. */
static double proc_mb(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    double mb = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0) {
            mb = strtod(line + fl, NULL) / 1024.0;
            break;
        }
    fclose(f);
    return mb;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s\n", what);
    exit(1);
}

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

/* GET /_sim/stats; NULL if the simulator does not answer. */
static json_t *sim_stats(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_sim/stats", sim_port);
    CURL *c = curl_easy_init();
    struct sink s = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    json_t *j = NULL;
    if (curl_easy_perform(c) == CURLE_OK && s.buf)
        j = json_loads(s.buf, 0, NULL);
    free(s.buf);
    curl_easy_cleanup(c);
    return j;
}

static long long stat_of(json_t *st, const char *endpoint, const char *field)
{
    json_t *v =
        endpoint
            ? json_object_get(
                  json_object_get(
                      json_object_get(json_object_get(json_object_get(st, "channels"), channel),
                                      "endpoints"),
                      endpoint),
                  field)
            : json_object_get(st, field);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void produce(const Kizuna__V1__SendRequest *req)
{
    size_t len = kizuna__v1__send_request__get_packed_size(req);
    uint8_t buf[1024];
    if (len > sizeof buf)
        die("request too big");
    kizuna__v1__send_request__pack(req, buf);
    while (kafka_produce(producer, topic, channel, strlen(channel), buf, len, NULL) != 0)
        usleep(5000); /* the local queue is full: let it drain */
}

static void request(Kizuna__V1__SendKind kind, const char *to, const char *text)
{
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    char event_id[37], request_id[37], msg[256];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    uuid_generate_random(u);
    uuid_unparse_lower(u, request_id);
    env.event_id = event_id;
    env.tenant_id = TENANT;
    env.channel_id = (char *)channel;
    env.occurred_at = now_ms();
    req.envelope = &env;
    req.request_id = request_id;
    req.kind = kind;
    req.to = (char *)to;
    req.origin_type = "bench";
    char *msgs[1] = {msg};
    if (text) {
        snprintf(msg, sizeof msg, "{\"type\":\"text\",\"text\":\"%s\"}", text);
        req.n_messages_json = 1;
        req.messages_json = msgs;
    }
    produce(&req);
}

static void publish_channel(void)
{
    uint8_t key[CRYPTO_KEY_LEN];
    const char *hex = getenv("KIZUNA_DATA_KEY");
    if (!hex || crypto_key_from_hex(hex, key) != 0)
        die("KIZUNA_DATA_KEY missing or not 64 hex characters");
    char aad[128];
    int aadlen = snprintf(aad, sizeof aad, "%s/%s", TENANT, channel);
    uint8_t sealed[512];
    long n = crypto_seal(key, aad, (size_t)aadlen, token, strlen(token), sealed, sizeof sealed);
    if (n < 0)
        die("cannot seal the token");
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    char event_id[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    env.event_id = event_id;
    env.tenant_id = TENANT;
    env.channel_id = (char *)channel;
    env.occurred_at = now_ms();
    cfg.envelope = &env;
    cfg.channel_id = (char *)channel;
    cfg.tenant_id = TENANT;
    cfg.name = "dispatcher benchmark";
    cfg.timezone = "Asia/Tokyo";
    cfg.access_token_sealed.data = sealed;
    cfg.access_token_sealed.len = (size_t)n;
    cfg.version = now_ms();
    cfg.updated_at = now_ms();
    uint8_t buf[1024];
    size_t len = kizuna__v1__channel_config__pack(&cfg, buf);
    if (kafka_produce(producer, "channels", channel, strlen(channel), buf, len, NULL) != 0 ||
        kafka_producer_flush(producer, 10000) != 0)
        die("cannot publish the ChannelConfig");
}

int main(int argc, char **argv)
{
    long count = 0, window = 30, disp_pid = 0, sim_pid = 0;
    int opt;
    bool create = false;
    while ((opt = getopt(argc, argv, "c:t:n:p:T:w:P:Q:C")) != -1) {
        switch (opt) {
        case 'c':
            channel = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        case 'p':
            sim_port = (int)strtol(optarg, NULL, 10);
            break;
        case 'T':
            topic = optarg;
            break;
        case 'w':
            window = strtol(optarg, NULL, 10);
            break;
        case 'P':
            disp_pid = strtol(optarg, NULL, 10);
            break;
        case 'Q':
            sim_pid = strtol(optarg, NULL, 10);
            break;
        case 'C':
            create = true;
            break;
        default:
            die("usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-w S]");
        }
    }
    const char *brokers = getenv("KAFKA_BROKERS") ? getenv("KAFKA_BROKERS") : "127.0.0.1:19092";
    char errstr[256];
    if (create && topic) {
        struct topic_spec spec = {.partitions = 12, .retention_ms = 3600000, .cleanup = "delete"};
        snprintf(spec.name, sizeof spec.name, "%s", topic);
        if (kafka_topics_apply(brokers, &spec, 1, 10000, errstr, sizeof errstr) < 0)
            die(errstr);
        return 0;
    }
    if (!channel || !token || !topic || count <= 0 || sim_port <= 0 || window <= 0)
        die("usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-w S]");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    producer = kafka_producer_new(brokers, "bench-loadgen", errstr, sizeof errstr);
    if (!producer)
        die(errstr);
    publish_channel();

    /* The dispatcher starts at "latest": probe until one arrives. */
    long long t0 = now_ms();
    for (;;) {
        request(KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, "Uprobe", NULL);
        kafka_producer_flush(producer, 5000);
        usleep(700 * 1000);
        json_t *st = sim_stats();
        long long seen = st ? stat_of(st, "profile", "requests") : 0;
        json_decref(st);
        if (seen > 0)
            break;
        if (now_ms() - t0 > 60000)
            die("the dispatcher never consumed a probe");
    }

    fprintf(stderr, "loadgen: producing %ld pushes to %s\n", count, topic);
    long long p0 = now_ms();
    long long d0 = proc_ticks(disp_pid), s0 = proc_ticks(sim_pid);
    for (long i = 0; i < count; i++) {
        char to[40], text[64];
        snprintf(to, sizeof to, "U%032ld", i);
        snprintf(text, sizeof text, "benchmark message %ld", i);
        request(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, to, text);
    }
    kafka_producer_flush(producer, 60000);
    fprintf(stderr, "loadgen: produced in %lld ms\n", now_ms() - p0);

    /* One sample a second until everything is accepted. */
    long cap = 3600, n = 0, stalled = 0;
    long long *acc = calloc((size_t)cap, sizeof *acc);
    long long last = -1;
    for (; n < cap; n++) {
        json_t *st = sim_stats();
        acc[n] = st ? stat_of(st, NULL, "accepted") : last;
        json_decref(st);
        printf("t=%lds accepted=%lld (+%lld)\n", n, acc[n], n ? acc[n] - acc[n - 1] : 0);
        fflush(stdout);
        if (acc[n] >= count)
            break;
        stalled = acc[n] == last ? stalled + 1 : 0;
        if (stalled >= 15) {
            fprintf(stderr, "loadgen: no progress for 15 s\n");
            break;
        }
        last = acc[n];
        sleep(1);
    }
    double busy_s = (double)(now_ms() - p0) / 1000.0, tck = (double)sysconf(_SC_CLK_TCK);
    double dcpu = 100.0 * (double)(proc_ticks(disp_pid) - d0) / tck / busy_s;
    double scpu = 100.0 * (double)(proc_ticks(sim_pid) - s0) / tck / busy_s;
    json_t *st = sim_stats();
    long long sent = stat_of(st, NULL, "accepted");
    long long first = 0, end = n;
    while (first < n && acc[first] == 0)
        first++;
    double seconds = (double)(end - first);
    double best = 0;
    for (long i = first; i + window <= end; i++) {
        double r = (double)(acc[i + window] - acc[i]) / (double)window;
        if (r > best)
            best = r;
    }
    printf("RESULT sent=%lld seconds=%.0f rate=%.0f steady_rate=%.0f window=%ld max_1s=%lld "
           "429=%lld duplicate=%lld dispatcher_cpu=%.0f%% sim_cpu=%.0f%% dispatcher_rss_mb=%.0f "
           "dispatcher_peak_rss_mb=%.0f\n",
           sent, seconds, seconds > 0 ? (double)(sent - acc[first]) / seconds : 0, best, window,
           stat_of(st, "push", "max_rate_1s"), stat_of(st, NULL, "too_many_requests"),
           stat_of(st, NULL, "duplicate"), dcpu, scpu, proc_mb(disp_pid, "VmRSS:"),
           proc_mb(disp_pid, "VmHWM:"));
    json_decref(st);
    free(acc);
    kafka_producer_free(&producer);
    curl_global_cleanup();
    return 0;
}
