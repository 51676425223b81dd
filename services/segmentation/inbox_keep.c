/* The inbox's pruning worker (inbox_keep.h). */
#include "inbox_keep.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "shutdown.h"
#include "worker.h"

struct inbox_keep {
    struct db *db;
    struct worker *worker;
    long keep_s, every_ms;
    struct metric *pruned; /* kizuna_segmentation_inbox_pruned_total */
};

static long inbox_keep_round(struct worker *w, void *ctx)
{
    struct inbox_keep *k = ctx;
    if (worker_stopping(w))
        return WORKER_DONE;
    long n = inbox_prune(k->db, k->keep_s);
    if (n < 0) {
        log_warn("inbox: pruning failed; trying again later", "error", db_error_message(k->db));
    } else if (n > 0) {
        char count[24];
        snprintf(count, sizeof count, "%ld", n);
        metrics_add(k->pruned, (double)n);
        log_info("inbox: old rows pruned", "rows", count);
    }
    return k->every_ms;
}

static void inbox_keep_stop(void *ctx)
{
    struct inbox_keep *k = ctx;
    worker_stop(&k->worker, 1000);
    db_free(&k->db);
    free(k);
}

int inbox_keep_start(struct service *svc, long keep_s, long every_s, char *errstr, size_t errcap)
{
    struct inbox_keep *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(errstr, errcap, "out of memory");
        return -1;
    }
    k->keep_s = keep_s;
    k->every_ms = every_s * 1000;
    k->pruned = metrics_counter("kizuna_segmentation_inbox_pruned_total",
                                "inbox rows deleted for being older than the keep time", NULL);
    k->db = db_connect(svc->database_url, errstr, errcap);
    if (!k->db) {
        free(k);
        return -1;
    }
    k->worker = worker_start_rounds("seg-inbox-keep", inbox_keep_round, k, errstr, errcap);
    if (!k->worker || shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop pruning the inbox",
                                        inbox_keep_stop, k) != 0) {
        if (k->worker)
            snprintf(errstr, errcap, "too many drain steps");
        worker_stop(&k->worker, 0);
        db_free(&k->db);
        free(k);
        return -1;
    }
    return 0;
}
