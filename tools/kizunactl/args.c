/* Small helpers shared by kizunactl's commands: defaults from the
 * environment, checked number parsing (no atoi), usage errors, the topics
 * manifest and the clock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kizunactl.h"
#include "topics.h"

const char *ctl_brokers_default(void)
{
    const char *env = getenv("KAFKA_BROKERS");
    return env && *env ? env : CTL_DEFAULT_BROKERS;
}

int ctl_parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    if (!text || !*text)
        return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ctl_usage_error(const char *usage, const char *what)
{
    if (what)
        fprintf(stderr, "kizunactl: %s\n", what);
    fputs(usage, stderr);
    return CTL_EXIT_USAGE;
}

int ctl_manifest_load(const char *path, struct topic_spec *specs)
{
    char err[2048];
    int n = topics_load(path, specs, TOPICS_MAX, err, sizeof err);
    if (n < 0)
        fprintf(stderr, "kizunactl: bad manifest:\n%s\n", err);
    return n;
}
