/* The simulator's HTTP entry point: LINE's /v2 endpoints, and /_sim/ handed
 * to the control API. Runs on httpd worker threads, several at once. */
#ifndef LINESIM_ROUTES_H
#define LINESIM_ROUTES_H

#include "httpd.h"

/* The httpd handler; ctx is the struct sim_state. */
void sim_routes_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
