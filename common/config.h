/* Configuration from the environment through one declarative table per
 * service. Every error is collected and reported at once; the caller exits
 * with code 2 (CONFIG_EXIT). The effective config can be logged with secrets
 * redacted. Called from main() before any thread starts. */
#ifndef KIZUNA_CONFIG_H
#define KIZUNA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_EXIT 2
#define CONFIG_KEY_LEN 32 /* bytes of a CONFIG_KEY: an AES-256 / HMAC-SHA256 key */

enum config_type {
    CONFIG_STRING, /* dest: const char ** (points into environ or default) */
    CONFIG_SECRET, /* like STRING, but never logged */
    CONFIG_INT,    /* dest: long *, checked against min..max */
    CONFIG_PORT,   /* dest: long *, 1..65535 */
    CONFIG_BOOL,   /* dest: int *, accepts true/false/1/0/yes/no */
    CONFIG_ENUM,   /* dest: int *, the index in words of the value (case-sensitive) */
    CONFIG_KEY,    /* dest: struct config_key *, 64 hex characters; never logged.
                    * def "" makes it optional (set stays false when unset) */
};

/* A secret key read as hex. The caller wipes bytes once it has copied them. */
struct config_key {
    uint8_t bytes[CONFIG_KEY_LEN];
    bool set;
};

struct config_entry {
    const char *name; /* environment variable */
    enum config_type type;
    const char *def; /* default as text; NULL means required */
    void *dest;
    long min, max; /* CONFIG_INT only; both 0 means unbounded */
    const char *help;
    const char *const *words; /* CONFIG_ENUM only: the allowed values, NULL-terminated */
};

/* Reads every entry. Returns 0, or the number of errors; each error is one
 * line in errbuf ("NAME: reason\n"), all of them, truncated to errcap. */
int config_load(const struct config_entry *table, size_t n, char *errbuf, size_t errcap);

/* Logs the effective config at info level, secrets as "[redacted]". */
void config_log(const struct config_entry *table, size_t n);

/* Loads, and on error logs every problem and exits with CONFIG_EXIT. */
void config_load_or_exit(const struct config_entry *table, size_t n);

#endif
