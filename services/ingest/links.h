/* GET /r/{token}: tracked-link redirects. A token signed with the link key
 * (common/link_token.h) answers 302 to its target and records a LinkClicked
 * event on `inbound`; anything else answers 400 and never redirects. */
#ifndef KIZUNA_INGEST_LINKS_H
#define KIZUNA_INGEST_LINKS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "httpd.h"

struct links;
struct spool;

/* key (the link key) is copied; spool is borrowed and must outlive links.
 * Main thread, at startup. Returns NULL + errstr. */
struct links *links_new(const uint8_t key[CRYPTO_KEY_LEN], struct spool *spool, int ack_budget_ms,
                        char *errstr, size_t errcap);
void links_free(struct links **l);

/* Answers one request for /r/{token}; token points into the request path.
 * Any worker thread. */
void links_handle(struct links *l, const struct httpd_request *req, const char *token,
                  struct httpd_response *resp);

#endif
