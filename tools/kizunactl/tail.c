/* kizunactl topics tail: prints a topic's records as JSON lines, decoding
 * each value with the protobuf type the manifest names for the topic, so
 * that analysts can pipe events into jq without the .proto files. It joins
 * a throwaway consumer group and never commits, so tailing never moves a
 * service's offsets. A record that does not decode is printed with an
 * "error" field and its raw bytes in base64 instead of stopping the tail. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "clock.h"
#include "kizunactl.h"
#include "log.h"
#include "pbjson.h"
#include "shutdown.h"
#include "topics.h"

static const char usage[] =
    "usage: kizunactl topics tail TOPIC [--from-beginning] [--max N] [--timeout SEC]\n"
    "                             [--brokers B] [--manifest P]\n"
    "  Prints one JSON object per record:\n"
    "    {\"topic\",\"partition\",\"offset\",\"timestamp_ms\",\"key\",\"type\",\"value\"}\n"
    "  value is the record decoded as the manifest's message type; a record that\n"
    "  does not decode has \"value\":null, \"error\" and \"value_base64\" instead, and a\n"
    "  tombstone has \"value\":null. --max stops after N records, --timeout after SEC\n"
    "  seconds without a record; otherwise it runs until Ctrl-C.\n";

#define TAIL_POLL_MS 200
#define TAIL_CHECK_TIMEOUT_MS 10000

struct tail_state {
    const char *type;
    long count;
    bool write_failed;
};

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void tail_base64_write(FILE *out, const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        unsigned long v = (unsigned long)data[i] << 16;
        if (i + 1 < len)
            v |= (unsigned long)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        char quad[4] = {base64_alphabet[(v >> 18) & 63], base64_alphabet[(v >> 12) & 63],
                        i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=',
                        i + 2 < len ? base64_alphabet[v & 63] : '='};
        fwrite(quad, 1, sizeof quad, out);
    }
}

/* Writes bytes as a JSON string; invalid UTF-8 becomes U+FFFD and an
 * embedded NUL ends the string (keys are text by contract). */
static void tail_json_string_write(FILE *out, const void *data, size_t len)
{
    char *text = malloc(len + 1);
    size_t cap = len * 6 + 1;
    char *escaped = malloc(cap);
    if (!text || !escaped) {
        fputs("null", out);
        free(text);
        free(escaped);
        return;
    }
    if (len)
        memcpy(text, data, len);
    text[len] = '\0';
    log_json_escape(escaped, cap, text);
    fprintf(out, "\"%s\"", escaped);
    free(text);
    free(escaped);
}

static enum kafka_handled tail_record_print(void *ctx, const struct kafka_message *msg)
{
    struct tail_state *state = ctx;
    FILE *out = stdout;
    char *json = NULL;
    char err[256] = "";

    if (msg->value) {
        ProtobufCMessage *decoded =
            pbjson_decode_bytes(state->type, msg->value, msg->len, err, sizeof err);
        if (decoded) {
            json = pbjson_encode(decoded);
            if (!json)
                snprintf(err, sizeof err, "cannot encode %s as JSON", state->type);
            protobuf_c_message_free_unpacked(decoded, NULL);
        }
    }

    fputs("{\"topic\":", out);
    tail_json_string_write(out, msg->topic, strlen(msg->topic));
    fprintf(out, ",\"partition\":%d,\"offset\":%lld", (int)msg->partition, (long long)msg->offset);
    if (msg->timestamp_ms >= 0)
        fprintf(out, ",\"timestamp_ms\":%lld", (long long)msg->timestamp_ms);
    fputs(",\"key\":", out);
    if (msg->key)
        tail_json_string_write(out, msg->key, msg->keylen);
    else
        fputs("null", out);
    fputs(",\"type\":", out);
    tail_json_string_write(out, state->type, strlen(state->type));
    if (json) {
        fprintf(out, ",\"value\":%s", json);
    } else if (!msg->value) {
        fputs(",\"value\":null", out);
    } else {
        fputs(",\"value\":null,\"error\":", out);
        tail_json_string_write(out, err, strlen(err));
        fputs(",\"value_base64\":\"", out);
        tail_base64_write(out, msg->value, msg->len);
        fputs("\"", out);
    }
    fputs("}\n", out);
    free(json);
    /* Flushed per record so that `| jq` sees it live; a closed pipe ends the tail. */
    if (fflush(out) != 0 || ferror(out))
        state->write_failed = true;
    state->count++;
    return KAFKA_DONE;
}

