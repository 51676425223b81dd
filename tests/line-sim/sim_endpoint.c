/* Endpoint names and classes, kept in one table so the control API, the
 * stats and the router agree on them. */
#include "sim_endpoint.h"

#include <string.h>

static const char *const sim_endpoint_names[SIM_EP_COUNT] = {
    [SIM_EP_REPLY] = "reply",
    [SIM_EP_PUSH] = "push",
    [SIM_EP_MULTICAST] = "multicast",
    [SIM_EP_BROADCAST] = "broadcast",
    [SIM_EP_NARROWCAST] = "narrowcast",
    [SIM_EP_NARROWCAST_PROGRESS] = "narrowcast_progress",
    [SIM_EP_QUOTA] = "quota",
    [SIM_EP_QUOTA_CONSUMPTION] = "quota_consumption",
    [SIM_EP_PROFILE] = "profile",
    [SIM_EP_RICHMENU_LINK] = "richmenu_link",
    [SIM_EP_RICHMENU_UNLINK] = "richmenu_unlink",
    [SIM_EP_RICHMENU_GET] = "richmenu_get",
    [SIM_EP_RICHMENU_BULK_LINK] = "richmenu_bulk_link",
    [SIM_EP_RICHMENU_BULK_UNLINK] = "richmenu_bulk_unlink",
    [SIM_EP_BOT_INFO] = "bot_info",
};

const char *sim_endpoint_name(enum sim_endpoint ep)
{
    if ((int)ep < 0 || ep >= SIM_EP_COUNT)
        return "unknown";
    return sim_endpoint_names[ep];
}

int sim_endpoint_parse(const char *name)
{
    for (int i = 0; name && i < SIM_EP_COUNT; i++)
        if (strcmp(name, sim_endpoint_names[i]) == 0)
            return i;
    return -1;
}

bool sim_endpoint_is_send(enum sim_endpoint ep)
{
    return ep == SIM_EP_REPLY || sim_endpoint_takes_retry_key(ep);
}

bool sim_endpoint_takes_retry_key(enum sim_endpoint ep)
{
    return ep == SIM_EP_PUSH || ep == SIM_EP_MULTICAST || ep == SIM_EP_BROADCAST ||
           ep == SIM_EP_NARROWCAST;
}
