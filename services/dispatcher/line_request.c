/* Builds LINE API calls from SendRequests. Bodies are assembled as text so
 * that rendered message objects reach LINE byte for byte; jansson only
 * validates them and escapes the strings we add. Every limit LINE enforces
 * on the request is checked here first, so a bad request fails fast as
 * INVALID with a precise reason instead of costing a call and a 400. */
#include "line_request.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "errstr.h"

#define PATH_ID_MAX 128
#define TOKEN_MAX 4096

/* --- a capped text buffer ------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom, too_big;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom || b->too_big)
        return;
    if (n > LINE_BODY_MAX - b->len) {
        b->too_big = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_lit(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* s as a JSON string. -1 if s is not valid UTF-8 (the buffer is unchanged). */
static int buf_jstr(struct buf *b, const char *s)
{
    json_t *js = json_string(s);
    if (!js)
        return -1;
    char *enc = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(js);
    if (!enc) {
        b->oom = true;
        return 0;
    }
    buf_lit(b, enc);
    free(enc);
    return 0;
}

/* --- checks ---------------------------------------------------------------------------- */

bool line_uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* An id that goes into a body as a JSON string without escaping: RFC 3986
 * unreserved characters. */
static int plain_id_check(const char *field, const char *s, char *errstr, size_t errcap)
{
    if (!s || !*s) {
        errstr_set(errstr, errcap, "%s: required", field);
        return -1;
    }
    size_t n = strlen(s);
    if (n > PATH_ID_MAX) {
        errstr_set(errstr, errcap, "%s: %zu characters, at most %d", field, n, PATH_ID_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~')) {
            errstr_set(errstr, errcap, "%s: character %zu is not allowed in a LINE id", field,
                       i + 1);
            return -1;
        }
    }
    return 0;
}

#define LINE_ID_HEX 32

