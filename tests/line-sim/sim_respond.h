/* Building answers: LINE's error body {"message", "details"} for the /v2
 * endpoints, JSON bodies handed to the server without a second copy, and
 * the x-line-request-id every answer carries. Any worker thread. */
#ifndef LINESIM_RESPOND_H
#define LINESIM_RESPOND_H

#include <jansson.h>

#include "httpd.h"
#include "sim_validate.h"

#define SIM_REQUEST_ID_LEN 37 /* UUID text plus NUL */

/* Makes a fresh request id (random UUID, lower case) into id and adds it as
 * x-line-request-id. */
void sim_respond_request_id(struct httpd_response *resp, char id[SIM_REQUEST_ID_LEN]);
/* Sets status and body to obj's JSON text; takes ownership of obj (NULL
 * answers 500). Replaces any body set before. */
void sim_respond_json(struct httpd_response *resp, int status, json_t *obj);
/* LINE's error form with only a message. */
void sim_respond_line_error(struct httpd_response *resp, int status, const char *message);
/* LINE's error form with the details of a validation failure. */
void sim_respond_verr(struct httpd_response *resp, int status, const struct sim_verr *err);

#endif
