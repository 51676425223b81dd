/* Response helpers shared by the LINE routes and the control API. */
#include "sim_respond.h"

#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

void sim_respond_request_id(struct httpd_response *resp, char id[SIM_REQUEST_ID_LEN])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    httpd_response_header(resp, "x-line-request-id", id);
}

/* Hands text (malloc'd) to the server as the body. */
static void respond_take(struct httpd_response *resp, int status, char *text)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = text;
    resp->body_len = text ? strlen(text) : 0;
}

void sim_respond_json(struct httpd_response *resp, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        sim_respond_line_error(resp, 500, "Internal server error");
        return;
    }
    respond_take(resp, status, text);
}

void sim_respond_line_error(struct httpd_response *resp, int status, const char *message)
{
    json_t *obj = json_pack("{s:s}", "message", message);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        /* Out of memory: a static body through the copying helper. */
        free(resp->body);
        resp->body = NULL;
        httpd_respond_json(resp, 500, "{\"message\":\"Internal server error\"}");
        return;
    }
    respond_take(resp, status, text);
}

void sim_respond_verr(struct httpd_response *resp, int status, const struct sim_verr *err)
{
    char *text = sim_verr_json(err);
    if (!text) {
        sim_respond_line_error(resp, 500, "Internal server error");
        return;
    }
    respond_take(resp, status, text);
}
