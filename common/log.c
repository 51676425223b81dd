/* JSON-lines logging. One line is built in a bounded stack buffer and
 * written with a single write(2), so lines from threads never interleave
 * and a huge value cannot grow memory: it is truncated instead. */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "utf8.h"

#define LOG_LINE_MAX 8192

static char log_svc[64] = "kizuna";
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *svc, enum log_level min_level)
{
    if (svc)
        snprintf(log_svc, sizeof log_svc, "%s", svc);
    log_min = min_level;
}

int log_level_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

size_t log_json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    const unsigned char *end = (const unsigned char *)(s ? s + strlen(s) : s);
    for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
        char tmp[8];
        const char *piece = tmp;
        size_t plen;
        size_t seq = utf8_seq_len(p, (size_t)(end - p));
        if (seq == 0) {
            piece = "\\ufffd";
            plen = 6;
            seq = 1;
        } else if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            plen = 2;
        } else if (*p < 0x20) {
            plen = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
        } else {
            piece = (const char *)p;
            plen = seq;
        }
        if (o + plen >= cap)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        p += seq;
    }
    out[o] = '\0';
    return o;
}

/* Appends s whole or cut, always leaving room for the closing "}\n". */
static size_t append_raw(char *line, size_t o, const char *s)
{
    size_t n = strlen(s);
    size_t room = o < LOG_LINE_MAX - 3 ? LOG_LINE_MAX - 3 - o : 0;
    if (n > room)
        n = room;
    memcpy(line + o, s, n);
    return o + n;
}

/* A pair is written whole or not at all, so a line stays valid JSON: the
 * escaped key, its quotes and colon, and a value of at least "" or null
 * must fit, else the pair is dropped. Only the value itself is truncated. */
static size_t append_pair(char *line, size_t o, const char *key, const char *value)
{
    char k[256];
    size_t klen = log_json_escape(k, sizeof k, key);
    if (o + 2 + klen + 2 + 4 >= LOG_LINE_MAX - 2)
        return o;
    o = append_raw(line, o, ",\"");
    o = append_raw(line, o, k);
    o = append_raw(line, o, "\":");
    if (!value)
        return append_raw(line, o, "null");
    o = append_raw(line, o, "\"");
    o += log_json_escape(line + o, LOG_LINE_MAX - 3 - o, value);
    return append_raw(line, o, "\"");
}

void log_write(enum log_level level, const char *msg, ...)
{
    if (level < log_min || level > LOG_ERROR)
        return;
    char line[LOG_LINE_MAX];
    char ts[40];
    struct tm tm;
    int64_t now_ms = clock_wall_ms();
    time_t now_s = (time_t)(now_ms / 1000);
    gmtime_r(&now_s, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(now_ms % 1000));

    size_t o = append_raw(line, 0, "{\"ts\":\"");
    o = append_raw(line, o, ts);
    o = append_raw(line, o, "\"");
    o = append_pair(line, o, "level", level_names[level]);
    o = append_pair(line, o, "svc", log_svc);
    o = append_pair(line, o, "msg", msg);

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *value = va_arg(ap, const char *);
        o = append_pair(line, o, key, value);
    }
    va_end(ap);
    line[o++] = '}';
    line[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, o);
    (void)w;
}
