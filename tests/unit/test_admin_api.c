/* Unit tests for common/admin_api: the method and role gate, the tenant
 * check, the JSON body checks and the error answers, byte for byte, as a
 * client sees them. A server on 127.0.0.1 (port 0) in this process routes
 * to the helpers; the token's claims come from test headers, since
 * service.c, not these helpers, verifies tokens. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_api.h"
#include "log.h"
#include "metrics.h"

static struct httpd *server;

static const struct admin_method item_methods[] = {
    {"GET", "viewer"}, {"PATCH", "operator"}, {"DELETE", "admin"}};

/* Reads {"name": string <= 8 bytes, required; "n": integer 0..9} */
static void invalid_route(const struct httpd_request *req, struct httpd_response *resp,
                          const char *code, const char *field)
{
    static const char *const known[] = {"name", "n"};
    const char *body, *name;
    size_t len;
    int64_t n = 0;
    if (!admin_api_body(req, resp, 64, &body, &len))
        return;
    json_t *doc = json_loadb(body, len, 0, NULL);
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    if (!json_is_object(doc))
        jsonf_fail(&root, NULL, JSONF_TYPE, "the body must be a JSON object");
    else if (jsonf_known(&root, known, 2) == 0 &&
             jsonf_string(&root, "name", JSONF_REQUIRED, 8, &name, NULL) > 0)
        jsonf_int(&root, "n", 0, 0, 9, &n);
    if (reader.n > 0)
        admin_api_respond_invalid(resp, &err, code, field);
    else
        admin_api_respond_json(resp, 200,
                               json_pack("{s:s, s:I}", "name", name, "n", (json_int_t)n));
    json_decref(doc);
}

static void handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    struct auth_claims claims = {.exp = 0};
    const char *tenant = httpd_request_header(req, "X-Tenant");
    const char *role = httpd_request_header(req, "X-Role");
    snprintf(claims.tenant, sizeof claims.tenant, "%s", tenant ? tenant : "acme");
    snprintf(claims.role, sizeof claims.role, "%s", role ? role : "viewer");
    const char *path = httpd_request_path(req);
    if (strcmp(path, "/item") == 0) {
        int i = admin_api_route(&claims, req, resp, item_methods, 3);
        if (i >= 0)
            admin_api_respond_json(resp, 200, json_pack("{s:i}", "method", i));
    } else if (strcmp(path, "/owned") == 0) {
        /* The owner is known only after a lookup: method first, role after. */
        int i = admin_api_method(req, resp, item_methods, 3);
        if (i >= 0 && admin_api_allow(&claims, httpd_request_query(req, "owner"),
                                      item_methods[i].min_role, resp))
            admin_api_respond_json(resp, 200, json_pack("{s:i}", "method", i));
    } else if (strcmp(path, "/invalid") == 0) {
        invalid_route(req, resp, NULL, NULL);
    } else if (strcmp(path, "/invalid-as-dispatcher") == 0) {
        invalid_route(req, resp, "invalid_argument", "rate");
    } else if (strcmp(path, "/null") == 0) {
        admin_api_respond_json(resp, 200, NULL);
    } else {
        httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
    }
}

