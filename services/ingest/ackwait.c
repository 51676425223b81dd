/* The asynchronous half of "never lose an accepted event". A webhook request
 * used to block its HTTP worker until every ack came in; now its records
 * are produced with delivery callbacks and the request waits as a job:
 * - the producer's poll thread counts the verdicts; the last one, if all
 *   are acks, ends the job right there (the common case: a few ms);
 * - one deadline thread watches the open jobs in submission order (one
 *   budget for all, so that is deadline order) and, when the oldest passes
 *   its deadline, hands it to the spool queue; a failed delivery does the
 *   same at once;
 * - a few spool workers take queued jobs, several per transaction, and
 *   commit the records still unconfirmed to ingest.spool. Only they touch
 *   the database, so neither the poll thread nor the deadline thread ever
 *   waits for PostgreSQL.
 * Whoever moves a job out of the open state (under the one mutex) is the
 * one that ends it, so each job ends exactly once. Records acked after the
 * job ended only update the job, which lives until its last delivery
 * report; the ackwait itself lives until its last job is gone, because
 * reports may arrive as late as kafka_producer_free. */
#include "ackwait.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "worker.h"

#define ACKWAIT_SPOOL_WORKERS_DEFAULT 2
#define ACKWAIT_SPOOL_WORKERS_MAX 8
/* Jobs one spool transaction takes: during an outage every request reaches
 * the spool, and one commit per request would cap the rate far lower. */
#define ACKWAIT_SPOOL_BATCH 64

enum ackwait_verdict {
    ACKWAIT_PENDING = 0,
    ACKWAIT_ACKED = 1,
    ACKWAIT_FAILED = -1,
};

enum ackwait_phase {
    ACKWAIT_OPEN = 0, /* in the open list, waiting for verdicts or its deadline */
    ACKWAIT_QUEUED,   /* in the spool queue */
    ACKWAIT_ENDING,   /* taken by whoever ends it */
};

struct ackwait_job;

/* One record's delivery report lands here. */
struct ackwait_slot {
    struct ackwait_job *job;
    atomic_int verdict; /* enum ackwait_verdict */
};

struct ackwait_job {
    struct ackwait *aw;
    struct spool_record *recs; /* borrowed until done */
    size_t n;
    ackwait_done_fn done;
    void *arg;
    int64_t deadline_ms;
    /* One reference for the job's end plus one per record in flight. */
    atomic_int refs;
    /* Records without a verdict, plus one while ackwait_submit produces. */
    atomic_size_t outstanding;
    int phase;                       /* enum ackwait_phase, under aw->mu */
    struct ackwait_job *prev, *next; /* the open list or the spool queue */
    struct ackwait_slot slots[];
};

struct ackwait_list {
    struct ackwait_job *head, *tail;
};

struct ackwait {
    struct kafka_producer *producer;
    struct spool *spool;
    int budget_ms;
    atomic_int refs; /* the owner's, plus one per live job */

    pthread_mutex_t mu;
    pthread_cond_t deadline_cond; /* the open list's head changed, or stopping */
    pthread_cond_t spool_cond;    /* the spool queue has jobs, or stopping */
    pthread_cond_t idle_cond;     /* `ending` dropped to 0 */
    struct ackwait_list open;
    struct ackwait_list queue;
    int ending; /* jobs a thread took to end and has not ended yet */
    bool stopping;
    bool stopped;

    /* Started and joined through common/worker.h, which names them; they
     * wait on the condition variables above, not worker_wait, because they
     * share the job lists (and their mutex) with the webhook's threads. */
    struct worker *deadline_thread;
    struct worker *workers[ACKWAIT_SPOOL_WORKERS_MAX];
    int nworkers;
};

/* --- lists (under aw->mu) --------------------------------------------------- */

static void list_push(struct ackwait_list *l, struct ackwait_job *job)
{
    job->next = NULL;
    job->prev = l->tail;
    if (l->tail)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
}

static void list_remove(struct ackwait_list *l, struct ackwait_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        l->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        l->tail = job->prev;
    job->prev = job->next = NULL;
}

/* --- lifetimes ------------------------------------------------------------------ */

static void ackwait_unref(struct ackwait *aw)
{
    if (atomic_fetch_sub(&aw->refs, 1) != 1)
        return;
    pthread_cond_destroy(&aw->deadline_cond);
    pthread_cond_destroy(&aw->spool_cond);
    pthread_cond_destroy(&aw->idle_cond);
    pthread_mutex_destroy(&aw->mu);
    free(aw);
}

