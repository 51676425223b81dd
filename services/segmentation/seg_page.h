/* Small pieces the filter part's routes share (segments, the friends list,
 * bulk tags), beside seg_req.h's: a list keyed by UUID, and a compiled
 * filter run as one query with the caller's own parameters first. All run
 * on the admin API's worker thread that owns the seg_request. */
#ifndef KIZUNA_SEGMENTATION_SEG_PAGE_H
#define KIZUNA_SEGMENTATION_SEG_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "app.h"
#include "filter.h"
#include "seg_req.h"

struct db_result;

/* ?limit= (1..SEG_LIST_MAX, default SEG_LIST_DEFAULT, as seg_req.h's
 * seg_list_params) into *limit. False after answering 400
 * invalid_argument (field "limit"). */
bool seg_page_limit(struct seg_request *r, int *limit);

/* ?cursor= of a list keyed by UUID (segments): NULL when absent. False
 * after answering 400 invalid_argument (field "cursor"). (Lists keyed by
 * a bigint use seg_req.h's seg_list_params.) */
bool seg_page_cursor(struct seg_request *r, const char **cursor);

/* Runs head, then "(" the compiled filter ")", then tail as one query,
 * with params[0..n) as $1..$n before the filter's own. The caller compiled
 * q with first_param n + 1. Returns db_exec's status, *out the result. */
int seg_page_query(struct db *db, const char *head, const char *tail, const char *const *params,
                   int n, const struct filter_sql *q, struct db_result **out);

/* Answers 400 invalid_filter for err (its path in field). */
void seg_page_respond_filter(struct seg_request *r, const struct jsonf_error *err);

#endif
