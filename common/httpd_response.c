/* The answers handlers build (common/httpd.h): status, body, headers, and
 * the project's JSON error form. Nothing here touches a connection, so it
 * lives apart from the server in httpd.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"

#define HTTPD_JSON "application/json"

/* Drops a stream the server never took. */
static void response_stream_drop(struct httpd_response *resp)
{
    httpd_stream_free_fn free_fn = resp->stream_free;
    void *ctx = resp->stream_ctx;
    resp->stream_read = NULL;
    resp->stream_free = NULL;
    resp->stream_ctx = NULL;
    if (free_fn)
        free_fn(ctx);
}

void httpd_response_clear(struct httpd_response *resp)
{
    response_stream_drop(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    for (int i = 0; i < resp->nheaders && i < HTTPD_MAX_HEADERS; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
        resp->header_names[i] = NULL;
        resp->header_values[i] = NULL;
    }
    resp->nheaders = 0;
}

void httpd_respond_stream(struct httpd_response *resp, int status, const char *content_type,
                          httpd_stream_read_fn read, void *ctx, httpd_stream_free_fn free_fn)
{
    response_stream_drop(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->content_type = content_type;
    resp->stream_read = read;
    resp->stream_free = free_fn;
    resp->stream_ctx = ctx;
}

void httpd_respond(struct httpd_response *resp, int status, const char *content_type,
                   const char *body, size_t len)
{
    response_stream_drop(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->content_type = content_type;
    if (len == 0 || !body)
        return;
    resp->body = malloc(len);
    if (!resp->body) {
        /* Out of memory: the status stands, the body is lost. */
        log_error("http response body allocation failed");
        return;
    }
    memcpy(resp->body, body, len);
    resp->body_len = len;
}

void httpd_respond_json(struct httpd_response *resp, int status, const char *json)
{
    httpd_respond(resp, status, HTTPD_JSON, json, json ? strlen(json) : 0);
}

/* Appends raw text, clamped to the buffer. Returns the new length. */
static size_t json_append_raw(char *out, size_t cap, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (len + n + 1 > cap)
        return len;
    memcpy(out + len, s, n + 1);
    return len + n;
}

/* Appends "s" as a quoted JSON string, or null. Returns the new length. */
static size_t json_append_string(char *out, size_t cap, size_t len, const char *s)
{
    if (!s)
        return json_append_raw(out, cap, len, "null");
    if (len + 3 > cap)
        return len;
    out[len++] = '"';
    len += log_json_escape(out + len, cap - len - 1, s);
    out[len++] = '"';
    out[len] = '\0';
    return len;
}

void httpd_respond_error(struct httpd_response *resp, int status, const char *code,
                         const char *message, const char *field)
{
    if (!code)
        code = "error";
    if (!message)
        message = "";
    /* Escaping grows a byte to at most six ("\u00XX", "\ufffd"); 64 covers
     * the fixed text. */
    size_t cap = 64 + 6 * (strlen(code) + strlen(message) + (field ? strlen(field) : 0));
    char *json = malloc(cap);
    if (!json) {
        httpd_respond_json(resp, status, "{\"error\":{\"code\":\"internal\"}}");
        return;
    }
    json[0] = '\0';
    size_t len = json_append_raw(json, cap, 0, "{\"error\":{\"code\":");
    len = json_append_string(json, cap, len, code);
    len = json_append_raw(json, cap, len, ",\"message\":");
    len = json_append_string(json, cap, len, message);
    len = json_append_raw(json, cap, len, ",\"field\":");
    len = json_append_string(json, cap, len, field);
    len = json_append_raw(json, cap, len, "}}");
    httpd_respond(resp, status, HTTPD_JSON, json, len);
    free(json);
}

int httpd_response_header(struct httpd_response *resp, const char *name, const char *value)
{
    if (!resp || !name || !value || resp->nheaders < 0 || resp->nheaders >= HTTPD_MAX_HEADERS)
        return -1;
    size_t nlen = strlen(name) + 1;
    size_t vlen = strlen(value) + 1;
    char *n = malloc(nlen);
    char *v = malloc(vlen);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    memcpy(n, name, nlen);
    memcpy(v, value, vlen);
    resp->header_names[resp->nheaders] = n;
    resp->header_values[resp->nheaders] = v;
    resp->nheaders++;
    return 0;
}
