#include "db_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "db.h"

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    int size;
    int nfree;
    struct db **all;
    struct db **free_list; /* a stack of nfree connections */
};

struct db_pool *db_pool_new(const char *dsn, int size, char *errstr, size_t errcap)
{
    if (size < 1)
        size = 1;
    struct db_pool *p = calloc(1, sizeof *p);
    if (p) {
        p->all = calloc((size_t)size, sizeof *p->all);
        p->free_list = calloc((size_t)size, sizeof *p->free_list);
    }
    if (!p || !p->all || !p->free_list) {
        if (p) {
            free(p->all);
            free(p->free_list);
        }
        free(p);
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_condattr_destroy(&ca);
    p->size = size;
    for (int i = 0; i < size; i++) {
        p->all[i] = db_connect(dsn, errstr, errcap);
        if (!p->all[i]) {
            db_pool_free(&p);
            return NULL;
        }
        p->free_list[p->nfree++] = p->all[i];
    }
    return p;
}

void db_pool_free(struct db_pool **pp)
{
    if (!pp || !*pp)
        return;
    struct db_pool *p = *pp;
    for (int i = 0; i < p->size; i++)
        db_free(&p->all[i]);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p->all);
    free(p->free_list);
    free(p);
    *pp = NULL;
}

struct db *db_pool_acquire(struct db_pool *p, long wait_ms)
{
    struct timespec deadline = clock_mono_deadline(wait_ms);
    struct db *db = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        if (pthread_cond_timedwait(&p->freed, &p->mu, &deadline) != 0 && p->nfree == 0)
            break;
    }
    if (p->nfree > 0)
        db = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return db;
}

void db_pool_release(struct db_pool *p, struct db **db)
{
    if (!db || !*db)
        return;
    /* A handler that returned mid-transaction must not leak it into the
     * next borrower's work; outside a transaction db_rollback does nothing. */
    db_rollback(*db);
    pthread_mutex_lock(&p->mu);
    p->free_list[p->nfree++] = *db;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
    *db = NULL;
}
