/* What every /v1 admin route does before and after its own work: accept
 * only its methods (405 with Allow), require a least role from the token
 * (403), hide another tenant's objects (404), refuse a body that is not
 * JSON or too large (415, 413, 400), and answer errors in the project's one
 * form, {"error":{"code","message","field"}}. service.c has already checked
 * the token; these run on the admin server's worker threads, any number at
 * once, and keep no state. */
#ifndef KIZUNA_ADMIN_API_H
#define KIZUNA_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "httpd.h"
#include "jsonf.h"

/* One method a route accepts and the least role that may use it. */
struct admin_method {
    const char *method;   /* "GET" */
    const char *min_role; /* "viewer", "operator", "admin" or "deployment" */
};

/* Finds req's method in methods[0..n) and checks the token's role for it
 * (on the token's own tenant). Returns the entry's index, or -1 after
 * answering 405 method_not_allowed with Allow listing every method in
 * table order, or 403 forbidden. */
int admin_api_route(const struct auth_claims *claims, const struct httpd_request *req,
                    struct httpd_response *resp, const struct admin_method *methods, size_t n);

/* The method part alone, for a route that checks the role later (once it
 * knows which tenant owns the object). Returns the index or -1 (405). */
int admin_api_method(const struct httpd_request *req, struct httpd_response *resp,
                     const struct admin_method *methods, size_t n);

/* True when claims may act on an object of tenant with min_role; else
 * answers 404 not_found ("no such channel": another tenant's channel does
 * not exist for this token) or 403 forbidden, and returns false. */
bool admin_api_allow(const struct auth_claims *claims, const char *tenant, const char *min_role,
                     struct httpd_response *resp);

/* True for Content-Type application/json, optionally with charset=utf-8
 * (any case, quoted or not). */
bool admin_api_content_type_json(const char *content_type);

/* The body of a JSON request, borrowed from req: 415
 * unsupported_media_type (field Content-Type) unless admin_api_content_type_json,
 * 413 body_too_large past max bytes. Returns true with body and len set,
 * or false after answering. */
bool admin_api_body(const struct httpd_request *req, struct httpd_response *resp, size_t max,
                    const char **body, size_t *len);

/* 400 for a refused JSON value: code (NULL: the kind's own code, e.g.
 * invalid_type), message "path: reason", and field (NULL: the path, or no
 * field at the document itself). */
void admin_api_respond_invalid(struct httpd_response *resp, const struct jsonf_error *err,
                               const char *code, const char *field);

/* Answers status with body as compact JSON. Takes ownership of body (a
 * NULL body, or out of memory, answers 500 internal). */
void admin_api_respond_json(struct httpd_response *resp, int status, json_t *body);

#endif
