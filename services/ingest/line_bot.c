/* One call to LINE's bot info endpoint, for the registry's ownership check.
 * Registrations are rare, so each call opens its own easy handle: nothing
 * is shared between admin threads and nothing outlives the call. */
#include "line_bot.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"

#define LINE_BOT_PATH "/v2/bot/info"

struct line_bot {
    char url[600]; /* base + LINE_BOT_PATH */
};

struct sink {
    char buf[LINE_BOT_BODY_CAP];
    size_t len;
    bool overflow;
    int retry_after_s;
};

struct line_bot *line_bot_new(const char *base_url, char *errstr, size_t errcap)
{
    if (!base_url || !*base_url) {
        snprintf(errstr, errcap, "no LINE base URL");
        return NULL;
    }
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    struct line_bot *lb = calloc(1, sizeof *lb);
    if (!lb) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    if (n + sizeof LINE_BOT_PATH > sizeof lb->url) {
        snprintf(errstr, errcap, "LINE base URL too long");
        free(lb);
        return NULL;
    }
    memcpy(lb->url, base_url, n);
    memcpy(lb->url + n, LINE_BOT_PATH, sizeof LINE_BOT_PATH);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(errstr, errcap, "curl_global_init failed");
        free(lb);
        return NULL;
    }
    return lb;
}

void line_bot_free(struct line_bot **lb)
{
    if (!lb || !*lb)
        return;
    free(*lb);
    *lb = NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct sink *s = ctx;
    size_t n = size * nmemb;
    if (n > sizeof s->buf - 1 - s->len) {
        s->overflow = true;
        return 0; /* ends the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

/* Retry-After in seconds (LINE sends it with 429); dates are ignored. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct sink *s = ctx;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        long v = 0;
        size_t i = sizeof name - 1;
        while (i < n && data[i] == ' ')
            i++;
        size_t digits = 0;
        while (i < n && data[i] >= '0' && data[i] <= '9' && digits < 6) {
            v = v * 10 + (data[i++] - '0');
            digits++;
        }
        if (digits > 0 && v >= 1)
            s->retry_after_s = (int)(v > 3600 ? 3600 : v);
    }
    return n;
}

/* Frees a header list after wiping every line (one carries the token). */
static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        crypto_wipe(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static enum line_bot_result answer_read(const struct sink *s, struct line_bot_answer *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(s->buf, s->len, JSON_REJECT_DUPLICATES, &jerr);
    const char *uid = json_string_value(json_object_get(root, "userId"));
    enum line_bot_result r = LINE_BOT_BAD_ANSWER;
    if (!uid || !*uid) {
        snprintf(out->error, sizeof out->error, "LINE's bot info has no userId");
    } else if (strlen(uid) > LINE_BOT_USER_ID_MAX) {
        snprintf(out->error, sizeof out->error, "LINE's userId is too long");
    } else {
        memcpy(out->user_id, uid, strlen(uid) + 1);
        r = LINE_BOT_OK;
    }
    json_decref(root);
    return r;
}

enum line_bot_result line_bot_user_id(struct line_bot *lb, const char *access_token,
                                      struct line_bot_answer *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_s = LINE_BOT_RETRY_AFTER_S;
    struct sink *s = calloc(1, sizeof *s);
    CURL *e = curl_easy_init();
    struct curl_slist *headers = NULL;
    enum line_bot_result r = LINE_BOT_UNAVAILABLE;
    if (!s || !e) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto out;
    }
    char auth[32 + 4096];
    int alen = snprintf(auth, sizeof auth, "Authorization: Bearer %s", access_token);
    if (alen < 0 || (size_t)alen >= sizeof auth) {
        crypto_wipe(auth, sizeof auth);
        r = LINE_BOT_UNAUTHORIZED;
        snprintf(out->error, sizeof out->error, "access token too long");
        goto out;
    }
    headers = curl_slist_append(headers, auth);
    crypto_wipe(auth, sizeof auth);
    if (!headers) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_URL, lb->url);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)LINE_BOT_CONNECT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)LINE_BOT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kizuna-ingest/1");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->http_status);
    if (s->overflow) {
        r = LINE_BOT_BAD_ANSWER;
        snprintf(out->error, sizeof out->error, "LINE's answer is over %d bytes",
                 LINE_BOT_BODY_CAP);
    } else if (rc != CURLE_OK) {
        out->http_status = 0;
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    } else if (out->http_status == 200) {
        r = answer_read(s, out);
    } else if (out->http_status == 401) {
        r = LINE_BOT_UNAUTHORIZED;
        snprintf(out->error, sizeof out->error, "LINE answered 401");
    } else if (out->http_status == 429 || out->http_status >= 500) {
        if (s->retry_after_s > 0)
            out->retry_after_s = s->retry_after_s;
        snprintf(out->error, sizeof out->error, "LINE answered %ld", out->http_status);
    } else if (out->http_status >= 400) {
        r = LINE_BOT_REFUSED;
        snprintf(out->error, sizeof out->error, "LINE answered %ld", out->http_status);
    } else {
        r = LINE_BOT_BAD_ANSWER;
        snprintf(out->error, sizeof out->error, "LINE answered %ld", out->http_status);
    }
out:
    headers_free(headers);
    if (e)
        curl_easy_cleanup(e);
    if (s)
        crypto_wipe(s, sizeof *s);
    free(s);
    return r;
}
