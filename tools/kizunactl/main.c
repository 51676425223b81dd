/* kizunactl, the operator's CLI: tokens, topics, stack status. This file
 * only dispatches "kizunactl <group> <command> ..." to the command's file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kafka_security.h"
#include "kizunactl.h"
#include "log.h"

static const char usage[] =
    "usage: kizunactl <command> [options]\n"
    "  token issue --tenant T --role admin|operator|viewer|deployment --ttl 1h [--subject S]\n"
    "  topics apply [--manifest P] [--brokers B] [--timeout SEC]\n"
    "  topics check [--manifest P] [--brokers B] [--timeout SEC]\n"
    "  topics tail TOPIC [--from-beginning] [--max N] [--timeout SEC] [--brokers B] [--manifest "
    "P]\n"
    "  stack status\n"
    "Brokers default to $KAFKA_BROKERS, else " CTL_DEFAULT_BROKERS "; the manifest to\n"
    "$KIZUNA_TOPICS_MANIFEST, else deploy/topics.manifest. $KIZUNA_LOG_LEVEL sets how\n"
    "much library logging reaches stderr (default error). Kafka TLS and SASL come from\n"
    "the services' variables: $KAFKA_SECURITY_PROTOCOL, $KAFKA_SASL_MECHANISM,\n"
    "$KAFKA_SASL_USERNAME, $KAFKA_SASL_PASSWORD, $KAFKA_SSL_CA_LOCATION, ...\n";

struct ctl_command {
    const char *group;
    const char *name;
    int (*run)(int argc, char **argv);
    bool kafka; /* talks to the brokers: needs the TLS and SASL settings */
};

static const struct ctl_command commands[] = {
    {"token", "issue", ctl_token_issue, false},  {"topics", "apply", ctl_topics_apply, true},
    {"topics", "check", ctl_topics_check, true}, {"topics", "tail", ctl_topics_tail, true},
    {"stack", "status", ctl_stack_status, true},
};

static void ctl_config_report(void *rctx, const char *name, const char *reason)
{
    (void)rctx;
    fprintf(stderr, "kizunactl: %s: %s\n", name, reason);
}

/* The Kafka commands reach the brokers as the services do: TLS and SASL
 * from the same variables, checked the same way (common/kafka_security.h).
 * Returns 0, or CTL_EXIT_USAGE after printing every problem. */
static int ctl_kafka_security_load(void)
{
    static struct kafka_security security;
    struct config_entry table[KAFKA_SECURITY_ENTRIES];
    size_t n = kafka_security_entries(&security, table);
    char errbuf[2048];
    int errors = config_load(table, n, errbuf, sizeof errbuf);
    if (errors > 0)
        fprintf(stderr, "kizunactl: invalid configuration:\n%s", errbuf);
    else
        errors = kafka_security_check(&security, ctl_config_report, NULL);
    if (errors > 0)
        return CTL_EXIT_USAGE;
    kafka_security_set(&security);
    return 0;
}

int main(int argc, char **argv)
{
    /* A CLI's stdout and stderr are for people: only errors by default. */
    int level = log_level_parse(getenv("KIZUNA_LOG_LEVEL"));
    log_init("kizunactl", level < 0 ? LOG_ERROR : (enum log_level)level);

    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        fputs(usage, stdout);
        return CTL_EXIT_OK;
    }
    if (argc < 3)
        return ctl_usage_error(usage, argc < 2 ? "missing command" : "missing subcommand");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].group) == 0 && strcmp(argv[2], commands[i].name) == 0) {
            if (commands[i].kafka) {
                int rc = ctl_kafka_security_load();
                if (rc != 0)
                    return rc;
            }
            return commands[i].run(argc - 2, argv + 2);
        }

    char what[160];
    snprintf(what, sizeof what, "unknown command '%s %s'", argv[1], argv[2]);
    return ctl_usage_error(usage, what);
}
