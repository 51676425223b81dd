/* The inbox: a consumer records each event id in the same transaction as the
 * effects of handling it. A redelivered event then finds its row and is
 * skipped, and a rolled-back attempt leaves no row, so it is handled again.
 * A concurrent claim of the same id waits on the primary key until the first
 * transaction ends, then sees its outcome: exactly one of them wins. */
#include "inbox.h"

#include <stdio.h>

#include "db.h"

int inbox_claim(struct db *db, const char *consumer, const char *event_id)
{
    if (!db || !consumer || !event_id)
        return DB_FATAL;
    const char *params[] = {consumer, event_id};
    struct db_result *r = NULL;
    enum db_status st = db_exec(db,
                                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) "
                                "ON CONFLICT (consumer, event_id) DO NOTHING",
                                2, params, &r);
    if (st != DB_OK)
        return st;
    long n = db_result_affected(r);
    db_result_free(&r);
    return n == 1 ? 1 : 0;
}

long inbox_prune(struct db *db, long max_age_s)
{
    if (!db || max_age_s < 0)
        return DB_FATAL;
    char age[24];
    snprintf(age, sizeof age, "%ld", max_age_s);
    const char *params[] = {age};
    struct db_result *r = NULL;
    enum db_status st = db_exec(db,
                                "DELETE FROM inbox "
                                "WHERE received_at < now() - make_interval(secs => $1::bigint)",
                                1, params, &r);
    if (st != DB_OK)
        return st;
    long n = db_result_affected(r);
    db_result_free(&r);
    return n;
}