bool line_id_valid(enum line_id_kind kind, const char *s)
{
    static const char *const prefixes[] = {
        [LINE_ID_USER] = "U",
        [LINE_ID_GROUP] = "C",
        [LINE_ID_ROOM] = "R",
        [LINE_ID_RICH_MENU] = "richmenu-",
    };
    if (!s || (unsigned)kind >= sizeof prefixes / sizeof prefixes[0])
        return false;
    size_t pl = strlen(prefixes[kind]);
    if (strncmp(s, prefixes[kind], pl) != 0 || strlen(s + pl) != LINE_ID_HEX)
        return false;
    for (const char *p = s + pl; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* An id that goes into a URL path: only the LINE id form the path names,
 * so that no word such as `all` and no `..` can reach another endpoint. */
static int path_id_check(const char *field, enum line_id_kind kind, const char *s, char *errstr,
                         size_t errcap)
{
    static const char *const forms[] = {
        [LINE_ID_USER] = "a user id (U and 32 lowercase hexadecimal digits)",
        [LINE_ID_GROUP] = "a group id (C and 32 lowercase hexadecimal digits)",
        [LINE_ID_ROOM] = "a room id (R and 32 lowercase hexadecimal digits)",
        [LINE_ID_RICH_MENU] = "a rich menu id (richmenu- and 32 lowercase hexadecimal digits)",
    };
    if (!s || !*s) {
        errstr_set(errstr, errcap, "%s: required", field);
        return -1;
    }
    if (line_id_valid(kind, s))
        return 0;
    errstr_set(errstr, errcap, "%s: not %s, as this call puts it in the URL path", field,
               forms[kind]);
    return -1;
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* text must be one JSON object (no trailing data, no duplicate keys). With
 * need_type, it must carry a "type" string, as every LINE message does. */
static int json_object_check(const char *field, const char *text, bool need_type, char *errstr,
                             size_t errcap)
{
    json_error_t jerr;
    json_t *j = json_loads(text ? text : "", JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j) {
        errstr_set(errstr, errcap, "%s: not valid JSON (line %d, column %d: %s)", field, jerr.line,
                   jerr.column, jerr.text);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(j)) {
        errstr_set(errstr, errcap, "%s: a JSON %s, not an object", field, json_type_name(j));
        rc = -1;
    } else if (need_type && !json_is_string(json_object_get(j, "type"))) {
        errstr_set(errstr, errcap, "%s: \"type\" missing or not a string", field);
        rc = -1;
    }
    json_decref(j);
    return rc;
}

static int messages_check(const Kizuna__V1__SendRequest *req, char *errstr, size_t errcap)
{
    if (req->n_messages_json == 0) {
        errstr_set(errstr, errcap, "messages_json: no messages; LINE needs 1 to %d",
                   LINE_MESSAGES_MAX);
        return -1;
    }
    if (req->n_messages_json > LINE_MESSAGES_MAX) {
        errstr_set(errstr, errcap, "messages_json: %zu messages; LINE accepts at most %d",
                   req->n_messages_json, LINE_MESSAGES_MAX);
        return -1;
    }
    for (size_t i = 0; i < req->n_messages_json; i++) {
        char field[48];
        snprintf(field, sizeof field, "messages_json[%zu]", i);
        if (json_object_check(field, req->messages_json[i], true, errstr, errcap) != 0)
            return -1;
    }
    return 0;
}

static int recipients_check(const Kizuna__V1__SendRequest *req, char *errstr, size_t errcap)
{
    if (req->n_recipients == 0) {
        errstr_set(errstr, errcap, "recipients: none; LINE needs 1 to %d user ids",
                   LINE_RECIPIENTS_MAX);
        return -1;
    }
    if (req->n_recipients > LINE_RECIPIENTS_MAX) {
        errstr_set(errstr, errcap, "recipients: %zu user ids; LINE accepts at most %d",
                   req->n_recipients, LINE_RECIPIENTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < req->n_recipients; i++) {
        if (!req->recipients[i] || !*req->recipients[i]) {
            errstr_set(errstr, errcap, "recipients[%zu]: empty user id", i);
            return -1;
        }
    }
    return 0;
}

/* LINE: at most one unit, ^[a-zA-Z0-9_]{1,30}$. */
static int units_check(const Kizuna__V1__SendRequest *req, char *errstr, size_t errcap)
{
    if (req->n_custom_aggregation_units > 1) {
        errstr_set(errstr, errcap, "custom_aggregation_units: %zu units; LINE accepts at most 1",
                   req->n_custom_aggregation_units);
        return -1;
    }
    for (size_t i = 0; i < req->n_custom_aggregation_units; i++) {
        const char *u = req->custom_aggregation_units[i];
        size_t n = u ? strlen(u) : 0;
        bool ok = n >= 1 && n <= 30;
        for (size_t k = 0; ok && k < n; k++)
            ok = (u[k] >= 'A' && u[k] <= 'Z') || (u[k] >= 'a' && u[k] <= 'z') ||
                 (u[k] >= '0' && u[k] <= '9') || u[k] == '_';
        if (!ok) {
            errstr_set(errstr, errcap,
                       "custom_aggregation_units[%zu]: must be 1 to 30 of A-Z, a-z, 0-9, _", i);
            return -1;
        }
    }
    return 0;
}

static int token_check(const char *token, char *errstr, size_t errcap)
{
    if (!token || !*token) {
        errstr_set(errstr, errcap, "access token: missing for the channel");
        return -1;
    }
    size_t n = strlen(token);
    if (n > TOKEN_MAX) {
        errstr_set(errstr, errcap, "access token: longer than %d characters", TOKEN_MAX);
        return -1;
    }
    /* Visible ASCII only: no header injection through a damaged secret. */
    for (size_t i = 0; i < n; i++) {
        if (token[i] < 0x21 || token[i] > 0x7e) {
            errstr_set(errstr, errcap,
                       "access token: contains a character not allowed in a header");
            return -1;
        }
    }
    return 0;
}

/* --- bodies ---------------------------------------------------------------------------- */

static void body_messages(struct buf *b, const Kizuna__V1__SendRequest *req)
{
    buf_lit(b, "\"messages\":[");
    for (size_t i = 0; i < req->n_messages_json; i++) {
        if (i)
            buf_lit(b, ",");
        buf_lit(b, req->messages_json[i]);
    }
    buf_lit(b, "]");
}

static int body_string_array(struct buf *b, const char *key, char **items, size_t n,
                             const char *field, char *errstr, size_t errcap)
{
    buf_lit(b, key);
    buf_lit(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_lit(b, ",");
        if (buf_jstr(b, items[i]) != 0) {
            errstr_set(errstr, errcap, "%s[%zu]: not valid UTF-8", field, i);
            return -1;
        }
    }
    buf_lit(b, "]");
    return 0;
}

static void body_options(struct buf *b, const Kizuna__V1__SendRequest *req, bool units)
{
    if (req->notification_disabled)
        buf_lit(b, ",\"notificationDisabled\":true");
    if (units && req->n_custom_aggregation_units > 0) {
        /* Checked by units_check: plain ASCII, nothing to escape. */
        buf_lit(b, ",\"customAggregationUnits\":[\"");
        buf_lit(b, req->custom_aggregation_units[0]);
        buf_lit(b, "\"]");
    }
}

/* --- building ---------------------------------------------------------------------------- */

const char *line_method_name(enum line_method m)
{
    switch (m) {
    case LINE_GET:
        return "GET";
    case LINE_POST:
        return "POST";
    case LINE_DELETE:
        return "DELETE";
    }
    return "?";
}

void line_request_clear(struct line_request *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->body);
    for (size_t i = 0; i < r->nheaders && i < LINE_REQUEST_HEADERS_MAX; i++) {
        if (r->headers[i]) {
            crypto_wipe(r->headers[i], strlen(r->headers[i])); /* Authorization */
            free(r->headers[i]);
        }
    }
    memset(r, 0, sizeof *r);
}

__attribute__((format(printf, 2, 3))) static char *str_printf(bool *oom, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        *oom = true;
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Decides whether a reply can use its token: 0 yes, 1 fall back to push,
 * LINE_REQUEST_EREPLY no (reason in errstr). */
static int reply_token_decide(const Kizuna__V1__SendRequest *req,
                              const struct line_request_opts *opts, char *errstr, size_t errcap)
{
    int64_t max_age =
        opts->reply_max_age_ms > 0 ? opts->reply_max_age_ms : LINE_REPLY_MAX_AGE_MS_DEFAULT;
    char why[128];
    if (opts->reply_token_used) {
        snprintf(why, sizeof why, "the reply token was already used");
    } else if (req->reply_token_issued_at <= 0) {
        snprintf(why, sizeof why, "the reply token has no issue time (reply_token_issued_at)");
    } else if (opts->now_ms - req->reply_token_issued_at > max_age) {
        snprintf(why, sizeof why, "the reply token is %lld ms old (limit %lld ms)",
                 (long long)(opts->now_ms - req->reply_token_issued_at), (long long)max_age);
    } else {
        return 0;
    }
    if (!req->allow_push_fallback) {
        errstr_set(errstr, errcap, "%s and push fallback is not allowed", why);
        return LINE_REQUEST_EREPLY;
    }
    if (!req->to || !*req->to) {
        errstr_set(errstr, errcap, "%s and push fallback has no `to`", why);
        return LINE_REQUEST_EREPLY;
    }
    return 1;
}

int line_request_build(const Kizuna__V1__SendRequest *req, const char *access_token,
                       const struct line_request_opts *opts, struct line_request *out, char *errstr,
                       size_t errcap)
{
    if (!out)
        return LINE_REQUEST_EINVAL;
    memset(out, 0, sizeof *out);
    if (!req || !opts) {
        errstr_set(errstr, errcap, "bad argument: request or options missing");
        return LINE_REQUEST_EINVAL;
    }
    if (token_check(access_token, errstr, errcap) != 0)
        return LINE_REQUEST_EINVAL;

    Kizuna__V1__SendKind kind = req->kind;
    bool fell_back = false;
    switch (kind) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY: {
        if (messages_check(req, errstr, errcap) != 0)
            return LINE_REQUEST_EINVAL;
        if (!req->reply_token || !*req->reply_token) {
            errstr_set(errstr, errcap, "reply_token: required for a reply");
            return LINE_REQUEST_EINVAL;
        }
        int d = reply_token_decide(req, opts, errstr, errcap);
        if (d < 0)
            return d;
        if (d == 1) {
            kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
            fell_back = true;
        }
        break;
    }
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        if (messages_check(req, errstr, errcap) != 0)
            return LINE_REQUEST_EINVAL;
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        break;
    default:
        errstr_set(errstr, errcap, "kind: %d is not a kind of send", (int)req->kind);
        return LINE_REQUEST_EINVAL;
    }

    bool retry_key = kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH ||
                     kind == KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST ||
                     kind == KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST ||
                     kind == KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST;
    if (retry_key && !line_uuid_valid(req->request_id)) {
        errstr_set(errstr, errcap,
                   "request_id: not a UUID (8-4-4-4-12 hex), which X-Line-Retry-Key needs");
        return LINE_REQUEST_EINVAL;
    }

    struct buf b = {0};
    bool oom = false, has_body = true;
    int rc = LINE_REQUEST_EINVAL;
    switch (kind) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY:
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/message/reply");
        out->rl_class = RATELIMIT_REPLY;
        buf_lit(&b, "{\"replyToken\":");
        if (buf_jstr(&b, req->reply_token) != 0) {
            errstr_set(errstr, errcap, "reply_token: not valid UTF-8");
            goto fail;
        }
        buf_lit(&b, ",");
        body_messages(&b, req);
        body_options(&b, req, false);
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH:
        if (plain_id_check("to", req->to, errstr, errcap) != 0 ||
            units_check(req, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/message/push");
        out->rl_class = RATELIMIT_PUSH;
        buf_lit(&b, "{\"to\":\"");
        buf_lit(&b, req->to); /* unreserved characters only: nothing to escape */
        buf_lit(&b, "\",");
        body_messages(&b, req);
        body_options(&b, req, true);
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
        if (recipients_check(req, errstr, errcap) != 0 || units_check(req, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/message/multicast");
        out->rl_class = RATELIMIT_MULTICAST;
        buf_lit(&b, "{");
        if (body_string_array(&b, "\"to\":", req->recipients, req->n_recipients, "recipients",
                              errstr, errcap) != 0)
            goto fail;
        buf_lit(&b, ",");
        body_messages(&b, req);
        body_options(&b, req, true);
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/message/broadcast");
        out->rl_class = RATELIMIT_BROADCAST;
        buf_lit(&b, "{");
        body_messages(&b, req);
        body_options(&b, req, false);
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST: {
        static const char *const keys[3] = {"recipient", "filter", "limit"};
        const char *vals[3] = {req->narrowcast_recipient_json, req->narrowcast_filter_json,
                               req->narrowcast_limit_json};
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/message/narrowcast");
        out->rl_class = RATELIMIT_NARROWCAST;
        buf_lit(&b, "{");
        body_messages(&b, req);
        for (int i = 0; i < 3; i++) {
            if (!vals[i] || !*vals[i])
                continue;
            char field[40];
            snprintf(field, sizeof field, "narrowcast_%s_json", keys[i]);
            if (json_object_check(field, vals[i], false, errstr, errcap) != 0)
                goto fail;
            buf_lit(&b, ",\"");
            buf_lit(&b, keys[i]);
            buf_lit(&b, "\":");
            buf_lit(&b, vals[i]);
        }
        body_options(&b, req, false);
        break;
    }
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
        if (path_id_check("to", LINE_ID_USER, req->to, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_GET;
        out->path = str_printf(&oom, "/v2/bot/profile/%s", req->to);
        out->rl_class = RATELIMIT_PROFILE;
        has_body = false;
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
        if (path_id_check("to", LINE_ID_USER, req->to, errstr, errcap) != 0 ||
            path_id_check("rich_menu_id", LINE_ID_RICH_MENU, req->rich_menu_id, errstr, errcap) !=
                0)
            goto fail;
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/user/%s/richmenu/%s", req->to, req->rich_menu_id);
        out->rl_class = RATELIMIT_RICHMENU_LINK;
        has_body = false;
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
        if (path_id_check("to", LINE_ID_USER, req->to, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_DELETE;
        out->path = str_printf(&oom, "/v2/bot/user/%s/richmenu", req->to);
        out->rl_class = RATELIMIT_RICHMENU_UNLINK;
        has_body = false;
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
        if (!req->rich_menu_id || !*req->rich_menu_id) {
            errstr_set(errstr, errcap, "rich_menu_id: required");
            goto fail;
        }
        if (recipients_check(req, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/richmenu/bulk/link");
        out->rl_class = RATELIMIT_RICHMENU_BULK_LINK;
        buf_lit(&b, "{\"richMenuId\":");
        if (buf_jstr(&b, req->rich_menu_id) != 0) {
            errstr_set(errstr, errcap, "rich_menu_id: not valid UTF-8");
            goto fail;
        }
        buf_lit(&b, ",");
        if (body_string_array(&b, "\"userIds\":", req->recipients, req->n_recipients, "recipients",
                              errstr, errcap) != 0)
            goto fail;
        break;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        if (recipients_check(req, errstr, errcap) != 0)
            goto fail;
        out->method = LINE_POST;
        out->path = str_printf(&oom, "/v2/bot/richmenu/bulk/unlink");
        out->rl_class = RATELIMIT_RICHMENU_BULK_UNLINK;
        buf_lit(&b, "{");
        if (body_string_array(&b, "\"userIds\":", req->recipients, req->n_recipients, "recipients",
                              errstr, errcap) != 0)
            goto fail;
        break;
    default:
        goto fail; /* unreachable: kinds were checked above */
    }
    if (has_body)
        buf_lit(&b, "}");
    if (b.too_big) {
        errstr_set(errstr, errcap, "body: larger than LINE's %d-byte limit", LINE_BODY_MAX);
        goto fail;
    }

    out->headers[out->nheaders++] = str_printf(&oom, "Authorization: Bearer %s", access_token);
    if (has_body)
        out->headers[out->nheaders++] = str_printf(&oom, "Content-Type: application/json");
    if (retry_key)
        out->headers[out->nheaders++] = str_printf(&oom, "X-Line-Retry-Key: %s", req->request_id);
    if (oom || b.oom) {
        errstr_set(errstr, errcap, "out of memory");
        rc = LINE_REQUEST_ENOMEM;
        goto fail;
    }
    if (has_body) {
        out->body = b.p;
        out->body_len = b.len;
        b.p = NULL;
    }
    free(b.p);
    out->kind = kind;
    out->fell_back_to_push = fell_back;
    out->has_retry_key = retry_key;
    return LINE_REQUEST_OK;

fail:
    free(b.p);
    line_request_clear(out);
    return rc;
}
