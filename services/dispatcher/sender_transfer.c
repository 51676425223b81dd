/* The sender's HTTP calls: one libcurl easy handle per call on the
 * sender's multi handle (connection reuse, HTTP/2 where offered, TLS >= 1.2,
 * explicit timeouts), the few response headers the classifier needs, a body
 * capped at SENDER_BODY_CAP, and easy handles kept for reuse. Runs on the
 * sender's thread under sender.mu. */
#include "sender_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* --- calls ------------------------------------------------------------------------ */

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue): forget the previous one's. */
        t->line_request_id[0] = t->accepted_request_id[0] = t->retry_after[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"x-line-request-id", offsetof(struct transfer, line_request_id)},
        {"x-line-accepted-request-id", offsetof(struct transfer, accepted_request_id)},
        {"retry-after", offsetof(struct transfer, retry_after)},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t nl = strlen(wanted[i].name);
        if (len <= nl || buf[nl] != ':' || strncasecmp(buf, wanted[i].name, nl) != 0)
            continue;
        const char *v = buf + nl + 1, *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl >= SENDER_HEADER_MAX)
            vl = SENDER_HEADER_MAX - 1;
        char *dst = (char *)t + wanted[i].off;
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    size_t room = SENDER_BODY_CAP - t->body_len;
    size_t take = len < room ? len : room;
    if (take > 0) {
        /* Grown as needed: answers are usually a few hundred bytes, and a
         * 64 KiB block per call was a visible share of the sender's CPU. */
        if (t->body_len + take + 1 > t->body_cap) {
            size_t cap = t->body_cap ? t->body_cap : 1024;
            while (cap < t->body_len + take + 1)
                cap *= 2;
            if (cap > SENDER_BODY_CAP + 1)
                cap = SENDER_BODY_CAP + 1;
            char *b = realloc(t->body, cap);
            if (!b)
                return len; /* classified with what arrived so far */
            t->body = b;
            t->body_cap = cap;
        }
        memcpy(t->body + t->body_len, buf, take);
        t->body_len += take;
        t->body[t->body_len] = '\0';
    }
    return len;
}

/* The header list holds "Authorization: Bearer <access token>": each line
 * is wiped before curl frees it. */
static void sender_headers_free(struct curl_slist *headers)
{
    for (struct curl_slist *h = headers; h; h = h->next)
        if (h->data)
            crypto_wipe(h->data, strlen(h->data));
    curl_slist_free_all(headers);
}

void sender_transfer_free(struct sender *s, struct transfer *t)
{
    if (!t)
        return;
    if (t->prev || s->transfers == t) {
        if (t->prev)
            t->prev->next = t->next;
        else
            s->transfers = t->next;
        if (t->next)
            t->next->prev = t->prev;
        s->inflight--;
    }
    if (t->easy) {
        curl_multi_remove_handle(s->multi, t->easy);
        curl_easy_reset(t->easy);
        if (s->nidle < s->idle_cap)
            s->idle[s->nidle++] = t->easy;
        else
            curl_easy_cleanup(t->easy);
    }
    sender_headers_free(t->headers);
    t->headers = NULL;
    free(t->url);
    free(t->body);
    free(t);
}

/* Starts one HTTP call. headers are "Name: value" lines. Returns the
 * transfer (in the multi handle), or NULL. */
struct transfer *sender_transfer_start(struct sender *s, enum line_method method, const char *path,
                                       const char *body, size_t body_len, char *const *headers,
                                       size_t nheaders)
{
    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    size_t ul = strlen(s->base_url) + strlen(path) + 1;
    t->url = malloc(ul);
    t->easy = s->nidle > 0 ? s->idle[--s->nidle] : curl_easy_init();
    if (!t->url || !t->easy)
        goto fail;
    snprintf(t->url, ul, "%s%s", s->base_url, path);
    for (size_t i = 0; i < nheaders; i++) {
        struct curl_slist *h = curl_slist_append(t->headers, headers[i]);
        if (!h)
            goto fail;
        t->headers = h;
    }
    /* No "Expect: 100-continue" round trip before a body. */
    struct curl_slist *h = curl_slist_append(t->headers, "Expect:");
    if (!h)
        goto fail;
    t->headers = h;

    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kizuna-dispatcher/1");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    switch (method) {
    case LINE_GET:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
    case LINE_DELETE:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case LINE_POST:
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        break;
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
        goto fail;
    t->started_ns = clock_mono_ns();
    t->next = s->transfers;
    if (s->transfers)
        s->transfers->prev = t;
    s->transfers = t;
    s->inflight++;
    return t;
fail:
    sender_transfer_free(s, t);
    return NULL;
}

/* --- completions --------------------------------------------------------------- */

void sender_completions(struct sender *s)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (t->kind == TRANSFER_SEND)
            sender_send_done(s, t, rc, status);
        else
            sender_quota_sync_done(s, t, status);
        sender_transfer_free(s, t);
    }
}
