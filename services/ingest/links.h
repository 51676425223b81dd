/* GET /r/{token}: tracked-link redirects. A token signed with the link key
 * (common/link_token.h) answers 302 to its target and records a LinkClicked
 * event on `inbound`; anything else answers 400 and never redirects. */
#ifndef KIZUNA_INGEST_LINKS_H
#define KIZUNA_INGEST_LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "httpd.h"

struct links;
struct ackwait;

/* key (the link key) is copied. Main thread, at startup. Returns NULL +
 * errstr. */
struct links *links_new(const uint8_t key[CRYPTO_KEY_LEN], char *errstr, size_t errcap);
void links_free(struct links **l);

/* Before the body: true for GET and HEAD, else false with 405 (Allow: GET,
 * HEAD) in resp. Any worker thread. */
bool links_admit(const struct httpd_request *req, struct httpd_response *resp);

/* Answers one request for /r/{token}; token points into the request path.
 * A valid click's redirect is deferred (httpd_defer) until its event is
 * durable through aw (acked, or spooled past the ack budget), and comes even
 * if it is not. Any worker thread; never blocks on the broker. */
void links_handle(struct links *l, struct ackwait *aw, const struct httpd_request *req,
                  const char *token, struct httpd_response *resp);

#endif
