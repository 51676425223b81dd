/* kizuna-scheduler: owns time (scenarios, broadcasts, reminders, schedules).
 * Wires the shared service skeleton; its due scans and API arrive with their
 * own issue. */
#include "service.h"

int main(void)
{
    static struct service svc;
    static const struct service_def def = {.name = "scheduler", .admin_port = 8083};
    int rc = 1;
    if (service_start(&svc, &def) == 0) {
        service_run(&svc);
        rc = 0;
    }
    service_stop(&svc);
    return rc;
}
