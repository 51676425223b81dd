/* kizuna-ingest: the edge. Wires the shared service skeleton to the public
 * webhook server. The webhook, channel registry and tracked links arrive with
 * their own issue; until then the public port serves only health routes. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "crypto.h"
#include "httpd.h"
#include "log.h"
#include "service.h"
#include "shutdown.h"

static const char *data_key_hex;
static long public_port;

static const struct config_entry ingest_config[] = {
    {"INGEST_PUBLIC_PORT", CONFIG_PORT, "8080", &public_port, 0, 0,
     "public port for LINE webhooks and tracked links"},
    {"KIZUNA_DATA_KEY", CONFIG_SECRET, NULL, &data_key_hex, 0, 0,
     "64 hex chars: AES-256-GCM key for channel secrets at rest"},
};

static struct httpd *public_server;

static void step_stop_public(void *ctx)
{
    (void)ctx;
    httpd_stop(&public_server);
}

int main(void)
{
    static struct service svc;
    static const struct service_def def = {
        .name = "ingest",
        .admin_port = 8081,
        .extra = ingest_config,
        .nextra = sizeof ingest_config / sizeof ingest_config[0],
    };
    int rc = 1;
    if (service_start(&svc, &def) != 0)
        goto out;

    uint8_t key[CRYPTO_KEY_LEN];
    if (crypto_key_from_hex(data_key_hex, key) != 0) {
        log_error("config error", "error", "KIZUNA_DATA_KEY: must be 64 hex characters");
        rc = CONFIG_EXIT;
        goto out;
    }

    char errstr[256];
    struct httpd_options opts = {
        .name = "public",
        .bind = svc.bind,
        .port = (int)public_port,
        .body_cap = 1024 * 1024, /* LINE's webhook bodies stay far below this */
        .threads = 2,
    };
    public_server = httpd_start(&opts, errstr, sizeof errstr);
    if (!public_server) {
        log_error("cannot start public server", "error", errstr);
        goto out;
    }
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop public server", step_stop_public, NULL);

    service_run(&svc);
    rc = 0;
out:
    service_stop(&svc);
    return rc;
}
