/* The admin routes' shared gate and answers (admin_api.h). Wording lives
 * here once, so a 405 or a 403 reads the same from every service. */
#include "admin_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "GET, POST": every method of the table, in its order. */
static void allow_format(const struct admin_method *methods, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", methods[i].method);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

int admin_api_method(const struct httpd_request *req, struct httpd_response *resp,
                     const struct admin_method *methods, size_t n)
{
    const char *method = httpd_request_method(req);
    for (size_t i = 0; method && i < n; i++)
        if (strcmp(method, methods[i].method) == 0)
            return (int)i;
    char allow[128], msg[160];
    allow_format(methods, n, allow, sizeof allow);
    snprintf(msg, sizeof msg, "use %s", allow);
    httpd_response_header(resp, "Allow", allow);
    httpd_respond_error(resp, 405, "method_not_allowed", msg, NULL);
    return -1;
}

bool admin_api_allow(const struct auth_claims *claims, const char *tenant, const char *min_role,
                     struct httpd_response *resp)
{
    enum auth_result r = auth_claims_allow(claims, tenant, min_role);
    if (r == AUTH_OK)
        return true;
    if (r == AUTH_WRONG_TENANT) {
        httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
    } else {
        char msg[96];
        snprintf(msg, sizeof msg, "this needs role %s or higher", min_role);
        httpd_respond_error(resp, 403, "forbidden", msg, NULL);
    }
    return false;
}

int admin_api_route(const struct auth_claims *claims, const struct httpd_request *req,
                    struct httpd_response *resp, const struct admin_method *methods, size_t n)
{
    int i = admin_api_method(req, resp, methods, n);
    if (i < 0)
        return -1;
    return admin_api_allow(claims, claims->tenant, methods[i].min_role, resp) ? i : -1;
}

/* Skips spaces and tabs. */
static const char *blank_skip(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool admin_api_content_type_json(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return false;
    ct = blank_skip(ct);
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    const char *p = blank_skip(ct + sizeof want - 1);
    if (*p == '\0')
        return true;
    if (*p != ';')
        return false;
    p = blank_skip(p + 1);
    if (strncasecmp(p, "charset=", 8) != 0)
        return false;
    p += 8;
    bool quoted = *p == '"';
    p += quoted;
    if (strncasecmp(p, "utf-8", 5) != 0)
        return false;
    p += 5;
    if (quoted && *p++ != '"')
        return false;
    return *blank_skip(p) == '\0';
}

bool admin_api_body(const struct httpd_request *req, struct httpd_response *resp, size_t max,
                    const char **body, size_t *len)
{
    if (!admin_api_content_type_json(httpd_request_header(req, "Content-Type"))) {
        httpd_respond_error(resp, 415, "unsupported_media_type",
                            "send the body as application/json (UTF-8)", "Content-Type");
        return false;
    }
    *body = httpd_request_body(req, len);
    if (*len > max) {
        char msg[64];
        if (max % 1024 == 0)
            snprintf(msg, sizeof msg, "bodies here are at most %zu KiB", max / 1024);
        else
            snprintf(msg, sizeof msg, "bodies here are at most %zu bytes", max);
        httpd_respond_error(resp, 413, "body_too_large", msg, NULL);
        return false;
    }
    return true;
}

void admin_api_respond_invalid(struct httpd_response *resp, const struct jsonf_error *err,
                               const char *code, const char *field)
{
    char msg[JSONF_PATH_MAX + JSONF_REASON_MAX + 2];
    jsonf_error_text(err, msg, sizeof msg);
    if (!field && err->path[0])
        field = err->path;
    httpd_respond_error(resp, 400, code ? code : jsonf_kind_code(err->kind), msg, field);
}

void admin_api_respond_json(struct httpd_response *resp, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        httpd_respond_error(resp, 500, "internal", "out of memory", NULL);
        return;
    }
    httpd_respond_json(resp, status, text);
    free(text);
}
