/* kizunactl's commands and the few helpers they share. main.c only
 * dispatches; each command lives in the file named after it. A command
 * returns the process exit code: 0 success, 1 failure, 2 usage error
 * (usage on stderr). argv[0] is the subcommand's own name. */
#ifndef KIZUNACTL_H
#define KIZUNACTL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

#define CTL_DEFAULT_BROKERS "127.0.0.1:19092"

struct topic_spec;

int ctl_token_issue(int argc, char **argv);
int ctl_topics_apply(int argc, char **argv);
int ctl_topics_check(int argc, char **argv);
int ctl_topics_tail(int argc, char **argv);
int ctl_stack_status(int argc, char **argv);

/* $KAFKA_BROKERS, else CTL_DEFAULT_BROKERS. */
const char *ctl_brokers_default(void);

/* Parses a whole decimal number within min..max. Returns 0 or -1. */
int ctl_parse_long(const char *text, long min, long max, long *out);

/* Prints "kizunactl: <what>" and the usage text on stderr; returns 2. */
int ctl_usage_error(const char *usage, const char *what);

/* Loads the topics manifest at path into specs (room for TOPICS_MAX).
 * Returns the number of topics, or -1 after printing every problem on
 * stderr. */
int ctl_manifest_load(const char *path, struct topic_spec *specs);

#endif
