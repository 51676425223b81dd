/* kizunactl stack status: one row per part of the local stack. Each check
 * is the part's own idea of ready (a PostgreSQL query, a Kafka metadata
 * round trip with every manifest topic, a service's /readyz), not an open
 * port. Addresses follow the variables that deploy/local/stack.sh exports;
 * the admin password in KIZUNA_PG_ADMIN_URL is never printed. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "kafka.h"
#include "kizunactl.h"
#include "topics.h"

static const char usage[] =
    "usage: kizunactl stack status\n"
    "  Checks PostgreSQL ($KIZUNA_PG_ADMIN_URL), Kafka ($KAFKA_BROKERS and the\n"
    "  manifest's topics), the LINE simulator ($KIZUNA_SIM_URL) and each service's\n"
    "  /readyz on its admin port (INGEST_ADMIN_PORT ...). Exit 0 if all are up.\n";

#define STATUS_HTTP_TIMEOUT_MS 3000L
#define STATUS_KAFKA_TIMEOUT_MS 5000

struct status_row {
    char name[32];
    bool up;
    char detail[1536]; /* holds any error below without truncation */
};

static const struct {
    const char *name;
    const char *port_env;
    const char *port_default;
} status_services[] = {
    {"ingest", "INGEST_ADMIN_PORT", "8081"},
    {"segmentation", "SEGMENTATION_ADMIN_PORT", "8082"},
    {"scheduler", "SCHEDULER_ADMIN_PORT", "8083"},
    {"dispatcher", "DISPATCHER_ADMIN_PORT", "8084"},
};

static const char *status_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void status_postgres(struct status_row *row)
{
    char err[256];
    const char *dsn = getenv("KIZUNA_PG_ADMIN_URL");
    if (!dsn || !*dsn) {
        snprintf(row->detail, sizeof row->detail,
                 "KIZUNA_PG_ADMIN_URL is not set (use deploy/local/stack.sh status)");
        return;
    }
    /* libpq would otherwise wait forever on an unreachable host. */
    setenv("PGCONNECT_TIMEOUT", "3", 0);
    struct db *db = db_connect(dsn, err, sizeof err);
    if (!db) {
        /* libpq's messages name host and port, never the password. */
        snprintf(row->detail, sizeof row->detail, "%s", err);
        for (char *p = row->detail; *p; p++)
            if (*p == '\n')
                *p = ' ';
        return;
    }
    row->up = db_ping(db);
    snprintf(row->detail, sizeof row->detail, "%s", row->up ? "query ok" : "query failed");
    db_free(&db);
}

static void status_kafka(struct status_row *row)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[1024];
    const char *manifest = topics_default_path();
    const char *brokers = ctl_brokers_default();
    int n = topics_load(manifest, specs, TOPICS_MAX, err, sizeof err);
    if (n < 0) {
        snprintf(row->detail, sizeof row->detail, "bad manifest: %s", err);
        return;
    }
    if (kafka_topics_check(brokers, specs, (size_t)n, STATUS_KAFKA_TIMEOUT_MS, err, sizeof err) <
        0) {
        snprintf(row->detail, sizeof row->detail, "%s", err);
        return;
    }
    row->up = true;
    snprintf(row->detail, sizeof row->detail, "%s, %d topics", brokers, n);
}

static size_t status_body_discard(char *data, size_t size, size_t nmemb, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * nmemb;
}

/* GETs url. Returns the HTTP status, or 0 with the reason in err. */
static long status_http_get(const char *url, char *err, size_t errcap)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(err, errcap, "curl init failed");
        return 0;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, STATUS_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, status_body_discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode res = curl_easy_perform(curl);
    if (res == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(err, errcap, "%s", curl_err[0] ? curl_err : curl_easy_strerror(res));
    curl_easy_cleanup(curl);
    return code;
}

/* The simulator is up if it answers HTTP at all. */
static void status_simulator(struct status_row *row)
{
    char url[256], err[CURL_ERROR_SIZE + 32];
    snprintf(url, sizeof url, "%s/", status_env("KIZUNA_SIM_URL", "http://127.0.0.1:8090"));
    long code = status_http_get(url, err, sizeof err);
    row->up = code > 0;
    if (row->up)
        snprintf(row->detail, sizeof row->detail, "%s HTTP %ld", url, code);
    else
        snprintf(row->detail, sizeof row->detail, "%s %s", url, err);
}

static void status_service(struct status_row *row, const char *port)
{
    char url[128], err[CURL_ERROR_SIZE + 32];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/readyz", port);
    long code = status_http_get(url, err, sizeof err);
    row->up = code == 200;
    if (code > 0)
        snprintf(row->detail, sizeof row->detail, "%s HTTP %ld", url, code);
    else
        snprintf(row->detail, sizeof row->detail, "%s %s", url, err);
}

int ctl_stack_status(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        return CTL_EXIT_OK;
    }
    if (argc != 1)
        return ctl_usage_error(usage, "stack status takes no arguments");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("kizunactl: curl_global_init failed\n", stderr);
        return CTL_EXIT_FAIL;
    }

    enum { NROWS = 3 + sizeof status_services / sizeof status_services[0] };
    struct status_row rows[NROWS];
    memset(rows, 0, sizeof rows);
    snprintf(rows[0].name, sizeof rows[0].name, "postgresql");
    status_postgres(&rows[0]);
    snprintf(rows[1].name, sizeof rows[1].name, "kafka");
    status_kafka(&rows[1]);
    snprintf(rows[2].name, sizeof rows[2].name, "line-sim");
    status_simulator(&rows[2]);
    for (size_t i = 0; i < sizeof status_services / sizeof status_services[0]; i++) {
        struct status_row *row = &rows[3 + i];
        snprintf(row->name, sizeof row->name, "%s", status_services[i].name);
        status_service(row,
                       status_env(status_services[i].port_env, status_services[i].port_default));
    }
    curl_global_cleanup();

    bool all_up = true;
    printf("%-14s %-6s %s\n", "COMPONENT", "STATUS", "DETAIL");
    for (int i = 0; i < NROWS; i++) {
        printf("%-14s %-6s %s\n", rows[i].name, rows[i].up ? "up" : "DOWN", rows[i].detail);
        all_up = all_up && rows[i].up;
    }
    return all_up ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
