/* Classifies LINE's answers (rules in line_result.h) and copies what a
 * DeliveryResult needs out of them. Every string that came from the network
 * is capped and cut on a UTF-8 boundary; jansson has already rejected
 * invalid UTF-8 inside the JSON, and header values are reduced to visible
 * ASCII. */
#include "line_result.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"

#define HEADER_MAX 128
#define TEXT_MAX 1000
#define URL_MAX 2048

/* A copy of at most max bytes of s, cut on a UTF-8 boundary; NULL when out
 * of memory. s NULL gives "". */
static char *text_dup(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A header value as visible ASCII (anything else becomes '?'). */
static char *header_dup(const char *s)
{
    char *d = text_dup(s, HEADER_MAX);
    for (char *p = d; p && *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            *p = '?';
    return d;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Case-insensitive substring. */
static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && (hay[i] | 0x20) == (needle[i] | 0x20))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

const char *line_outcome_name(enum line_outcome o)
{
    switch (o) {
    case LINE_OUTCOME_SENT:
        return "sent";
    case LINE_OUTCOME_RETRY:
        return "retry";
    case LINE_OUTCOME_QUOTA_EXCEEDED:
        return "quota_exceeded";
    case LINE_OUTCOME_FINAL:
        return "final";
    }
    return "?";
}

void line_result_clear(struct line_result *r)
{
    if (!r)
        return;
    free(r->line_request_id);
    free(r->accepted_request_id);
    free(r->error_message);
    for (size_t i = 0; i < r->n_details; i++) {
        free(r->details[i].message);
        free(r->details[i].property);
    }
    free(r->details);
    free(r->details_ptr);
    for (size_t i = 0; i < r->n_sent; i++) {
        free(r->sent[i].id);
        free(r->sent[i].quote_token);
    }
    free(r->sent);
    free(r->sent_ptr);
    if (r->profile) {
        free(r->profile->user_id);
        free(r->profile->display_name);
        free(r->profile->picture_url);
        free(r->profile->status_message);
        free(r->profile->language);
        free(r->profile);
    }
    memset(r, 0, sizeof *r);
}

/* LINE's error body: message, and details[{message, property}]. */
static int error_body_read(const json_t *j, struct line_result *r)
{
    const char *msg = jstr(j, "message");
    if (msg) {
        free(r->error_message);
        if (!(r->error_message = text_dup(msg, TEXT_MAX)))
            return -1;
    }
    const json_t *det = json_object_get(j, "details");
    size_t n = json_is_array(det) ? json_array_size(det) : 0;
    if (n > LINE_RESULT_DETAILS_MAX)
        n = LINE_RESULT_DETAILS_MAX;
    if (n == 0)
        return 0;
    r->details = calloc(n, sizeof *r->details);
    r->details_ptr = calloc(n, sizeof *r->details_ptr);
    if (!r->details || !r->details_ptr)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(det, i);
        Kizuna__V1__ErrorDetail *ed = &r->details[r->n_details];
        kizuna__v1__error_detail__init(ed);
        ed->message = text_dup(json_is_object(d) ? jstr(d, "message") : NULL, TEXT_MAX);
        ed->property = text_dup(json_is_object(d) ? jstr(d, "property") : NULL, TEXT_MAX);
        r->details_ptr[r->n_details] = ed;
        r->n_details++;
        if (!ed->message || !ed->property)
            return -1;
    }
    return 0;
}

/* sentMessages[{id, quoteToken}] of a reply or push. */
static int sent_read(const json_t *j, struct line_result *r)
{
    const json_t *arr = json_object_get(j, "sentMessages");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n > LINE_RESULT_SENT_MAX)
        n = LINE_RESULT_SENT_MAX;
    if (n == 0)
        return 0;
    r->sent = calloc(n, sizeof *r->sent);
    r->sent_ptr = calloc(n, sizeof *r->sent_ptr);
    if (!r->sent || !r->sent_ptr)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(arr, i);
        if (!json_is_object(m))
            continue;
        Kizuna__V1__SentMessage *sm = &r->sent[r->n_sent];
        kizuna__v1__sent_message__init(sm);
        sm->id = text_dup(jstr(m, "id"), HEADER_MAX);
        sm->quote_token = text_dup(jstr(m, "quoteToken"), TEXT_MAX);
        r->sent_ptr[r->n_sent] = sm;
        r->n_sent++;
        if (!sm->id || !sm->quote_token)
            return -1;
    }
    return 0;
}

/* A profile needs userId and displayName. Returns 0, 1 if the body is not a
 * profile, -1 out of memory. */
static int profile_read(const json_t *j, struct line_result *r)
{
    const char *uid = jstr(j, "userId"), *name = jstr(j, "displayName");
    if (!uid || !*uid || !name)
        return 1;
    Kizuna__V1__Profile *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    kizuna__v1__profile__init(p);
    r->profile = p;
    p->user_id = text_dup(uid, HEADER_MAX);
    p->display_name = text_dup(name, TEXT_MAX);
    p->picture_url = text_dup(jstr(j, "pictureUrl"), URL_MAX);
    p->status_message = text_dup(jstr(j, "statusMessage"), TEXT_MAX);
    p->language = text_dup(jstr(j, "language"), 64);
    if (!p->user_id || !p->display_name || !p->picture_url || !p->status_message || !p->language)
        return -1;
    return 0;
}

