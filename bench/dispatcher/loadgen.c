/* The dispatcher benchmark's driver (bench/dispatcher/run.sh builds and runs
 * it; not a test). For each of K channels it registers the channel in the
 * simulator, sets the simulator's rate limit and quota, publishes the
 * channel's ChannelConfig (the token sealed under KIZUNA_DATA_KEY, as ingest
 * seals it) and, once the dispatcher knows the channel, sets the same limit
 * through the admin API (PATCH /v1/channels/{id}/limits). It then waits
 * until the dispatcher consumes the benchmark topic, produces N requests
 * round-robin over the channels (pushes to distinct users with distinct
 * texts, or multicasts to M distinct users each), and reads the simulator's
 * counters once a second until every request was accepted (or nothing moves
 * for 15 s). It prints one line per second and a RESULT line:
 *   RESULT mode=push channels=K sent=N seconds=S rate=R steady_rate=R30
 *          recipients_rate=RR max_1s=M limit=L 429=T duplicate=D conflict=C
 *          dispatcher_cpu=C% sim_cpu=C% pg_cpu=C% kafka_cpu=C% loadgen_cpu=C%
 *          other_cpu=C% dispatcher_rss_mb=M dispatcher_peak_rss_mb=P sim_rss_mb=S
 * where steady_rate is the mean over the best window (-w, default 30 s) of
 * full seconds, max_1s the simulator's highest count in any sliding second
 * on any one channel, 429 every rate-limited or over-quota answer, and CPU
 * is per cent of one core from the first request produced to the last one
 * accepted; other_cpu is what the whole machine used beyond the processes
 * named (other helpers' work: a large figure marks a disturbed run).
 *
 * usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-k CHANNELS]
 *                [-L LIMIT] [-B BURST] [-M RECIPIENTS] [-a ADMIN_PORT] [-w WINDOW_S]
 *                [-P DISPATCHER_PID] [-Q SIM_PID] [-G POSTGRES_PID] [-K KAFKA_PID]
 *        loadgen -C -T TOPIC        (creates the topic, 12 partitions, 1 h)
 * Channel i is CHANNEL with "-i" appended (when -k > 1), token TOKEN-i.
 * -L sets the endpoint's limit (req/s) in both the simulator and the
 * dispatcher (0: leave LINE's defaults); -B the dispatcher's burst (0: its
 * default). -M > 0 sends multicasts of M recipients instead of pushes.
 * environment: KAFKA_BROKERS, KIZUNA_DATA_KEY, KIZUNA_JWT_KEY */
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "auth.h"
#include "crypto.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "topics.h"

#define TENANT "bench"
/* The profile the consuming probes fetch: a LINE user id, as the dispatcher
 * accepts in a URL path (U and 32 lowercase hex digits). */
#define PROBE_USER "U0000000000000000000000000000be01"
#define MAX_CHANNELS 64
#define QUOTA_BIG 1000000000LL /* per month: the quota path runs, never binds */

static const char *topic;
static int sim_port, admin_port;
static struct kafka_producer *producer;
static char channels[MAX_CHANNELS][72], tokens[MAX_CHANNELS][128];
static int nch = 1;
static long limit, burst, recipients;
static char *jwt;

/* --- /proc ------------------------------------------------------------------ */

/* utime + stime of pid in clock ticks, and its parent; 0 if unknown. */
static long long proc_ticks_ppid(long pid, long *ppid)
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
    long pp = 0;
    if (p && sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &pp, &utime,
                    &stime) == 3) {
        if (ppid)
            *ppid = pp;
        return utime + stime;
    }
    return 0;
}

static long long proc_ticks(long pid)
{
    return pid > 0 ? proc_ticks_ppid(pid, NULL) : 0;
}

/* pid and its children (PostgreSQL: the postmaster and its backends). */
static long long tree_ticks(long root)
{
    if (root <= 0)
        return 0;
    long long sum = proc_ticks(root);
    DIR *dir = opendir("/proc");
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        long pp = 0;
        if (*end || pid <= 0)
            continue;
        long long t = proc_ticks_ppid(pid, &pp);
        if (pp == root)
            sum += t;
    }
    if (dir)
        closedir(dir);
    return sum;
}

/* Busy ticks of the whole machine (all cores), from /proc/stat. */
static long long machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    long long v[10] = {0};
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return 0;
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* all but idle and iowait */
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

