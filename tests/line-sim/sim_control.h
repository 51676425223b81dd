/* The control and inspection API under /_sim/, for tests and benchmarks:
 * register channels, reply tokens and friends, set limits and faults, read
 * what was delivered and the counters, reset. Errors use the project's
 * form {"error": {"code", "message", "field"}}, not LINE's. Runs on httpd
 * worker threads. */
#ifndef LINESIM_CONTROL_H
#define LINESIM_CONTROL_H

#include <stddef.h>

#include "httpd.h"

struct sim_state;

void sim_control_handle(struct sim_state *st, const struct httpd_request *req,
                        struct httpd_response *resp);

/* Registers channels from "id:token,id:token:bot_user_id"
 * (LINESIM_CHANNELS; without a bot user id, the default of
 * sim_bot_user_id_default). Returns
 * the number registered, or -1 with err filled. Main thread, at startup. */
int sim_control_preload(struct sim_state *st, const char *spec, char *err, size_t errcap);

#endif
