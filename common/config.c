/* Configuration from the environment through one declarative table per
 * service. Every entry is read even after an error, so an operator sees
 * every mistake in one run instead of fixing them one restart at a time.
 *
 * A variable that is set but empty counts as unset: compose files and
 * shells often write FOO= to mean "not configured". */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "log.h"

/* Longest value echoed back in an error message; enough to recognise it. */
#define CONFIG_ECHO_MAX 40
#define CONFIG_REASON_MAX 192
#define CONFIG_VALUE_MAX 1024

static const char *const bool_true[] = {"true", "1", "yes"};
static const char *const bool_false[] = {"false", "0", "no"};

/* Strict base-10 long: optional sign, digits, nothing else (no spaces). */
static int long_parse(const char *text, long *out)
{
    char *end;
    const char *digits = text + (text[0] == '-' || text[0] == '+');
    if (*digits < '0' || *digits > '9')
        return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int bool_parse(const char *text, int *out)
{
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, bool_true[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, bool_false[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* The allowed words of an enum as "a, b or c" for its error line. */
static void words_list(char *out, size_t cap, const char *const *words)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; words && words[i] && o + 1 < cap; i++) {
        const char *sep = i == 0 ? "" : words[i + 1] ? ", " : " or ";
        int w = snprintf(out + o, cap - o, "%s%s", sep, words[i]);
        if (w < 0)
            break;
        o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
    }
}

static int enum_parse(const char *text, const char *const *words, int *out)
{
    for (int i = 0; words && words[i]; i++)
        if (strcmp(text, words[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

/* A short, printable copy of a bad value for the error line, so that one
 * error stays one line whatever the environment held. */
static void echo_copy(char out[CONFIG_ECHO_MAX + 4], const char *text)
{
    size_t i = 0;
    for (; text[i] && i < CONFIG_ECHO_MAX; i++)
        out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    if (text[i]) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* Reads one entry into its dest. On error writes the reason (without the
 * name) and returns -1, leaving dest untouched. Values of CONFIG_SECRET are
 * never parsed, so they never appear in a reason. */
static int entry_load(const struct config_entry *e, char *reason, size_t cap)
{
    const char *text = getenv(e->name);
    const char *origin = "";
    char echo[CONFIG_ECHO_MAX + 4];
    long v;
    int b;

    if (e->type == CONFIG_KEY && (!text || !*text) && e->def && !*e->def) {
        ((struct config_key *)e->dest)->set = false; /* optional and unset */
        return 0;
    }
    if (!text || !*text) {
        text = e->def;
        origin = "default ";
    }
    if (!text) {
        snprintf(reason, cap, "required but not set");
        return -1;
    }
    echo_copy(echo, text);

    switch (e->type) {
    case CONFIG_STRING:
    case CONFIG_SECRET:
        *(const char **)e->dest = text;
        return 0;
    case CONFIG_INT:
        if (long_parse(text, &v) != 0) {
            snprintf(reason, cap, "%snot an integer (got \"%s\")", origin, echo);
            return -1;
        }
        if ((e->min != 0 || e->max != 0) && (v < e->min || v > e->max)) {
            snprintf(reason, cap, "%sout of range %ld..%ld (got \"%s\")", origin, e->min, e->max,
                     echo);
            return -1;
        }
        *(long *)e->dest = v;
        return 0;
    case CONFIG_PORT:
        if (long_parse(text, &v) != 0 || v < 1 || v > 65535) {
            snprintf(reason, cap, "%snot a port 1..65535 (got \"%s\")", origin, echo);
            return -1;
        }
        *(long *)e->dest = v;
        return 0;
    case CONFIG_BOOL:
        if (bool_parse(text, &b) != 0) {
            snprintf(reason, cap, "%snot a boolean: use true/false/1/0/yes/no (got \"%s\")", origin,
                     echo);
            return -1;
        }
        *(int *)e->dest = b;
        return 0;
    case CONFIG_ENUM: {
        if (enum_parse(text, e->words, &b) != 0) {
            char words[CONFIG_REASON_MAX / 2];
            words_list(words, sizeof words, e->words);
            snprintf(reason, cap, "%snot one of %s (got \"%s\")", origin, words, echo);
            return -1;
        }
        *(int *)e->dest = b;
        return 0;
    }
    case CONFIG_KEY: {
        /* The value is a secret: its length is said, never the value. */
        struct config_key *key = e->dest;
        uint8_t bytes[CONFIG_KEY_LEN];
        size_t len = strlen(text);
        if (len != 2 * CONFIG_KEY_LEN) {
            snprintf(reason, cap, "must be %d hex characters (got %zu characters)",
                     2 * CONFIG_KEY_LEN, len);
            return -1;
        }
        if (crypto_key_from_hex(text, bytes) != 0) {
            snprintf(reason, cap, "must be %d hex characters (got a non-hex character)",
                     2 * CONFIG_KEY_LEN);
            return -1;
        }
        memcpy(key->bytes, bytes, sizeof key->bytes);
        key->set = true;
        crypto_wipe(bytes, sizeof bytes);
        return 0;
    }
    }
    snprintf(reason, cap, "unknown config type %d", (int)e->type);
    return -1;
}

int config_load(const struct config_entry *table, size_t n, char *errbuf, size_t errcap)
{
    char reason[CONFIG_REASON_MAX];
    size_t o = 0;
    int errors = 0;

    if (errbuf && errcap > 0)
        errbuf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (entry_load(&table[i], reason, sizeof reason) == 0)
            continue;
        errors++;
        if (!errbuf || o + 1 >= errcap)
            continue;
        int w = snprintf(errbuf + o, errcap - o, "%s: %s\n", table[i].name, reason);
        if (w > 0)
            o += (size_t)w < errcap - o ? (size_t)w : errcap - o - 1;
    }
    return errors;
}

static void put(char *out, size_t cap, size_t *o, const char *s, size_t len)
{
    if (*o + len >= cap)
        len = cap - *o - 1;
    memcpy(out + *o, s, len);
    *o += len;
}

/* Services should declare connection strings as CONFIG_SECRET, but a URL
 * declared as CONFIG_STRING must still not leak its password: blank the
 * password in "scheme://user:password@host" and any "password=" pair.
 * Redacting too much is harmless; the last '@' is taken as the end of the
 * userinfo because passwords are often written with a raw '/' or '@'. */
static void redact_copy(char *out, size_t cap, const char *text)
{
    static const char mask[] = "[redacted]";
    size_t o = 0;
    const char *p = text;
    const char *scheme = strstr(text, "://");
    const char *at = scheme ? strrchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;

    while (*p && o + 1 < cap) {
        if (colon && p == colon + 1) {
            put(out, cap, &o, mask, sizeof mask - 1);
            p = at;
        } else if (strncasecmp(p, "password=", 9) == 0) {
            put(out, cap, &o, p, 9);
            put(out, cap, &o, mask, sizeof mask - 1);
            p += 9;
            p += strcspn(p, "& \t");
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

void config_log(const struct config_entry *table, size_t n)
{
    char value[CONFIG_VALUE_MAX];

    for (size_t i = 0; i < n; i++) {
        const struct config_entry *e = &table[i];
        const char *env = getenv(e->name);
        const char *source = env && *env ? "env" : "default";
        const char *str;

        switch (e->type) {
        case CONFIG_STRING:
            str = *(const char **)e->dest;
            if (str)
                redact_copy(value, sizeof value, str);
            else
                value[0] = '\0';
            break;
        case CONFIG_SECRET:
            str = *(const char **)e->dest;
            snprintf(value, sizeof value, "%s", str && *str ? "[redacted]" : "");
            break;
        case CONFIG_KEY:
            snprintf(value, sizeof value, "%s",
                     ((const struct config_key *)e->dest)->set ? "[redacted]" : "");
            break;
        case CONFIG_ENUM: {
            int word = *(const int *)e->dest;
            snprintf(value, sizeof value, "%s", e->words && word >= 0 ? e->words[word] : "?");
            break;
        }
        case CONFIG_INT:
        case CONFIG_PORT:
            snprintf(value, sizeof value, "%ld", *(const long *)e->dest);
            break;
        case CONFIG_BOOL:
            snprintf(value, sizeof value, "%s", *(const int *)e->dest ? "true" : "false");
            break;
        default:
            snprintf(value, sizeof value, "?");
            break;
        }
        log_info("config", "name", e->name, "value", value, "source", source);
    }
}

void config_load_or_exit(const struct config_entry *table, size_t n)
{
    char reason[CONFIG_REASON_MAX];
    char count[24];
    int errors = 0;

    for (size_t i = 0; i < n; i++) {
        if (entry_load(&table[i], reason, sizeof reason) == 0)
            continue;
        errors++;
        log_error("invalid configuration", "name", table[i].name, "error", reason, "help",
                  table[i].help);
    }
    if (errors == 0)
        return;
    snprintf(count, sizeof count, "%d", errors);
    log_error("configuration has errors, exiting", "errors", count);
    exit(CONFIG_EXIT);
}