static void job_unref(struct ackwait_job *job)
{
    if (atomic_fetch_sub(&job->refs, 1) != 1)
        return;
    struct ackwait *aw = job->aw;
    free(job);
    ackwait_unref(aw);
}

/* Sets each record's state from its verdict: acked, or `otherwise`. */
static bool job_states_set(struct ackwait_job *job, enum spool_state otherwise)
{
    bool all_acked = true;
    for (size_t i = 0; i < job->n; i++) {
        bool acked = atomic_load(&job->slots[i].verdict) == ACKWAIT_ACKED;
        job->recs[i].state = acked ? SPOOL_ACKED : otherwise;
        all_acked = all_acked && acked;
    }
    return all_acked;
}

/* Calls done with the states set, and drops the job's end reference. */
static void job_end(struct ackwait_job *job)
{
    bool durable = true;
    for (size_t i = 0; i < job->n; i++)
        durable =
            durable && job->recs[i].state != SPOOL_LOST && job->recs[i].state != SPOOL_PENDING;
    job->done(job->arg, job->recs, job->n, durable);
    job_unref(job);
}

/* After a thread that had taken jobs (ending += k) ended them. */
static void ackwait_ended(struct ackwait *aw, int k)
{
    pthread_mutex_lock(&aw->mu);
    aw->ending -= k;
    if (aw->ending == 0)
        pthread_cond_broadcast(&aw->idle_cond);
    pthread_mutex_unlock(&aw->mu);
}

/* --- verdicts --------------------------------------------------------------------- */

/* Every record has a verdict. If the job is still open, it ends here when
 * all are acks; a failed record sends it to the spool now rather than at
 * its deadline. */
static void job_verdicts_in(struct ackwait_job *job)
{
    struct ackwait *aw = job->aw;
    bool all_acked = true;
    for (size_t i = 0; i < job->n; i++)
        all_acked = all_acked && atomic_load(&job->slots[i].verdict) == ACKWAIT_ACKED;
    pthread_mutex_lock(&aw->mu);
    if (job->phase != ACKWAIT_OPEN) {
        pthread_mutex_unlock(&aw->mu);
        return;
    }
    list_remove(&aw->open, job);
    if (!all_acked) {
        job->phase = ACKWAIT_QUEUED;
        list_push(&aw->queue, job);
        pthread_cond_signal(&aw->spool_cond);
        pthread_mutex_unlock(&aw->mu);
        return;
    }
    job->phase = ACKWAIT_ENDING;
    aw->ending++;
    pthread_mutex_unlock(&aw->mu);
    job_states_set(job, SPOOL_LOST);
    job_end(job);
    ackwait_ended(aw, 1);
}

/* The producer's delivery report for one record (its poll thread). */
static void ackwait_delivered(void *arg, bool acked)
{
    struct ackwait_slot *slot = arg;
    struct ackwait_job *job = slot->job;
    atomic_store(&slot->verdict, acked ? ACKWAIT_ACKED : ACKWAIT_FAILED);
    if (atomic_fetch_sub(&job->outstanding, 1) == 1)
        job_verdicts_in(job);
    job_unref(job);
}

/* --- the deadline thread --------------------------------------------------------- */

static void ackwait_deadline_main(struct worker *w, void *arg)
{
    (void)w; /* ends on aw->stopping, which ackwait_stop sets first */
    struct ackwait *aw = arg;
    pthread_mutex_lock(&aw->mu);
    while (!aw->stopping) {
        struct ackwait_job *job = aw->open.head;
        if (!job) {
            pthread_cond_wait(&aw->deadline_cond, &aw->mu);
            continue;
        }
        int64_t now = clock_mono_ms();
        if (job->deadline_ms > now) {
            struct timespec until;
            until.tv_sec = (time_t)(job->deadline_ms / 1000);
            until.tv_nsec = (long)(job->deadline_ms % 1000) * 1000000L;
            pthread_cond_timedwait(&aw->deadline_cond, &aw->mu, &until);
            continue;
        }
        /* Past the budget: whatever is unconfirmed goes to the spool. */
        list_remove(&aw->open, job);
        job->phase = ACKWAIT_QUEUED;
        list_push(&aw->queue, job);
        pthread_cond_signal(&aw->spool_cond);
    }
    pthread_mutex_unlock(&aw->mu);
}

