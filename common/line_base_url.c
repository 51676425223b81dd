/* Where a service may send LINE access tokens: LINE's base URL
 * (DISPATCHER_LINE_API_BASE, INGEST_LINE_API_BASE) must be https://, or
 * http:// to a loopback address (the simulator on this host) or to a host
 * the operator lists in KIZUNA_LINE_PLAINTEXT_HOSTS, since
 * the token travels in the Authorization header. Shared so that every
 * service that calls LINE refuses the same URLs. */
#include "line_base_url.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errstr.h"

/* 127.0.0.0/8, localhost or [::1], from host to end (exclusive). */
static bool loopback_host(const char *host, size_t n)
{
    char h[64];
    if (n == 0 || n >= sizeof h)
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
        return true;
    /* Four decimal octets, the first 127. */
    int octets = 0;
    const char *p = h;
    while (*p) {
        size_t digits = 0;
        int v = 0;
        while (p[digits] >= '0' && p[digits] <= '9' && digits < 3)
            v = v * 10 + (p[digits++] - '0');
        if (digits == 0 || v > 255 || (octets == 0 && v != 127))
            return false;
        octets++;
        p += digits;
        if (*p == '.' && octets < 4)
            p++;
        else if (*p)
            return false;
    }
    return octets == 4;
}

/* True when host[0..n) is one of list's comma-separated names (any case). */
static bool listed_host(const char *list, const char *host, size_t n)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && n > 0 && strncasecmp(p, host, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

int line_base_url_check(const char *url, const char *plaintext_hosts, char *errstr, size_t errcap)
{
    if (!url || !*url) {
        errstr_set(errstr, errcap, "empty");
        return -1;
    }
    if (strncmp(url, "https://", 8) == 0) {
        if (!url[8] || url[8] == '/') {
            errstr_set(errstr, errcap, "no host after https://");
            return -1;
        }
        return 0;
    }
    if (strncmp(url, "http://", 7) != 0) {
        errstr_set(errstr, errcap, "must start with https:// (or http:// to a loopback address)");
        return -1;
    }
    const char *host = url + 7;
    size_t n = strcspn(host, "/?#");
    /* The host ends at the port's colon (after a bracketed address's ']'). */
    const char *end = host + n;
    const char *colon = NULL;
    for (const char *p = host; p < end; p++)
        if (*p == ':' && (host[0] != '[' || (p > host && p[-1] == ']')))
            colon = p;
    size_t hl = colon ? (size_t)(colon - host) : n;
    if (colon) {
        const char *port = colon + 1;
        size_t pl = (size_t)(end - port);
        bool ok = pl >= 1 && pl <= 5;
        for (size_t i = 0; ok && i < pl; i++)
            ok = port[i] >= '0' && port[i] <= '9';
        if (!ok) {
            errstr_set(errstr, errcap, "not a port number after the host");
            return -1;
        }
    }
    if (!loopback_host(host, hl) && !listed_host(plaintext_hosts, host, hl)) {
        errstr_set(errstr, errcap,
                   "http:// is allowed only to a loopback address (127.0.0.0/8, localhost, "
                   "[::1]) or a host named in " LINE_PLAINTEXT_HOSTS_ENV
                   "; use https://, access tokens must not cross a network in clear");
        return -1;
    }
    return 0;
}