static void suite_setup(void)
{
    log_init("test", LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[256];
    struct httpd_options opts = {.name = "admin-test", .port = 0, .handler = handler};
    server = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(server, "httpd_start: %s", err);
}

static void suite_teardown(void)
{
    httpd_stop(&server);
    metrics_free_all();
    curl_global_cleanup();
}

TestSuite(admin_api, .init = suite_setup, .fini = suite_teardown, .timeout = 30);

/* ---- client ----------------------------------------------------------------- */

struct reply {
    long status;
    char body[4096];
    size_t body_len;
    char allow[128];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t take = size * n;
    if (take > sizeof r->body - 1 - r->body_len)
        take = sizeof r->body - 1 - r->body_len;
    memcpy(r->body + r->body_len, p, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = size * n;
    if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0) {
        size_t v = len - 7;
        while (v > 0 && (p[7 + v - 1] == '\r' || p[7 + v - 1] == '\n'))
            v--;
        snprintf(r->allow, sizeof r->allow, "%.*s", (int)v, p + 7);
    }
    return len;
}

/* headers: NULL-terminated, may be NULL. */
static void call(const char *method, const char *path, const char *const *headers, const char *body,
                 struct reply *r)
{
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", httpd_port(server), path);
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    struct curl_slist *list = NULL;
    for (const char *const *h = headers; h && *h; h++)
        list = curl_slist_append(list, *h);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(curl);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
}

/* ---- the gate ----------------------------------------------------------------- */

struct gate_case {
    const char *what;
    const char *method;
    const char *path;
    const char *role;
    const char *tenant;
    long status;
    const char *body;  /* exact bytes */
    const char *allow; /* exact Allow header, or "" */
};

#define E405                                                                              \
    "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use GET, PATCH, DELETE\"," \
    "\"field\":null}}"

static const struct gate_case gate_cases[] = {
    {"viewer reads", "GET", "/item", "viewer", "acme", 200, "{\"method\":0}", ""},
    {"operator changes", "PATCH", "/item", "operator", "acme", 200, "{\"method\":1}", ""},
    {"admin deletes", "DELETE", "/item", "admin", "acme", 200, "{\"method\":2}", ""},
    {"admin may do what an operator may", "PATCH", "/item", "admin", "acme", 200, "{\"method\":1}",
     ""},
    {"viewer may not change", "PATCH", "/item", "viewer", "acme", 403,
     "{\"error\":{\"code\":\"forbidden\",\"message\":\"this needs role operator or higher\","
     "\"field\":null}}",
     ""},
    {"operator may not delete", "DELETE", "/item", "operator", "acme", 403,
     "{\"error\":{\"code\":\"forbidden\",\"message\":\"this needs role admin or higher\","
     "\"field\":null}}",
     ""},
    {"unknown role", "GET", "/item", "owner", "acme", 403,
     "{\"error\":{\"code\":\"forbidden\",\"message\":\"this needs role viewer or higher\","
     "\"field\":null}}",
     ""},
    {"method not in the table", "PUT", "/item", "admin", "acme", 405, E405, "GET, PATCH, DELETE"},
    {"405 comes before the role", "POST", "/item", "viewer", "acme", 405, E405,
     "GET, PATCH, DELETE"},
    {"owner's viewer reads", "GET", "/owned?owner=acme", "viewer", "acme", 200, "{\"method\":0}",
     ""},
    {"another tenant's object is not found", "GET", "/owned?owner=globex", "admin", "acme", 404,
     "{\"error\":{\"code\":\"not_found\",\"message\":\"no such channel\",\"field\":null}}", ""},
    {"another tenant learns nothing of roles", "DELETE", "/owned?owner=globex", "viewer", "acme",
     404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such channel\",\"field\":null}}",
     ""},
    {"owner's viewer may not delete", "DELETE", "/owned?owner=acme", "viewer", "acme", 403,
     "{\"error\":{\"code\":\"forbidden\",\"message\":\"this needs role admin or higher\","
     "\"field\":null}}",
     ""},
    {"no owner at all", "GET", "/owned", "admin", "acme", 404,
     "{\"error\":{\"code\":\"not_found\",\"message\":\"no such channel\",\"field\":null}}", ""},
};

Test(admin_api, methods_roles_and_tenants_get_their_exact_answers)
{
    for (size_t i = 0; i < sizeof gate_cases / sizeof gate_cases[0]; i++) {
        const struct gate_case *c = &gate_cases[i];
        char role[64], tenant[64];
        snprintf(role, sizeof role, "X-Role: %s", c->role);
        snprintf(tenant, sizeof tenant, "X-Tenant: %s", c->tenant);
        const char *headers[] = {role, tenant, NULL};
        struct reply r;
        call(c->method, c->path, headers, NULL, &r);
        cr_expect_eq(r.status, c->status, "%s: %ld %s", c->what, r.status, r.body);
        cr_expect_str_eq(r.body, c->body, "%s", c->what);
        cr_expect_str_eq(r.allow, c->allow, "%s: Allow", c->what);
    }
}

/* ---- bodies and 400s ------------------------------------------------------------ */

struct body_case {
    const char *what;
    const char *path;
    const char *content_type; /* NULL: none */
    const char *body;
    long status;
    const char *answer; /* exact bytes */
};

#define JSON_CT "Content-Type: application/json"

static const struct body_case body_cases[] = {
    {"good body", "/invalid", JSON_CT, "{\"name\":\"abc\",\"n\":3}", 200,
     "{\"name\":\"abc\",\"n\":3}"},
    {"charset utf-8", "/invalid", "Content-Type: application/json; charset=\"UTF-8\"",
     "{\"name\":\"a\"}", 200, "{\"name\":\"a\",\"n\":0}"},
    {"text/plain", "/invalid", "Content-Type: text/plain", "{\"name\":\"a\"}", 415,
     "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":\"send the body as "
     "application/json (UTF-8)\",\"field\":\"Content-Type\"}}"},
    {"no content type", "/invalid", NULL, "{\"name\":\"a\"}", 415,
     "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":\"send the body as "
     "application/json (UTF-8)\",\"field\":\"Content-Type\"}}"},
    {"over the cap", "/invalid", JSON_CT,
     "{\"name\":\"a\",\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", 413,
     "{\"error\":{\"code\":\"body_too_large\",\"message\":\"bodies here are at most 64 bytes\","
     "\"field\":null}}"},
    {"not an object", "/invalid", JSON_CT, "[1]", 400,
     "{\"error\":{\"code\":\"invalid_type\",\"message\":\"the body must be a JSON object\","
     "\"field\":null}}"},
    {"missing", "/invalid", JSON_CT, "{\"n\":1}", 400,
     "{\"error\":{\"code\":\"missing_field\",\"message\":\"name: missing\",\"field\":\"name\"}}"},
    {"wrong type", "/invalid", JSON_CT, "{\"name\":[]}", 400,
     "{\"error\":{\"code\":\"invalid_type\",\"message\":\"name: must be a string\","
     "\"field\":\"name\"}}"},
    {"too long", "/invalid", JSON_CT, "{\"name\":\"abcdefghi\"}", 400,
     "{\"error\":{\"code\":\"too_long\",\"message\":\"name: longer than 8 bytes\","
     "\"field\":\"name\"}}"},
    {"out of range", "/invalid", JSON_CT, "{\"name\":\"a\",\"n\":10}", 400,
     "{\"error\":{\"code\":\"invalid_value\",\"message\":\"n: out of range (0 to 9)\","
     "\"field\":\"n\"}}"},
    {"unknown, with a quote in its name", "/invalid", JSON_CT, "{\"a\\\"b\":1}", 400,
     "{\"error\":{\"code\":\"unknown_field\",\"message\":\"a\\\"b: unknown field; allowed: name, "
     "n\",\"field\":\"a\\\"b\"}}"},
    {"code and field chosen by the caller", "/invalid-as-dispatcher", JSON_CT,
     "{\"name\":\"a\",\"n\":\"x\"}", 400,
     "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"n: must be an integer\","
     "\"field\":\"rate\"}}"},
};

Test(admin_api, bodies_are_checked_and_refusals_name_the_path)
{
    for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
        const struct body_case *c = &body_cases[i];
        const char *headers[] = {c->content_type, NULL};
        struct reply r;
        call("POST", c->path, c->content_type ? headers : NULL, c->body, &r);
        cr_expect_eq(r.status, c->status, "%s: %ld %s", c->what, r.status, r.body);
        cr_expect_str_eq(r.body, c->answer, "%s", c->what);
    }
}

Test(admin_api, a_json_answer_without_a_body_is_a_500)
{
    struct reply r;
    call("GET", "/null", NULL, NULL, &r);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(r.body, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\","
                             "\"field\":null}}");
}

/* ---- Content-Type ------------------------------------------------------------------ */

Test(admin_api, only_json_in_utf8_is_a_json_content_type)
{
    static const char *const good[] = {"application/json",
                                       "Application/JSON",
                                       "  application/json  ",
                                       "application/json;charset=utf-8",
                                       "application/json; charset=UTF-8",
                                       "application/json; charset=\"utf-8\" "};
    static const char *const bad[] = {"",
                                      "text/plain",
                                      "application/jsonp",
                                      "application/json; charset=latin1",
                                      "application/json; charset=\"utf-8",
                                      "application/json; boundary=x",
                                      "application/json; charset=utf-8; x=y",
                                      "application/json,text/plain"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect(admin_api_content_type_json(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(admin_api_content_type_json(bad[i]), "%s", bad[i]);
    cr_expect_not(admin_api_content_type_json(NULL));
}