/* --- spool workers ----------------------------------------------------------------- */

/* Commits the unconfirmed records of jobs[0..k) in one transaction and
 * sets every record's state. */
static void ackwait_spool_write(struct ackwait *aw, struct ackwait_job **jobs, int k)
{
    size_t total = 0;
    for (int j = 0; j < k; j++)
        total += jobs[j]->n;
    struct spool_record *all = calloc(total ? total : 1, sizeof *all);
    size_t m = 0;
    for (int j = 0; j < k; j++) {
        /* Acks that came in meanwhile spare a spool row (and a duplicate). */
        job_states_set(jobs[j], SPOOL_PENDING);
        if (!all)
            continue;
        for (size_t i = 0; i < jobs[j]->n; i++)
            if (jobs[j]->recs[i].state == SPOOL_PENDING)
                all[m++] = jobs[j]->recs[i];
    }
    int rc = all ? spool_store(aw->spool, all, m) : -1;
    if (!all)
        log_error("spool write skipped: out of memory");
    m = 0;
    for (int j = 0; j < k; j++) {
        for (size_t i = 0; i < jobs[j]->n; i++) {
            struct spool_record *r = &jobs[j]->recs[i];
            if (r->state != SPOOL_PENDING)
                continue;
            r->state = rc == 0 && all ? all[m].state : SPOOL_LOST;
            m++;
        }
    }
    free(all);
}

static void ackwait_worker_main(struct worker *w, void *arg)
{
    (void)w; /* ends on aw->stopping, which ackwait_stop sets first */
    struct ackwait *aw = arg;
    struct ackwait_job *jobs[ACKWAIT_SPOOL_BATCH];
    pthread_mutex_lock(&aw->mu);
    for (;;) {
        while (!aw->queue.head && !aw->stopping)
            pthread_cond_wait(&aw->spool_cond, &aw->mu);
        if (aw->stopping)
            break; /* ackwait_stop ends what is still queued */
        int k = 0;
        while (k < ACKWAIT_SPOOL_BATCH && aw->queue.head) {
            struct ackwait_job *job = aw->queue.head;
            list_remove(&aw->queue, job);
            job->phase = ACKWAIT_ENDING;
            jobs[k++] = job;
        }
        aw->ending += k;
        pthread_mutex_unlock(&aw->mu);
        ackwait_spool_write(aw, jobs, k);
        for (int j = 0; j < k; j++)
            job_end(jobs[j]);
        pthread_mutex_lock(&aw->mu);
        aw->ending -= k;
        if (aw->ending == 0)
            pthread_cond_broadcast(&aw->idle_cond);
    }
    pthread_mutex_unlock(&aw->mu);
}

/* --- the API ------------------------------------------------------------------------- */

struct ackwait *ackwait_new(const struct ackwait_options *opts, char *errstr, size_t errcap)
{
    if (!opts || !opts->producer || !opts->spool || opts->budget_ms < 0 ||
        opts->spool_workers < 0 || opts->spool_workers > ACKWAIT_SPOOL_WORKERS_MAX) {
        snprintf(errstr, errcap, "ackwait needs a producer, a spool, a budget and 0..%d workers",
                 ACKWAIT_SPOOL_WORKERS_MAX);
        return NULL;
    }
    struct ackwait *aw = calloc(1, sizeof *aw);
    if (!aw) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    aw->producer = opts->producer;
    aw->spool = opts->spool;
    aw->budget_ms = opts->budget_ms;
    atomic_init(&aw->refs, 1);
    pthread_mutex_init(&aw->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&aw->deadline_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&aw->spool_cond, NULL);
    pthread_cond_init(&aw->idle_cond, NULL);

    int want = opts->spool_workers ? opts->spool_workers : ACKWAIT_SPOOL_WORKERS_DEFAULT;
    aw->deadline_thread =
        worker_start("ackwait-deadline", ackwait_deadline_main, aw, errstr, errcap);
    if (!aw->deadline_thread)
        goto fail;
    for (; aw->nworkers < want; aw->nworkers++) {
        char name[32];
        snprintf(name, sizeof name, "ackwait-spool-%d", aw->nworkers);
        aw->workers[aw->nworkers] = worker_start(name, ackwait_worker_main, aw, errstr, errcap);
        if (!aw->workers[aw->nworkers])
            goto fail;
    }
    return aw;
fail:
    ackwait_free(&aw);
    return NULL;
}