__attribute__((format(printf, 2, 3))) static int message_set(struct line_result *r, const char *fmt,
                                                             ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(r->error_message);
    r->error_message = text_dup(buf, TEXT_MAX);
    return r->error_message ? 0 : -1;
}

static bool retry_key_kind(Kizuna__V1__SendKind k)
{
    return k == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST;
}

int line_result_classify(const struct line_response *resp, struct line_result *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!resp)
        return -1;
    struct line_result *r = out;
    json_t *j = NULL;
    r->retry_after_ns = -1;
    r->line_request_id = header_dup(resp->request_id);
    r->accepted_request_id = header_dup(resp->accepted_request_id);
    r->error_message = text_dup("", 0);
    if (!r->line_request_id || !r->accepted_request_id || !r->error_message)
        goto oom;

    if (resp->transport != LINE_TRANSPORT_OK) {
        static const char *const why[] = {
            [LINE_TRANSPORT_CONNECT] = "could not connect to LINE",
            [LINE_TRANSPORT_TIMEOUT] = "LINE did not answer in time",
            [LINE_TRANSPORT_BROKEN] = "the connection to LINE broke before the answer",
        };
        bool known =
            resp->transport >= LINE_TRANSPORT_CONNECT && resp->transport <= LINE_TRANSPORT_BROKEN;
        r->outcome = LINE_OUTCOME_RETRY;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED;
        r->ambiguous = resp->transport != LINE_TRANSPORT_CONNECT;
        int rc = known ? message_set(r, "%s", why[resp->transport])
                       : message_set(r, "transport error %d", (int)resp->transport);
        if (rc != 0)
            goto oom;
        return 0;
    }

    int st = resp->status;
    r->http_status = st;
    if (resp->body && resp->body_len > 0) {
        json_error_t jerr;
        j = json_loadb(resp->body, resp->body_len, 0, &jerr);
        if (j && !json_is_object(j)) {
            json_decref(j);
            j = NULL;
        }
    }
    if (st < 100 || st > 599) {
        r->outcome = LINE_OUTCOME_RETRY;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED;
        r->ambiguous = true;
        if (message_set(r, "invalid HTTP status %d", st) != 0)
            goto oom;
        goto done;
    }

    if (st >= 200 && st <= 299) {
        r->outcome = LINE_OUTCOME_SENT;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
        if (j && sent_read(j, r) != 0)
            goto oom;
        if (resp->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE) {
            /* A GET: an unreadable profile is fetched again, not reported. */
            int pr = j ? profile_read(j, r) : 1;
            if (pr < 0)
                goto oom;
            if (pr > 0) {
                r->outcome = LINE_OUTCOME_RETRY;
                r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED;
                if (message_set(r, "HTTP %d but the body is not a profile", st) != 0)
                    goto oom;
            }
        }
        goto done;
    }

    /* An error: LINE's message and details, when the body is LINE's JSON. */
    if (j) {
        if (error_body_read(j, r) != 0)
            goto oom;
    }
    if (!*r->error_message && message_set(r, "HTTP %d without LINE's error body", st) != 0)
        goto oom;

    if (st == 409 && (*r->accepted_request_id ||
                      (retry_key_kind(resp->kind) &&
                       contains_ci(r->error_message, "retry key is already accepted")))) {
        /* An earlier attempt with this retry key got through. */
        r->outcome = LINE_OUTCOME_SENT;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
        if (j && sent_read(j, r) != 0)
            goto oom;
        goto done;
    }
    if (st == 429 && contains_ci(r->error_message, "reached your monthly limit")) {
        r->outcome = LINE_OUTCOME_QUOTA_EXCEEDED;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED;
        goto done;
    }
    if (st == 429 || st == 408 || st >= 500) {
        r->outcome = LINE_OUTCOME_RETRY;
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED;
        /* A 5xx may come after LINE accepted the request. */
        r->ambiguous = st >= 500;
        int64_t wait;
        if (resp->retry_after &&
            backoff_retry_after_parse(resp->retry_after, resp->now_ns, &wait) == 0)
            r->retry_after_ns = wait;
        goto done;
    }
    r->outcome = LINE_OUTCOME_FINAL;
    r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    if (st == 400 && resp->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY &&
        contains_ci(r->error_message, "invalid reply token")) {
        r->status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_REPLY_TOKEN_EXPIRED;
        r->reply_token_invalid = true;
    }
    if (st < 400 && message_set(r, "unexpected HTTP status %d", st) != 0)
        goto oom;

done:
    json_decref(j);
    if (r->outcome == LINE_OUTCOME_SENT)
        r->error_message[0] = '\0'; /* a 409 counted as sent keeps no error */
    return 0;
oom:
    json_decref(j);
    line_result_clear(r);
    return -1;
}

void line_result_to_delivery(const struct line_result *r, Kizuna__V1__DeliveryResult *d)
{
    if (!r || !d)
        return;
    d->status = r->status;
    d->http_status = r->http_status;
    d->line_request_id = r->line_request_id ? r->line_request_id : (char *)"";
    d->accepted_request_id = r->accepted_request_id ? r->accepted_request_id : (char *)"";
    d->error_message = r->error_message ? r->error_message : (char *)"";
    d->n_error_details = r->n_details;
    d->error_details = r->n_details ? r->details_ptr : NULL;
    d->n_sent_messages = r->n_sent;
    d->sent_messages = r->n_sent ? r->sent_ptr : NULL;
    d->profile = r->profile;
}
