/* A fixed set of PostgreSQL connections shared by the admin API's worker
 * threads: a request borrows one for its work and gives it back, so a long
 * request (a CSV export) holds one connection and the others go on. A
 * borrower that finds none free within wait_ms gets NULL and answers 503.
 * Thread-safe. */
#ifndef KIZUNA_DB_POOL_H
#define KIZUNA_DB_POOL_H

#include <stddef.h>

struct db;
struct db_pool;

/* Opens size connections to dsn (db_connect's options). NULL with errstr
 * filled when one cannot be opened. */
struct db_pool *db_pool_new(const char *dsn, int size, char *errstr, size_t errcap);
/* Closes every connection; all must have been given back. NULL-safe. */
void db_pool_free(struct db_pool **p);

/* Borrows a connection, waiting up to wait_ms for one. NULL: none free in
 * time. The connection is outside any transaction. */
struct db *db_pool_acquire(struct db_pool *p, long wait_ms);
/* Gives it back (rolls back a transaction left open) and sets *db to NULL. */
void db_pool_release(struct db_pool *p, struct db **db);

#endif
