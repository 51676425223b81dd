/* line-sim: a simulator of the LINE Messaging API for tests, benchmarks
 * and `make run` (the real platform cannot be reached from here and must
 * never be load-tested). This file only wires things up: config from the
 * environment, the state, the HTTP server, and a drain on SIGTERM. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "httpd.h"
#include "log.h"
#include "shutdown.h"
#include "sim_control.h"
#include "sim_routes.h"
#include "sim_state.h"

/* LINE refuses request bodies over 2 MB with 413. */
#define LINESIM_BODY_CAP (2u * 1024 * 1024)

static void stop_server(void *ctx)
{
    httpd_stop(ctx);
}

static void free_state(void *ctx)
{
    sim_state_free(ctx);
}

int main(void)
{
    const char *bind = NULL, *channels = NULL, *log_level = NULL;
    long port = 0, threads = 0, max_recorded = 0;
    int record = 1;
    const struct config_entry table[] = {
        {"LINESIM_PORT", CONFIG_PORT, "8090", &port, 0, 0, "listen port"},
        {"LINESIM_BIND", CONFIG_STRING, "127.0.0.1", &bind, 0, 0, "listen address (IPv4)"},
        {"LINESIM_THREADS", CONFIG_INT, "8", &threads, 1, 64,
         "HTTP worker threads (httpd allows up to 64)"},
        {"LINESIM_CHANNELS", CONFIG_SECRET, "", &channels, 0, 0,
         "channels to register at start: id:token,id:token"},
        {"LINESIM_RECORD", CONFIG_BOOL, "true", &record, 0, 0,
         "keep every delivered message per recipient (and detect duplicates)"},
        {"LINESIM_MAX_RECORDED", CONFIG_INT, "1000000", &max_recorded, 0, 1000000000,
         "cap on recorded deliveries; 0 means no cap"},
        {"LINESIM_LOG_LEVEL", CONFIG_STRING, "info", &log_level, 0, 0,
         "debug, info, warn or error"},
    };
    const size_t ntable = sizeof table / sizeof table[0];

    log_init("line-sim", LOG_INFO);
    config_load_or_exit(table, ntable);
    int level = log_level_parse(log_level);
    if (level < 0) {
        log_error("config", "LINESIM_LOG_LEVEL", "must be debug, info, warn or error");
        return CONFIG_EXIT;
    }
    log_init("line-sim", (enum log_level)level);
    config_log(table, ntable);
    if (shutdown_install() != 0) {
        log_error("cannot install signal handlers");
        return 1;
    }

    struct sim_state_options sopts = {.record = record != 0, .max_recorded = (size_t)max_recorded};
    struct sim_state *st = sim_state_new(&sopts);
    if (!st) {
        log_error("out of memory");
        return 1;
    }
    char err[256];
    int n = sim_control_preload(st, channels, err, sizeof err);
    if (n < 0) {
        log_error("config", "error", err);
        sim_state_free(&st);
        return CONFIG_EXIT;
    }

    struct httpd_options hopts = {
        .name = "line-sim",
        .bind = bind,
        .port = (int)port,
        .body_cap = LINESIM_BODY_CAP,
        .threads = (int)threads,
        .handler = sim_routes_handle,
        .ctx = st,
        .metrics = true,
    };
    struct httpd *server = httpd_start(&hopts, err, sizeof err);
    if (!server) {
        log_error("cannot start HTTP server", "error", err);
        sim_state_free(&st);
        return 1;
    }
    char portbuf[16], nbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", httpd_port(server));
    snprintf(nbuf, sizeof nbuf, "%d", n);
    log_info("listening", "bind", bind, "port", portbuf, "preloaded_channels", nbuf);

    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "http server", stop_server, &server);
    shutdown_register(SHUTDOWN_FREE, "state", free_state, &st);
    while (!shutdown_requested())
        shutdown_sleep_ms(200);
    log_info("shutting down");
    shutdown_drain();
    log_info("stopped");
    return 0;
}