int ackwait_submit(struct ackwait *aw, struct spool_record *recs, size_t n, ackwait_done_fn done,
                   void *arg)
{
    if (!aw || !done || (n > 0 && !recs))
        return -1;
    struct ackwait_job *job = calloc(1, sizeof *job + n * sizeof job->slots[0]);
    if (!job)
        return -1;
    job->aw = aw;
    job->recs = recs;
    job->n = n;
    job->done = done;
    job->arg = arg;
    job->deadline_ms = clock_mono_ms() + aw->budget_ms;
    atomic_init(&job->refs, 1);
    atomic_init(&job->outstanding, n + 1);
    atomic_fetch_add(&aw->refs, 1);
    for (size_t i = 0; i < n; i++) {
        job->slots[i].job = job;
        atomic_init(&job->slots[i].verdict, ACKWAIT_PENDING);
    }

    /* Produced before the job is listed, so that nobody can end it (and let
     * the caller free recs) while this loop still reads them. */
    for (size_t i = 0; i < n; i++) {
        recs[i].state = SPOOL_PENDING;
        atomic_fetch_add(&job->refs, 1);
        if (kafka_produce_notify(aw->producer, recs[i].topic, recs[i].key, recs[i].keylen,
                                 recs[i].payload, recs[i].len, ackwait_delivered,
                                 &job->slots[i]) != 0) {
            /* Refused (local queue full): it goes to the spool. */
            atomic_fetch_sub(&job->refs, 1);
            atomic_store(&job->slots[i].verdict, ACKWAIT_FAILED);
            atomic_fetch_sub(&job->outstanding, 1);
        }
    }

    pthread_mutex_lock(&aw->mu);
    if (aw->stopping) {
        job->phase = ACKWAIT_ENDING;
        pthread_mutex_unlock(&aw->mu);
        job_states_set(job, SPOOL_LOST);
        /* Its outstanding count never reaches 0 with the job open, so late
         * reports only drop their references. */
        job_end(job);
        return 0;
    }
    job->phase = ACKWAIT_OPEN;
    bool was_empty = aw->open.head == NULL;
    list_push(&aw->open, job);
    if (was_empty)
        pthread_cond_signal(&aw->deadline_cond);
    pthread_mutex_unlock(&aw->mu);

    if (atomic_fetch_sub(&job->outstanding, 1) == 1)
        job_verdicts_in(job);
    return 0;
}

void ackwait_stop(struct ackwait *aw)
{
    if (!aw)
        return;
    pthread_mutex_lock(&aw->mu);
    if (aw->stopped) {
        pthread_mutex_unlock(&aw->mu);
        return;
    }
    aw->stopping = true;
    pthread_cond_broadcast(&aw->deadline_cond);
    pthread_cond_broadcast(&aw->spool_cond);
    /* Whatever is open or queued is ended here; writes in progress finish. */
    struct ackwait_list left = {0};
    while (aw->open.head) {
        struct ackwait_job *job = aw->open.head;
        list_remove(&aw->open, job);
        job->phase = ACKWAIT_ENDING;
        list_push(&left, job);
    }
    while (aw->queue.head) {
        struct ackwait_job *job = aw->queue.head;
        list_remove(&aw->queue, job);
        job->phase = ACKWAIT_ENDING;
        list_push(&left, job);
    }
    while (aw->ending > 0)
        pthread_cond_wait(&aw->idle_cond, &aw->mu);
    aw->stopped = true;
    pthread_mutex_unlock(&aw->mu);

    int ended = 0;
    while (left.head) {
        struct ackwait_job *job = left.head;
        list_remove(&left, job);
        job_states_set(job, SPOOL_LOST);
        job_end(job);
        ended++;
    }
    if (ended > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", ended);
        log_warn("webhook requests still waiting for acks at shutdown ended as not durable",
                 "requests", count);
    }
    /* Each thread has seen aw->stopping by now or will at its next check. */
    worker_stop(&aw->deadline_thread, 0);
    for (int i = 0; i < aw->nworkers; i++)
        worker_stop(&aw->workers[i], 0);
    aw->nworkers = 0;
}

void ackwait_free(struct ackwait **awp)
{
    if (!awp || !*awp)
        return;
    ackwait_stop(*awp);
    ackwait_unref(*awp);
    *awp = NULL;
}
