/* The check every service applies to its LINE base URL at start-up. */
#ifndef KIZUNA_LINE_BASE_URL_H
#define KIZUNA_LINE_BASE_URL_H

#include <stddef.h>

/* Checks a LINE API base URL: https://, or http:// to a loopback host
 * only (127.0.0.0/8, localhost, [::1]), since the access tokens go in
 * clear over http. Returns 0, or -1 with the reason in errstr. Pure; any
 * thread. */
int line_base_url_check(const char *url, char *errstr, size_t errcap);

#endif
