/* The LINE endpoints the simulator serves, as one enum, so that rate limits,
 * meters and counters can be plain arrays indexed by endpoint. Names are the
 * keys used by the control API (PUT /_sim/channels/{id}/limits) and stats. */
#ifndef LINESIM_ENDPOINT_H
#define LINESIM_ENDPOINT_H

#include <stdbool.h>

enum sim_endpoint {
    SIM_EP_REPLY = 0,
    SIM_EP_PUSH,
    SIM_EP_MULTICAST,
    SIM_EP_BROADCAST,
    SIM_EP_NARROWCAST,
    SIM_EP_NARROWCAST_PROGRESS,
    SIM_EP_QUOTA,
    SIM_EP_QUOTA_CONSUMPTION,
    SIM_EP_PROFILE,
    SIM_EP_RICHMENU_LINK,
    SIM_EP_RICHMENU_UNLINK,
    SIM_EP_RICHMENU_GET,
    SIM_EP_RICHMENU_BULK_LINK,
    SIM_EP_RICHMENU_BULK_UNLINK,
    SIM_EP_BOT_INFO,
    SIM_EP_COUNT
};

/* "push", "multicast", ...; never NULL for a valid endpoint. */
const char *sim_endpoint_name(enum sim_endpoint ep);
/* The endpoint with that name, or -1. */
int sim_endpoint_parse(const char *name);
/* reply, push, multicast, broadcast, narrowcast: they deliver messages. */
bool sim_endpoint_is_send(enum sim_endpoint ep);
/* push, multicast, broadcast, narrowcast: the endpoints LINE lets carry
 * X-Line-Retry-Key; any other endpoint answers 400 when it is present. */
bool sim_endpoint_takes_retry_key(enum sim_endpoint ep);

#endif
