/* Parser for deploy/topics.manifest, the one place that declares Kizuna's
 * topics. The local stack, compose and Kubernetes all create topics from it,
 * so a typo here would silently diverge between environments: every line is
 * checked strictly and every problem is reported at once, as file:line. */
#include "topics.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_LINE_MAX 1024
#define TOPICS_COLUMNS 6
/* Kafka has no hard limit; anything above this is a typo, not a plan. */
#define TOPICS_PARTITIONS_MAX 10000

struct topics_errors {
    char *buf;
    size_t cap;
    size_t used;
    int count;
};

__attribute__((format(printf, 2, 3))) static void topics_error_add(struct topics_errors *errs,
                                                                   const char *fmt, ...)
{
    errs->count++;
    if (!errs->buf || errs->cap == 0 || errs->used + 1 >= errs->cap)
        return;
    if (errs->used > 0) {
        errs->buf[errs->used++] = '\n';
        errs->buf[errs->used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errs->buf + errs->used, errs->cap - errs->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    errs->used += (size_t)n;
    if (errs->used >= errs->cap)
        errs->used = errs->cap - 1;
}

/* Kafka's own rule for topic names: [a-zA-Z0-9._-], and not "." or "..". */
static bool topics_name_valid(const char *name)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    return true;
}

/* A fully-qualified protobuf name: dotted identifiers, at least one dot. */
static bool topics_message_valid(const char *type)
{
    bool dot = false;
    if (!isalpha((unsigned char)type[0]))
        return false;
    for (const char *p = type; *p; p++) {
        if (*p == '.') {
            if (p[1] == '\0' || p[1] == '.')
                return false;
            dot = true;
        } else if (!isalnum((unsigned char)*p) && *p != '_') {
            return false;
        }
    }
    return dot;
}

static bool topics_parse_ll(const char *text, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Splits line in place into at most max whitespace-separated columns; a '#'
 * starts a comment. Returns the number of columns found (may exceed max, in
 * which case only the first max are stored). */
static int topics_split(char *line, char **cols, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            break;
        char *start = p;
        while (*p && !isspace((unsigned char)*p) && *p != '#')
            p++;
        char saved = *p;
        *p = '\0';
        if (n < max)
            cols[n] = start;
        n++;
        if (saved == '\0' || saved == '#')
            break;
        p++;
    }
    return n;
}

static bool topics_copy(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* Checks one manifest line's columns and fills spec. Returns true if valid. */
static bool topics_parse_line(char **cols, int ncols, const char *path, int lineno,
                              struct topic_spec *spec, struct topics_errors *errs)
{
    int before = errs->count;
    long long v;

    if (ncols != TOPICS_COLUMNS) {
        topics_error_add(errs,
                         "%s:%d: expected %d columns (name partitions retention_ms cleanup key "
                         "message_type), found %d",
                         path, lineno, TOPICS_COLUMNS, ncols);
        return false;
    }
    memset(spec, 0, sizeof *spec);
    if (!topics_copy(spec->name, sizeof spec->name, cols[0]))
        topics_error_add(errs, "%s:%d: topic name longer than %zu characters", path, lineno,
                         sizeof spec->name - 1);
    else if (!topics_name_valid(cols[0]))
        topics_error_add(errs, "%s:%d: topic name '%s' may only use [A-Za-z0-9._-]", path, lineno,
                         cols[0]);

    if (!topics_parse_ll(cols[1], &v))
        topics_error_add(errs, "%s:%d: partitions '%s' is not a number", path, lineno, cols[1]);
    else if (v < 1 || v > TOPICS_PARTITIONS_MAX)
        topics_error_add(errs, "%s:%d: partitions must be 1..%d, not %lld", path, lineno,
                         TOPICS_PARTITIONS_MAX, v);
    else
        spec->partitions = (int)v;

    /* 0 would make the broker delete every record at once: never intended. */
    if (!topics_parse_ll(cols[2], &v))
        topics_error_add(errs, "%s:%d: retention_ms '%s' is not a number", path, lineno, cols[2]);
    else if (v != -1 && v < 1)
        topics_error_add(errs, "%s:%d: retention_ms must be -1 (forever) or positive, not %lld",
                         path, lineno, v);
    else
        spec->retention_ms = v;

    if (strcmp(cols[3], "delete") != 0 && strcmp(cols[3], "compact") != 0)
        topics_error_add(errs, "%s:%d: cleanup must be 'delete' or 'compact', not '%s'", path,
                         lineno, cols[3]);
    else
        topics_copy(spec->cleanup, sizeof spec->cleanup, cols[3]);

    if (!topics_copy(spec->key, sizeof spec->key, cols[4]))
        topics_error_add(errs, "%s:%d: key longer than %zu characters", path, lineno,
                         sizeof spec->key - 1);

    if (!topics_copy(spec->message, sizeof spec->message, cols[5]))
        topics_error_add(errs, "%s:%d: message type longer than %zu characters", path, lineno,
                         sizeof spec->message - 1);
    else if (!topics_message_valid(cols[5]))
        topics_error_add(errs,
                         "%s:%d: message type '%s' is not a fully-qualified protobuf name "
                         "(e.g. kizuna.v1.WebhookEvent)",
                         path, lineno, cols[5]);

    return errs->count == before;
}

int topics_load(const char *path, struct topic_spec *specs, size_t cap, char *errstr, size_t errcap)
{
    struct topics_errors errs = {.buf = errstr, .cap = errcap};
    int lines[TOPICS_MAX];
    size_t limit = cap < TOPICS_MAX ? cap : TOPICS_MAX;
    size_t n = 0;
    bool too_many = false;

    if (errstr && errcap > 0)
        errstr[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        topics_error_add(&errs, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }

    char line[TOPICS_LINE_MAX];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            topics_error_add(&errs, "%s:%d: line longer than %d bytes", path, lineno,
                             TOPICS_LINE_MAX - 2);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        char *cols[TOPICS_COLUMNS];
        int ncols = topics_split(line, cols, TOPICS_COLUMNS);
        if (ncols == 0)
            continue;

        struct topic_spec spec;
        if (!topics_parse_line(cols, ncols, path, lineno, &spec, &errs))
            continue;
        bool duplicate = false;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(specs[i].name, spec.name) == 0) {
                topics_error_add(&errs, "%s:%d: duplicate topic '%s' (first on line %d)", path,
                                 lineno, spec.name, lines[i]);
                duplicate = true;
                break;
            }
        }
        if (duplicate)
            continue;
        if (n >= limit) {
            if (!too_many)
                topics_error_add(&errs, "%s:%d: too many topics (at most %zu)", path, lineno,
                                 limit);
            too_many = true;
            continue;
        }
        lines[n] = lineno;
        specs[n++] = spec;
    }
    if (ferror(f))
        topics_error_add(&errs, "%s: read error: %s", path, strerror(errno));
    fclose(f);

    if (errs.count == 0 && n == 0)
        topics_error_add(&errs, "%s: no topics declared", path);
    return errs.count > 0 ? -1 : (int)n;
}

const char *topics_default_path(void)
{
    const char *env = getenv("KIZUNA_TOPICS_MANIFEST");
    return env && *env ? env : "deploy/topics.manifest";
}

const struct topic_spec *topics_find(const struct topic_spec *specs, size_t n, const char *name)
{
    for (size_t i = 0; specs && name && i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}
