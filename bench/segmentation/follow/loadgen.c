/* The follow benchmark's driver (bench/segmentation/follow/run.sh builds and
 * runs it; not a test). It publishes a ChannelConfig for a fresh channel on
 * `channels`, then produces follow WebhookEvents for distinct users to
 * `line.webhook` (as ingest would: key "<channel>:<user>", envelope, LINE
 * timestamp, reply token, webhookEventId) at a fixed rate, open loop, and
 * reads `friend.events` at the same time. For every FriendAdded it finds the
 * follow by its webhookEventId and takes the latency from the moment the
 * follow was due to be produced (so a loadgen that falls behind counts
 * against the result, not for it), and again from the broker's ack of the
 * follow (when it is on line.webhook: what is left is segmentation's part,
 * its relay, and the read of friend.events). A warm-up follow is sent first and waited
 * for, so that segmentation knows the channel and its consumers hold their
 * partitions; then -w seconds at the rate are sent and not counted (the
 * broker's JIT and the database's caches warm up), then -s seconds are
 * measured. It prints one line per second and:
 *   RESULT rate=R sent=N added=A seconds=S p50_ms=.. p90_ms=.. p99_ms=..
 *          p999_ms=.. max_ms=.. ack_p50_ms=.. ack_p99_ms=.. ack_max_ms=..
 *          seg_cpu=C% pg_cpu=C% kafka_cpu=C%
 *          loadgen_cpu=C% other_cpu=C%
 * CPU is per cent of one core over the run (first follow to last
 * FriendAdded); other_cpu is the rest of the machine (a large figure marks a
 * run disturbed by other work).
 *
 * usage: loadgen -c CHANNEL -r RATE -s SECONDS [-w WARM_SECONDS] [-S SEG_PID] [-G PG_PID]
 *                [-K KAFKA_PID]
 * environment: KAFKA_BROKERS */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"

#define TENANT "bench"
#define WARMUP_ID 0xffffffffu

static char channel[32];
static long rate = 2000, seconds = 30, warm_seconds = 10;
static long seg_pid, pg_pid, kafka_pid;
static struct kafka_producer *producer;

/* Per follow: when it was due (ns), when the broker acknowledged it (ns;
 * the follow is on line.webhook from then), and when its FriendAdded was
 * read (ns; 0 until seen). */
static int64_t *due_ns;
static _Atomic int64_t *ack_ns;
static int64_t *seen_ns;
static long total;    /* follows sent, warm-up phase included */
static long measured; /* the first index that counts */
static atomic_long added;
static atomic_bool warm;
static atomic_bool stop;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- /proc (as bench/dispatcher/loadgen.c) ------------------------------------------- */

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
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

/* --- producing ------------------------------------------------------------------------ */

/* The broker's ack of follow number (intptr_t)arg. */
static void follow_acked(void *arg, bool acked)
{
    intptr_t i = (intptr_t)arg;
    if (acked && i >= 0 && i < total)
        atomic_store(&ack_ns[i], now_ns());
}

/* index >= 0: a measured follow, its ack timed; -1: untimed. */
static void produce(const char *topic, const char *key, const void *buf, size_t len, long index)
{
    for (int i = 0; i < 1000; i++) {
        int rc = index >= 0 ? kafka_produce_notify(producer, topic, key, strlen(key), buf, len,
                                                   follow_acked, (void *)(intptr_t)index)
                            : kafka_produce(producer, topic, key, strlen(key), buf, len, NULL);
        if (rc == 0)
            return;
        usleep(1000); /* the local queue is full: let it drain */
    }
    fprintf(stderr, "loadgen: cannot produce to %s: %s\n", topic, kafka_produce_error());
    exit(1);
}

