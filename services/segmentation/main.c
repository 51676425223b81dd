/* kizuna-segmentation: owns people (friends, tags, fields, segments, rules).
 * Wires the shared service skeleton and the relay of its outbox; its
 * consumers and API arrive with their own issue. */
#include "log.h"
#include "outbox_relay.h"
#include "service.h"

/* service_def.setup: the relay of the segmentation outbox, stopped by the drain. */
static int segmentation_setup(struct service *svc)
{
    char errstr[512];
    if (!outbox_relay_start_service(svc, errstr, sizeof errstr)) {
        log_error("cannot start the outbox relay", "error", errstr);
        return 1;
    }
    return 0;
}

int main(void)
{
    static struct service svc;
    static const struct service_def def = {
        .name = "segmentation", .admin_port = 8082, .setup = segmentation_setup};
    int rc = 1;
    if (service_start(&svc, &def) == 0) {
        service_run(&svc);
        rc = 0;
    }
    service_stop(&svc);
    return rc;
}
