/* kizuna-dispatcher: owns every call to LINE. Wires the shared service
 * skeleton and checks its LINE settings; sending, limits and quota arrive
 * with their own issue. */
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "service.h"

static const char *line_api_base;
static const char *data_key_hex;

static const struct config_entry dispatcher_config[] = {
    {"DISPATCHER_LINE_API_BASE", CONFIG_STRING, "https://api.line.me", &line_api_base, 0, 0,
     "LINE Messaging API base URL (the simulator locally)"},
    {"KIZUNA_DATA_KEY", CONFIG_SECRET, NULL, &data_key_hex, 0, 0,
     "64 hex chars: opens the sealed channel access tokens"},
};

int main(void)
{
    static struct service svc;
    static const struct service_def def = {
        .name = "dispatcher",
        .admin_port = 8084,
        .extra = dispatcher_config,
        .nextra = sizeof dispatcher_config / sizeof dispatcher_config[0],
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
    if (strncmp(line_api_base, "https://", 8) != 0 &&
        strncmp(line_api_base, "http://127.", 11) != 0 &&
        strncmp(line_api_base, "http://localhost", 16) != 0)
        log_warn("DISPATCHER_LINE_API_BASE is neither https nor loopback", "base", line_api_base);
    service_run(&svc);
    rc = 0;
out:
    service_stop(&svc);
    return rc;
}