static void channel_publish(void)
{
    char event_id[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = TENANT;
    env.channel_id = channel;
    env.occurred_at = wall_ms();
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    cfg.envelope = &env;
    cfg.channel_id = channel;
    cfg.tenant_id = TENANT;
    cfg.name = "follow benchmark";
    cfg.timezone = "Asia/Tokyo";
    cfg.version = 1;
    cfg.updated_at = wall_ms();
    uint8_t buf[512];
    size_t len = kizuna__v1__channel_config__pack(&cfg, buf);
    produce("channels", channel, buf, len, -1);
}

/* One follow of user number i (WARMUP_ID: the warm-up). */
static void follow_produce(unsigned i)
{
    char user[40], weid[40], token[40], key[80], event_id[37];
    snprintf(user, sizeof user, "U%032x", i);
    snprintf(weid, sizeof weid, "01BENCH%s%010u", channel + strlen(channel) - 6, i);
    snprintf(token, sizeof token, "rt%030u", i);
    snprintf(key, sizeof key, "%s:%s", channel, user);
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    int64_t ts = wall_ms();
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = TENANT;
    env.channel_id = channel;
    env.occurred_at = ts;
    Kizuna__V1__Source src = KIZUNA__V1__SOURCE__INIT;
    src.type = KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER;
    src.user_id = user;
    Kizuna__V1__FollowDetail fd = KIZUNA__V1__FOLLOW_DETAIL__INIT;
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    we.envelope = &env;
    we.destination = "U8e742f61d673b39c7fff3cecb7536ef0";
    we.webhook_event_id = weid;
    we.timestamp = ts;
    we.mode = KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE;
    we.source = &src;
    we.reply_token = token;
    we.type = "follow";
    we.received_at = ts;
    we.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    we.follow = &fd;
    uint8_t buf[1024];
    size_t len = kizuna__v1__webhook_event__pack(&we, buf);
    produce("line.webhook", key, buf, len, i == WARMUP_ID ? -1 : (long)i);
}

/* --- reading friend.events ---------------------------------------------------------------- */

static enum kafka_handled added_handle(void *ctx, const struct kafka_message *msg)
{
    (void)ctx;
    int64_t t = now_ns();
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    if (!ev)
        return KAFKA_DONE;
    if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED && ev->envelope &&
        strcmp(ev->envelope->channel_id, channel) == 0) {
        const char *weid = ev->added->webhook_event_id;
        size_t n = strlen(weid);
        unsigned i = n >= 10 ? (unsigned)strtoul(weid + n - 10, NULL, 10) : WARMUP_ID;
        if (i == WARMUP_ID) {
            atomic_store(&warm, true);
        } else if (i < (unsigned)total && seen_ns[i] == 0 && due_ns[i] != 0) {
            seen_ns[i] = t;
            atomic_fetch_add(&added, 1);
        }
    }
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static void *reader_main(void *arg)
{
    struct kafka_consumer *c = arg;
    while (!atomic_load(&stop)) {
        if (kafka_consumer_poll(c, 100, added_handle, NULL) < 0) {
            fprintf(stderr, "loadgen: poll of friend.events failed\n");
            exit(1);
        }
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1e6;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:r:s:w:S:G:K:")) != -1) {
        switch (opt) {
        case 'c':
            snprintf(channel, sizeof channel, "%s", optarg);
            break;
        case 'r':
            rate = strtol(optarg, NULL, 10);
            break;
        case 's':
            seconds = strtol(optarg, NULL, 10);
            break;
        case 'w':
            warm_seconds = strtol(optarg, NULL, 10);
            break;
        case 'S':
            seg_pid = strtol(optarg, NULL, 10);
            break;
        case 'G':
            pg_pid = strtol(optarg, NULL, 10);
            break;
        case 'K':
            kafka_pid = strtol(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: loadgen -c CHANNEL -r RATE -s SECONDS [-S pid] [-G pid] "
                            "[-K pid]\n");
            return 2;
        }
    }
    const char *brokers = getenv("KAFKA_BROKERS");
    if (!channel[0] || strlen(channel) < 6 || rate <= 0 || seconds <= 0 || warm_seconds < 0 ||
        !brokers) {
        fprintf(stderr, "loadgen: -c CHANNEL (>= 6 chars), -r, -s and KAFKA_BROKERS needed\n");
        return 2;
    }
    measured = rate * warm_seconds;
    total = measured + rate * seconds;
    due_ns = calloc((size_t)total, sizeof *due_ns);
    ack_ns = calloc((size_t)total, sizeof *ack_ns);
    seen_ns = calloc((size_t)total, sizeof *seen_ns);
    char errstr[512], group[96];
    producer = kafka_producer_new(brokers, "bench-seg-follow", errstr, sizeof errstr);
    if (!due_ns || !ack_ns || !seen_ns || !producer) {
        fprintf(stderr, "loadgen: %s\n", producer ? "out of memory" : errstr);
        return 1;
    }
    snprintf(group, sizeof group, "bench-seg-follow-%s", channel);
    const char *topics[] = {"friend.events"};
    struct kafka_consumer_options co = {.brokers = brokers,
                                        .group = group,
                                        .topics = topics,
                                        .ntopics = 1,
                                        .from_beginning = true,
                                        .no_commit = true};
    struct kafka_consumer *reader = kafka_consumer_new(&co, errstr, sizeof errstr);
    if (!reader) {
        fprintf(stderr, "loadgen: %s\n", errstr);
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, reader_main, reader);

    channel_publish();
    kafka_producer_flush(producer, 10000);
    /* Warm-up: one follow, again every 2 s, until its FriendAdded arrives. */
    int64_t w0 = now_ns();
    while (!atomic_load(&warm)) {
        if ((now_ns() - w0) / 1000000000 > 120) {
            fprintf(stderr, "loadgen: no FriendAdded for the warm-up follow within 120 s\n");
            return 1;
        }
        follow_produce(WARMUP_ID);
        kafka_producer_flush(producer, 10000);
        for (int k = 0; k < 20 && !atomic_load(&warm); k++)
            usleep(100 * 1000);
    }
    printf("warm: segmentation answered the warm-up follow after %.1f s\n",
           (double)(now_ns() - w0) / 1e9);
    fflush(stdout);

    long long s0 = 0, g0 = 0, k0 = 0, l0 = 0, m0 = 0;
    int64_t begin = now_ns(), start = begin, next_report = begin + 1000000000;
    long last_added = 0;
    for (long i = 0; i < total; i++) {
        int64_t due = begin + (int64_t)((double)i * 1e9 / (double)rate);
        int64_t t;
        while ((t = now_ns()) < due) {
            int64_t gap = due - t;
            if (gap > 200000)
                usleep((useconds_t)(gap / 2000));
        }
        if (i == measured) {
            /* The measured part starts: CPU from here. */
            s0 = proc_ticks(seg_pid);
            g0 = tree_ticks(pg_pid);
            k0 = proc_ticks(kafka_pid);
            l0 = proc_ticks(getpid());
            m0 = machine_busy_ticks();
            start = due;
            printf("measuring from here (%ld warm-up follows sent)\n", i);
        }
        due_ns[i] = due;
        follow_produce((unsigned)i);
        if (t >= next_report) {
            long a = atomic_load(&added);
            printf("t=%2lds produced=%ld added=%ld (+%ld)\n", (long)((t - begin) / 1000000000),
                   i + 1, a, a - last_added);
            fflush(stdout);
            last_added = a;
            next_report += 1000000000;
        }
    }
    int64_t produced_at = now_ns();
    /* Drain: until every follow was answered, or nothing moved for 15 s. */
    long seen = atomic_load(&added);
    int64_t moved = now_ns();
    while (seen < total && now_ns() - moved < 15000000000LL) {
        usleep(100 * 1000);
        long a = atomic_load(&added);
        if (a != seen) {
            seen = a;
            moved = now_ns();
        }
    }
    int64_t end = now_ns();
    long long s1 = proc_ticks(seg_pid), g1 = tree_ticks(pg_pid), k1 = proc_ticks(kafka_pid),
              l1 = proc_ticks(getpid()), m1 = machine_busy_ticks();
    atomic_store(&stop, true);
    pthread_join(th, NULL);

    /* Two clocks: from when the follow was due (the loadgen's producer and
     * its linger included), and from the broker's ack of it (the follow is
     * on line.webhook: segmentation's part and the read of friend.events). */
    int64_t *sorted = malloc((size_t)total * sizeof *sorted);
    int64_t *from_ack = malloc((size_t)total * sizeof *from_ack);
    long n = 0, na = 0;
    int64_t last = start;
    for (long i = measured; i < total; i++) {
        if (seen_ns[i] == 0)
            continue;
        sorted[n++] = seen_ns[i] - due_ns[i];
        int64_t a = atomic_load(&ack_ns[i]);
        if (a > 0)
            from_ack[na++] = seen_ns[i] > a ? seen_ns[i] - a : 0;
        if (seen_ns[i] > last)
            last = seen_ns[i]; /* the run: first follow to the last FriendAdded */
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp64);
    qsort(from_ack, (size_t)na, sizeof *from_ack, cmp64);
    (void)end;
    double secs = (double)(last - start) / 1e9, tick = (double)sysconf(_SC_CLK_TCK);
    double cpu = secs > 0 ? 100.0 / (tick * secs) : 0;
    double seg = (double)(s1 - s0) * cpu, pg = (double)(g1 - g0) * cpu,
           kaf = (double)(k1 - k0) * cpu, lg = (double)(l1 - l0) * cpu,
           all = (double)(m1 - m0) * cpu;
    printf("RESULT rate=%ld sent=%ld added=%ld seconds=%.1f produce_seconds=%.1f p50_ms=%.1f "
           "p90_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f ack_p50_ms=%.1f ack_p99_ms=%.1f "
           "ack_max_ms=%.1f seg_cpu=%.0f%% pg_cpu=%.0f%% kafka_cpu=%.0f%% loadgen_cpu=%.0f%% "
           "other_cpu=%.0f%%\n",
           rate, total - measured, n, secs, (double)(produced_at - start) / 1e9,
           pct(sorted, n, 0.50), pct(sorted, n, 0.90), pct(sorted, n, 0.99), pct(sorted, n, 0.999),
           n ? (double)sorted[n - 1] / 1e6 : 0.0, pct(from_ack, na, 0.50), pct(from_ack, na, 0.99),
           na ? (double)from_ack[na - 1] / 1e6 : 0.0, seg, pg, kaf, lg, all - seg - pg - kaf - lg);
    free(from_ack);
    free(sorted);
    kafka_consumer_close(reader);
    kafka_consumer_free(&reader);
    kafka_producer_flush(producer, 10000);
    kafka_producer_free(&producer);
    free(due_ns);
    free((void *)ack_ns);
    free(seen_ns);
    return n == total - measured ? 0 : 1;
}
