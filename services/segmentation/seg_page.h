/* Small pieces the filter part's routes share (segments, the friends list,
 * bulk tags): a list's ?limit= and ?cursor=, a JSON body read into a tree,
 * a filter compiled into a query with the caller's own parameters first,
 * and the one way a time column leaves the database (RFC 3339 UTC). All run
 * on the admin API's worker thread that owns the seg_request. */
#ifndef KIZUNA_SEGMENTATION_SEG_PAGE_H
#define KIZUNA_SEGMENTATION_SEG_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "app.h"
#include "filter.h"

struct db_result;

#define SEG_PAGE_DEFAULT 50
#define SEG_PAGE_MAX 500

/* A timestamptz column as RFC 3339 UTC text with milliseconds (NULL stays
 * NULL), for SELECT lists. col is SQL text written by the caller. */
#define SEG_SQL_TIME(col) \
    "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* ?limit= (1..SEG_PAGE_MAX, default SEG_PAGE_DEFAULT) into *limit. False
 * after answering 400 invalid_value (field "limit"). */
bool seg_page_limit(struct seg_request *r, int *limit);

/* ?cursor=, which must be a friends/segments keyset value this service
 * wrote: digits (1..18) when numeric, else a UUID. *cursor is NULL when
 * absent. False after answering 400 invalid_value (field "cursor"). */
bool seg_page_cursor(struct seg_request *r, bool numeric, const char **cursor);

/* The request's JSON object body (at most SEG_BODY_MAX bytes, duplicates
 * refused): a new reference, or NULL after answering 413/415/400. */
json_t *seg_page_body(struct seg_request *r);

/* Runs head, then "(" the compiled filter ")", then tail as one query,
 * with params[0..n) as $1..$n before the filter's own. The caller compiled
 * q with first_param n + 1. Returns db_exec's status, *out the result. */
int seg_page_query(struct db *db, const char *head, const char *tail, const char *const *params,
                   int n, const struct filter_sql *q, struct db_result **out);

/* Answers 400 invalid_filter for err (its path in field). */
void seg_page_respond_filter(struct seg_request *r, const struct jsonf_error *err);

#endif
