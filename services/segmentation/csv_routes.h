/* The friend list as CSV (common/csv.h): GET .../friends.csv streams it,
 * POST .../friends/import.csv sets tags and fields from it. Admin role
 * only. README.md "CSV" and openapi.yaml document both.
 *
 * Export streams keyset pages of SEG_CSV_PAGE friends (WHERE id > last
 * ORDER BY id LIMIT n, no transaction held between pages) on the admin
 * server's worker thread that serves the connection, only as fast as the
 * client reads; the request's pool connection is held until the response
 * ends, and given back as soon as the client disconnects. Memory is one
 * page of CSV per export whatever the number of friends.
 *
 * Import reads the whole body (at most SEG_CSV_IMPORT_MAX bytes), checks
 * every row, and applies nothing unless all are good; then it applies all
 * in one transaction, set-based (one statement per column and batch of
 * rows), and enqueues the same TagAdded / TagRemoved / FieldChanged events
 * tags.c and fields.c do, in batches. */
#ifndef KIZUNA_SEGMENTATION_CSV_ROUTES_H
#define KIZUNA_SEGMENTATION_CSV_ROUTES_H

#include <stdbool.h>

#include "app.h"

/* Rows per export page. */
#define SEG_CSV_PAGE 5000
/* Columns of an export or an import. */
#define SEG_CSV_COLUMNS_MAX 64
/* An import body; the admin server's body cap is set to this. */
#define SEG_CSV_IMPORT_MAX ((size_t)16 << 20)
/* One CSV row's bytes, in and out of the parser (csv.h). */
#define SEG_CSV_ROW_MAX (64 * 1024)
/* Rows an import may have. */
#define SEG_CSV_IMPORT_ROWS_MAX 500000
/* Exports streaming at once: each holds a pool connection (4 by default)
 * for as long as its client reads, so more would starve the rest of the
 * API. One more answers 503 busy (Retry-After). */
#define SEG_CSV_EXPORTS_MAX 2
/* Imports at once: one holds an admin worker thread (2) and a connection
 * for its whole check and apply; another answers 503 busy (Retry-After). */
#define SEG_CSV_IMPORTS_MAX 1
/* Errors an import lists before it stops looking. */
#define SEG_CSV_ERRORS_MAX 100

/* GET friends.csv. seg_route_fn; takes r->db for the stream (leaves it
 * NULL) when it answers 200. Admin worker thread. */
bool csv_route_export(struct seg_request *r);
/* POST friends/import.csv. seg_route_fn. Admin worker thread. */
bool csv_route_import(struct seg_request *r);

#endif
