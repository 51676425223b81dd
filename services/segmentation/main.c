/* kizuna-segmentation: owns people (friends, tags, fields, segments, rules).
 * Wires the shared service skeleton, the relay of its outbox, its consumers
 * and its admin API (api.c; each part's routes live in their own file). */
#include <stdio.h>

#include "app.h"
#include "csv_routes.h"
#include "db_pool.h"
#include "log.h"
#include "outbox_relay.h"
#include "service.h"

static long api_connections;

static const struct config_entry extra[] = {
    {"SEGMENTATION_API_DB_CONNECTIONS", CONFIG_INT, "4", &api_connections, 1, 64,
     "PostgreSQL connections shared by the admin API (a CSV export holds one while it streams)"},
};

/* service_def.setup: the relay of the segmentation outbox (stopped by the
 * drain), the admin API's connections, then the consumers. */
static int segmentation_setup(struct service *svc)
{
    struct seg *app = svc->def->api_ctx;
    char errstr[512];
    app->svc = svc;
    app->relay = outbox_relay_start_service(svc, errstr, sizeof errstr);
    if (!app->relay) {
        log_error("cannot start the outbox relay", "error", errstr);
        return 1;
    }
    app->pool = db_pool_new(svc->database_url, (int)api_connections, errstr, sizeof errstr);
    if (!app->pool) {
        log_error("cannot open the admin API's database connections", "error", errstr);
        return 1;
    }
    return 0;
}

int main(void)
{
    static struct service svc;
    static struct seg app;
    static const struct service_def def = {
        .name = "segmentation",
        .admin_port = 8082,
        .extra = extra,
        .nextra = sizeof extra / sizeof extra[0],
        .api = seg_api,
        .api_ctx = &app,
        .setup = segmentation_setup,
        .admin_body_cap = SEG_CSV_IMPORT_MAX, /* a CSV import; JSON bodies are SEG_BODY_MAX */
    };
    int rc = 1;
    if (service_start(&svc, &def) == 0) {
        service_run(&svc);
        rc = 0;
    }
    service_stop(&svc);
    db_pool_free(&app.pool);
    return rc;
}