/* --- HTTP ------------------------------------------------------------------- */

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

/* One call; returns the HTTP status (0 on a transport error) and the body
 * in *out (caller frees; may be NULL). */
static long http(const char *method, int port, const char *path, const char *body, char **out)
{
    char url[256], auth[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct sink s = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (jwt && port == admin_port) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", jwt);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = s.buf;
    else
        free(s.buf);
    return status;
}

/* GET /_sim/stats; NULL if the simulator does not answer. */
static json_t *sim_stats(void)
{
    char *body = NULL;
    json_t *j = NULL;
    if (http("GET", sim_port, "/_sim/stats", NULL, &body) == 200 && body)
        j = json_loads(body, 0, NULL);
    free(body);
    return j;
}

static long long stat_of(json_t *st, const char *ch, const char *endpoint, const char *field)
{
    json_t *v = ch ? json_object_get(
                         json_object_get(
                             json_object_get(json_object_get(json_object_get(st, "channels"), ch),
                                             "endpoints"),
                             endpoint),
                         field)
                   : json_object_get(st, field);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* --- Kafka ------------------------------------------------------------------ */

static void produce(const char *channel, const Kizuna__V1__SendRequest *req)
{
    static uint8_t *buf;
    static size_t cap;
    size_t len = kizuna__v1__send_request__get_packed_size(req);
    if (len > cap) {
        free(buf);
        cap = len * 2;
        buf = malloc(cap);
        if (!buf)
            die("out of memory");
    }
    kizuna__v1__send_request__pack(req, buf);
    while (kafka_produce(producer, topic, channel, strlen(channel), buf, len, NULL) != 0)
        usleep(5000); /* the local queue is full: let it drain */
}

static void request(const char *channel, Kizuna__V1__SendKind kind, const char *to, char **recips,
                    size_t nrecips, const char *text)
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
    req.to = (char *)(to ? to : "");
    req.recipients = recips;
    req.n_recipients = nrecips;
    req.origin_type = "bench";
    char *msgs[1] = {msg};
    if (text) {
        snprintf(msg, sizeof msg, "{\"type\":\"text\",\"text\":\"%s\"}", text);
        req.n_messages_json = 1;
        req.messages_json = msgs;
    }
    produce(channel, &req);
}

static void publish_channel(const char *channel, const char *token)
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
    cfg.monthly_quota = QUOTA_BIG;
    cfg.version = now_ms();
    cfg.updated_at = now_ms();
    uint8_t buf[1024];
    size_t len = kizuna__v1__channel_config__pack(&cfg, buf);
    if (kafka_produce(producer, "channels", channel, strlen(channel), buf, len, NULL) != 0)
        die("cannot publish the ChannelConfig");
}

/* --- set-up ------------------------------------------------------------------- */

static const char *endpoint(void)
{
    return recipients > 0 ? "multicast" : "push";
}

static void sim_setup(int i)
{
    char body[512], path[160];
    snprintf(body, sizeof body, "{\"channel_id\":\"%.71s\",\"access_token\":\"%.127s\"}",
             channels[i], tokens[i]);
    long st = http("POST", sim_port, "/_sim/channels", body, NULL);
    if (st != 201 && st != 200)
        die("the simulator refused a channel");
    char rate[96] = "";
    if (limit > 0)
        snprintf(rate, sizeof rate, "\"rate_limits\":{\"%s\":%ld},", endpoint(), limit);
    snprintf(body, sizeof body, "{%s\"quota\":{\"type\":\"limited\",\"value\":%lld}}", rate,
             QUOTA_BIG);
    snprintf(path, sizeof path, "/_sim/channels/%.71s/limits", channels[i]);
    if (http("PUT", sim_port, path, body, NULL) != 200)
        die("the simulator refused the limits");
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%.71s\",\"user_id\":\"" PROBE_USER "\",\"display_name\":\"Probe\"}",
             channels[i]);
    if (http("POST", sim_port, "/_sim/users", body, NULL) / 100 != 2)
        die("the simulator refused the probe user");
}

