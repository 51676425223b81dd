/* kizuna-segmentation: owns people (friends, tags, fields, segments, rules).
 * Wires the shared service skeleton; its consumers and API arrive with their
 * own issue. */
#include "service.h"

int main(void)
{
    static struct service svc;
    static const struct service_def def = {.name = "segmentation", .admin_port = 8082};
    int rc = 1;
    if (service_start(&svc, &def) == 0) {
        service_run(&svc);
        rc = 0;
    }
    service_stop(&svc);
    return rc;
}
