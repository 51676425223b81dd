/* JSON-lines logging on stderr: one object per line with ts, level, svc, msg
 * and any context pairs. Thread-safe; every thread may call it. Library logs
 * (librdkafka, libpq, libmicrohttpd) are routed here by their wrappers. */
#ifndef KIZUNA_LOG_H
#define KIZUNA_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the service name and the lowest level written. svc is copied. */
void log_init(const char *svc, enum log_level min_level);

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *name);

/* Writes one line. The variadic part is key/value string pairs ended by
 * NULL; a NULL value is written as JSON null. Values are escaped. Never pass
 * secrets or whole request bodies. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__, (const char *)0)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__, (const char *)0)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__, (const char *)0)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__, (const char *)0)

/* Appends s to out (capacity cap) as JSON string content, without quotes.
 * Invalid UTF-8 bytes become U+FFFD. Returns bytes written, always leaves
 * out NUL-terminated, truncates rather than overflow. Shared with json users. */
size_t log_json_escape(char *out, size_t cap, const char *s);

#endif