/* The dispatcher answers 404 until it has read the channel's config. */
static void dispatcher_limits(int i)
{
    if (limit <= 0 && burst <= 0)
        return;
    long lim = limit > 0 ? limit : (recipients > 0 ? 200 : 2000);
    char body[256], path[160];
    if (burst > 0)
        snprintf(body, sizeof body, "{\"%s\":{\"limit\":%ld,\"period_s\":1,\"burst\":%ld}}",
                 endpoint(), lim, burst);
    else
        snprintf(body, sizeof body, "{\"%s\":%ld}", endpoint(), lim);
    snprintf(path, sizeof path, "/v1/channels/%.71s/limits", channels[i]);
    long long t0 = now_ms();
    for (;;) {
        char *out = NULL;
        long st = http("PATCH", admin_port, path, body, &out);
        if (st == 200) {
            free(out);
            return;
        }
        if (st != 404 || now_ms() - t0 > 30000) {
            fprintf(stderr, "loadgen: PATCH %s: %ld %s\n", path, st, out ? out : "");
            die("the dispatcher refused the limits");
        }
        free(out);
        usleep(100 * 1000);
    }
}

int main(int argc, char **argv)
{
    long count = 0, window = 30, disp_pid = 0, sim_pid = 0, pg_pid = 0, kafka_pid = 0;
    const char *channel = NULL, *token = NULL;
    int opt;
    bool create = false;
    while ((opt = getopt(argc, argv, "c:t:n:p:T:w:P:Q:G:K:k:L:B:M:a:C")) != -1) {
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
        case 'a':
            admin_port = (int)strtol(optarg, NULL, 10);
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
        case 'G':
            pg_pid = strtol(optarg, NULL, 10);
            break;
        case 'K':
            kafka_pid = strtol(optarg, NULL, 10);
            break;
        case 'k':
            nch = (int)strtol(optarg, NULL, 10);
            break;
        case 'L':
            limit = strtol(optarg, NULL, 10);
            break;
        case 'B':
            burst = strtol(optarg, NULL, 10);
            break;
        case 'M':
            recipients = strtol(optarg, NULL, 10);
            break;
        case 'C':
            create = true;
            break;
        default:
            die("usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-k K] [-L L] "
                "[-M R] [-a ADMIN_PORT]");
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
    if (!channel || !token || !topic || count <= 0 || sim_port <= 0 || window <= 0 || nch < 1 ||
        nch > MAX_CHANNELS || recipients < 0 || recipients > 500 ||
        ((limit > 0 || burst > 0) && admin_port <= 0))
        die("usage: loadgen -c CHANNEL -t TOKEN -n COUNT -p SIM_PORT -T TOPIC [-k K] [-L L] "
            "[-M R] [-a ADMIN_PORT]");
    for (int i = 0; i < nch; i++) {
        if (nch == 1)
            snprintf(channels[i], sizeof channels[i], "%s", channel);
        else
            snprintf(channels[i], sizeof channels[i], "%s-%d", channel, i);
        snprintf(tokens[i], sizeof tokens[i], "%s-%d", token, i);
    }
    const char *jwt_key = getenv("KIZUNA_JWT_KEY");
    if (jwt_key)
        jwt =
            auth_token_issue(jwt_key, strlen(jwt_key), TENANT, "bench", "admin", 3600, time(NULL));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    producer = kafka_producer_new(brokers, "bench-loadgen", errstr, sizeof errstr);
    if (!producer)
        die(errstr);
    for (int i = 0; i < nch; i++) {
        sim_setup(i);
        publish_channel(channels[i], tokens[i]);
    }
    if (kafka_producer_flush(producer, 10000) != 0)
        die("cannot publish the ChannelConfigs");
    for (int i = 0; i < nch; i++)
        dispatcher_limits(i);

    /* The dispatcher starts at "latest": probe until one arrives. */
    long long t0 = now_ms();
    for (;;) {
        request(channels[0], KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, PROBE_USER, NULL, 0, NULL);
        kafka_producer_flush(producer, 5000);
        usleep(700 * 1000);
        json_t *st = sim_stats();
        long long seen = st ? stat_of(st, channels[0], "profile", "requests") : 0;
        json_decref(st);
        if (seen > 0)
            break;
        if (now_ms() - t0 > 60000)
            die("the dispatcher never consumed a probe");
    }

    fprintf(stderr, "loadgen: producing %ld %ss over %d channel(s) to %s\n", count, endpoint(), nch,
            topic);
    long long p0 = now_ms();
    long long d0 = proc_ticks(disp_pid), s0 = proc_ticks(sim_pid), g0 = tree_ticks(pg_pid),
              k0 = proc_ticks(kafka_pid), l0 = proc_ticks(getpid()), m0 = machine_busy_ticks();
    char **recips = NULL;
    if (recipients > 0) {
        recips = calloc((size_t)recipients, sizeof *recips);
        for (long r = 0; recips && r < recipients; r++)
            recips[r] = malloc(40);
        if (!recips || !recips[recipients - 1])
            die("out of memory");
    }
    for (long i = 0; i < count; i++) {
        const char *ch = channels[i % nch];
        char to[40], text[64];
        snprintf(text, sizeof text, "benchmark message %ld", i);
        if (recipients > 0) {
            for (long r = 0; r < recipients; r++)
                snprintf(recips[r], 40, "U%016ld%016ld", i, r);
            request(ch, KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST, NULL, recips,
                    (size_t)recipients, text);
        } else {
            snprintf(to, sizeof to, "U%032ld", i);
            request(ch, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, to, NULL, 0, text);
        }
        if (i % 20000 == 19999)
            kafka_producer_flush(producer, 60000); /* rather than spin on a full queue */
    }
    kafka_producer_flush(producer, 60000);
    fprintf(stderr, "loadgen: produced in %lld ms\n", now_ms() - p0);

    /* One sample a second until everything is accepted. */
    long cap = 3600, n = 0, stalled = 0;
    long long *acc = calloc((size_t)cap, sizeof *acc);
    long long last = -1;
    for (; n < cap; n++) {
        json_t *st = sim_stats();
        acc[n] = st ? stat_of(st, NULL, NULL, "accepted") : last;
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
#define PCT(t) (100.0 * (double)(t) / tck / busy_s)
    long long dt = proc_ticks(disp_pid) - d0, stt = proc_ticks(sim_pid) - s0,
              gt = tree_ticks(pg_pid) - g0, kt = proc_ticks(kafka_pid) - k0,
              lt = proc_ticks(getpid()) - l0, mt = machine_busy_ticks() - m0;
    json_t *st = sim_stats();
    long long sent = stat_of(st, NULL, NULL, "accepted");
    long long max1 = 0;
    for (int i = 0; i < nch; i++) {
        long long m = stat_of(st, channels[i], endpoint(), "max_rate_1s");
        if (m > max1)
            max1 = m;
    }
    long long first = 0, end = n;
    while (first < n && acc[first] == 0)
        first++;
    double seconds = (double)(end - first);
    double best = 0;
    if (end - first < window && end > first)
        window = end - first; /* a run shorter than the window: all of it */
    for (long i = first; i + window <= end; i++) {
        double r = (double)(acc[i + window] - acc[i]) / (double)window;
        if (r > best)
            best = r;
    }
    printf("RESULT mode=%s channels=%d sent=%lld seconds=%.0f rate=%.0f steady_rate=%.0f "
           "recipients_rate=%.0f window=%ld max_1s=%lld limit=%ld 429=%lld duplicate=%lld "
           "conflict=%lld dispatcher_cpu=%.0f%% sim_cpu=%.0f%% pg_cpu=%.0f%% kafka_cpu=%.0f%% "
           "loadgen_cpu=%.0f%% other_cpu=%.0f%% dispatcher_rss_mb=%.0f "
           "dispatcher_peak_rss_mb=%.0f sim_rss_mb=%.0f\n",
           endpoint(), nch, sent, seconds, seconds > 0 ? (double)(sent - acc[first]) / seconds : 0,
           best, best * (double)(recipients > 0 ? recipients : 1), window, max1,
           limit > 0 ? limit : (recipients > 0 ? 200 : 2000),
           stat_of(st, NULL, NULL, "too_many_requests"), stat_of(st, NULL, NULL, "duplicate"),
           stat_of(st, NULL, NULL, "conflict"), PCT(dt), PCT(stt), PCT(gt), PCT(kt), PCT(lt),
           PCT(mt - dt - stt - gt - kt - lt), proc_mb(disp_pid, "VmRSS:"),
           proc_mb(disp_pid, "VmHWM:"), proc_mb(sim_pid, "VmRSS:"));
    json_decref(st);
    free(acc);
    for (long r = 0; recips && r < recipients; r++)
        free(recips[r]);
    free(recips);
    free(jwt);
    kafka_producer_free(&producer);
    curl_global_cleanup();
    return 0;
}
