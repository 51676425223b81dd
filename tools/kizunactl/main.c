/* kizunactl, the operator's CLI: tokens, topics, stack status. This file
 * only dispatches "kizunactl <group> <command> ..." to the command's file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "much library logging reaches stderr (default error).\n";

struct ctl_command {
    const char *group;
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct ctl_command commands[] = {
    {"token", "issue", ctl_token_issue},   {"topics", "apply", ctl_topics_apply},
    {"topics", "check", ctl_topics_check}, {"topics", "tail", ctl_topics_tail},
    {"stack", "status", ctl_stack_status},
};

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
        if (strcmp(argv[1], commands[i].group) == 0 && strcmp(argv[2], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);

    char what[160];
    snprintf(what, sizeof what, "unknown command '%s %s'", argv[1], argv[2]);
    return ctl_usage_error(usage, what);
}
