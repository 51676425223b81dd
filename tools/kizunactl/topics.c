/* kizunactl topics apply|check: creates the manifest's missing topics and
 * checks that they all exist. The local stack runs both right after the
 * broker opens its port, when it may still refuse topic creation (no broker
 * registered with the controller yet), so apply retries until --timeout. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "clock.h"
#include "kizunactl.h"
#include "topics.h"

static const char apply_usage[] =
    "usage: kizunactl topics apply [--manifest P] [--brokers B] [--timeout SEC]\n"
    "  Creates the manifest's topics that do not exist yet; never alters others.\n";
static const char check_usage[] =
    "usage: kizunactl topics check [--manifest P] [--brokers B] [--timeout SEC]\n"
    "  Exit 0 when the brokers answer and every manifest topic exists, else 1.\n";

struct topics_args {
    const char *manifest;
    const char *brokers;
    long timeout_s;
};

/* Returns -1 to continue, else the exit code. */
static int topics_args_parse(int argc, char **argv, const char *usage, struct topics_args *args)
{
    static const struct option options[] = {
        {"manifest", required_argument, NULL, 'm'},
        {"brokers", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    args->manifest = topics_default_path();
    args->brokers = ctl_brokers_default();
    args->timeout_s = 10;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            args->manifest = optarg;
            break;
        case 'b':
            args->brokers = optarg;
            break;
        case 't':
            if (ctl_parse_long(optarg, 1, 3600, &args->timeout_s) < 0)
                return ctl_usage_error(usage, "--timeout must be 1..3600 seconds");
            break;
        case 'h':
            fputs(usage, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_usage_error(usage, NULL);
        }
    }
    if (optind < argc)
        return ctl_usage_error(usage, "unexpected argument");
    return -1;
}

/* Parses the arguments and loads the manifest into specs. Returns -1 to
 * continue, with *n the number of topics, else the exit code. */
static int topics_prepare(int argc, char **argv, const char *usage, struct topics_args *args,
                          struct topic_spec *specs, int *n)
{
    int rc = topics_args_parse(argc, argv, usage, args);
    if (rc >= 0)
        return rc;
    *n = ctl_manifest_load(args->manifest, specs);
    return *n < 0 ? CTL_EXIT_FAIL : -1;
}

int ctl_topics_apply(int argc, char **argv)
{
    struct topics_args args;
    struct topic_spec specs[TOPICS_MAX];
    int n;
    int rc = topics_prepare(argc, argv, apply_usage, &args, specs, &n);
    if (rc >= 0)
        return rc;
    char err[2048];

    long deadline = clock_mono_ms() + args.timeout_s * 1000;
    int attempt = 0;
    for (;;) {
        long left = deadline - clock_mono_ms();
        if (left < 1000)
            left = 1000;
        int created =
            kafka_topics_apply(args.brokers, specs, (size_t)n, (int)left, err, sizeof err);
        attempt++;
        if (created >= 0) {
            printf("topics: %d created, %d already present on %s (%s)\n", created, n - created,
                   args.brokers, args.manifest);
            return CTL_EXIT_OK;
        }
        if (clock_mono_ms() + 1000 >= deadline) {
            fprintf(stderr, "kizunactl: topics apply failed after %d attempts in %ld s: %s\n",
                    attempt, args.timeout_s, err);
            return CTL_EXIT_FAIL;
        }
        fprintf(stderr, "kizunactl: topics apply: %s; retrying\n", err);
        struct timespec pause = {.tv_sec = 1};
        nanosleep(&pause, NULL);
    }
}

int ctl_topics_check(int argc, char **argv)
{
    struct topics_args args;
    struct topic_spec specs[TOPICS_MAX];
    int n;
    int rc = topics_prepare(argc, argv, check_usage, &args, specs, &n);
    if (rc >= 0)
        return rc;
    char err[2048];
    if (kafka_topics_check(args.brokers, specs, (size_t)n, (int)(args.timeout_s * 1000), err,
                           sizeof err) < 0) {
        fprintf(stderr, "kizunactl: %s\n", err);
        return CTL_EXIT_FAIL;
    }
    printf("topics: all %d present on %s\n", n, args.brokers);
    return CTL_EXIT_OK;
}
