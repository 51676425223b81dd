/* Filter trees (openapi.yaml, "Filter") compiled to ONE parameterised SQL
 * predicate over the friends row `f`: values travel as parameters, never
 * in the SQL text. Names (tags, fields, routes, segments) are resolved
 * against the channel when compiling, so an unknown one, an operator that
 * does not fit the field's type, a cycle through saved segments or a depth
 * over FILTER_DEPTH_MAX is refused with the node's JSON path.
 *
 * CONTRACT (issue 10): other parts build on these signatures; the filter
 * part owns this file and may add to it, not change what is here. */
#ifndef KIZUNA_SEGMENTATION_FILTER_H
#define KIZUNA_SEGMENTATION_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "jsonf.h"

struct db;

#define FILTER_DEPTH_MAX 16

/* A compiled filter. sql is a boolean expression that refers to the
 * friends table as `f` and to parameters $first..$(first+nparams-1);
 * params[i] is $(first+i)'s text (never NULL). Owned: filter_sql_free. */
struct filter_sql {
    char *sql;
    char **params;
    int nparams;
};

/* Compiles filter for channel_id. Parameters are numbered from first_param
 * (so the caller's own, such as the channel id, come before). Returns 0;
 * or -1 with err filled (code "invalid_filter", path like
 * "filter.all[1].op") for a refused tree; or -2 on a database error
 * (db_error_message tells). path_prefix names the tree in err's path
 * ("filter"). */
int filter_compile(struct db *db, const char *channel_id, const json_t *filter,
                   const char *path_prefix, int first_param, struct filter_sql *out,
                   struct jsonf_error *err);

void filter_sql_free(struct filter_sql *q);

/* Evaluates filter for one friend (the scheduler's step conditions, through
 * issue 11): 1 holds, 0 does not, -1 refused (err), -2 database error. */
int filter_matches(struct db *db, const char *channel_id, const json_t *filter, int64_t friend_id,
                   struct jsonf_error *err);

#endif
