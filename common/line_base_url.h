/* The check every service applies to its LINE base URL at start-up. */
#ifndef KIZUNA_LINE_BASE_URL_H
#define KIZUNA_LINE_BASE_URL_H

#include <stddef.h>

/* Checks a LINE API base URL: https://, or http:// to a loopback host
 * (127.0.0.0/8, localhost, [::1]) or to one of plaintext_hosts (a comma
 * list of host names the deployment's operator names on purpose, such as a
 * simulator container on a private network: KIZUNA_LINE_PLAINTEXT_HOSTS;
 * NULL or "" for none), since the access tokens go in clear over http.
 * Returns 0, or -1 with the reason in errstr. Pure; any thread. */
int line_base_url_check(const char *url, const char *plaintext_hosts, char *errstr, size_t errcap);

/* The setting's name and meaning, for each service's config table. */
#define LINE_PLAINTEXT_HOSTS_ENV "KIZUNA_LINE_PLAINTEXT_HOSTS"
#define LINE_PLAINTEXT_HOSTS_HELP                                                                \
    "host names the LINE base URL may reach over plain http besides loopback (comma list, e.g. " \
    "line-sim for the simulator's container); tokens cross that network in clear"

#endif