int ctl_topics_tail(int argc, char **argv)
{
    static const struct option options[] = {
        {"from-beginning", no_argument, NULL, 'f'},
        {"max", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"brokers", required_argument, NULL, 'b'},
        {"manifest", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool from_beginning = false;
    long max = 0, timeout_s = 0;
    const char *brokers = ctl_brokers_default();
    const char *manifest = topics_default_path();
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            from_beginning = true;
            break;
        case 'n':
            if (ctl_parse_long(optarg, 1, 1000000000L, &max) < 0)
                return ctl_usage_error(usage, "--max must be a positive number");
            break;
        case 't':
            if (ctl_parse_long(optarg, 1, 86400, &timeout_s) < 0)
                return ctl_usage_error(usage, "--timeout must be 1..86400 seconds");
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'm':
            manifest = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_usage_error(usage, NULL);
        }
    }
    if (argc - optind != 1)
        return ctl_usage_error(usage, argc - optind < 1 ? "missing TOPIC" : "one TOPIC only");
    const char *topic = argv[optind];

    struct topic_spec specs[TOPICS_MAX];
    char err[2048];
    int n = ctl_manifest_load(manifest, specs);
    if (n < 0)
        return CTL_EXIT_FAIL;
    const struct topic_spec *spec = topics_find(specs, (size_t)n, topic);
    if (!spec) {
        fprintf(stderr, "kizunactl: topic '%s' is not in %s; known topics:", topic, manifest);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %s", specs[i].name);
        fputc('\n', stderr);
        return CTL_EXIT_USAGE;
    }
    if (!pbjson_find(spec->message))
        fprintf(stderr,
                "kizunactl: warning: message type %s is unknown to this build; "
                "records will be printed in base64\n",
                spec->message);

    /* The consumer would wait silently for a broker or topic that is not
     * there; say so up front instead. */
    if (kafka_topics_check(brokers, spec, 1, TAIL_CHECK_TIMEOUT_MS, err, sizeof err) < 0) {
        fprintf(stderr, "kizunactl: %s\n", err);
        return CTL_EXIT_FAIL;
    }

    /* A group of its own, so that tailing never takes partitions from a service. */
    char group[128], host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(group, sizeof group, "kizunactl-tail-%s-%ld-%ld", host, (long)getpid(),
             (long)time(NULL));
    const char *topics[] = {topic};
    struct kafka_consumer_options opts = {
        .brokers = brokers,
        .group = group,
        .topics = topics,
        .ntopics = 1,
        .from_beginning = from_beginning,
        .no_commit = true,
    };
    struct kafka_consumer *consumer = kafka_consumer_new(&opts, err, sizeof err);
    if (!consumer) {
        fprintf(stderr, "kizunactl: %s\n", err);
        return CTL_EXIT_FAIL;
    }
    shutdown_install();

    struct tail_state state = {.type = spec->message};
    int rc = CTL_EXIT_OK;
    long last = clock_mono_ms();
    while (!shutdown_requested() && !state.write_failed) {
        int polled = kafka_consumer_poll(consumer, TAIL_POLL_MS, tail_record_print, &state);
        if (polled < 0) {
            fputs("kizunactl: the consumer failed; see the log above\n", stderr);
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (polled > 0)
            last = clock_mono_ms();
        if (max > 0 && state.count >= max)
            break;
        if (timeout_s > 0 && clock_mono_ms() - last >= timeout_s * 1000)
            break;
    }
    kafka_consumer_close(consumer);
    kafka_consumer_free(&consumer);
    return rc;
}
