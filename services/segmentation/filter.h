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

/* ---- Added by the filter part (issue 10) -------------------------------- */

#include "fields.h"

/* Caps that keep one tree's SQL small whatever a client sends: children of
 * one all/any, conditions in a tree (saved segments inlined included), and
 * the seconds last_message_within_s may reach back (100 years). */
#define FILTER_GROUP_MAX 100
#define FILTER_NODES_MAX 500
#define FILTER_WITHIN_S_MAX 3153600000LL

/* A field as the compiler needs it. choices: FIELD_CHOICE's array of
 * strings, a reference the compiler releases (json_decref), else NULL. */
struct filter_field {
    int64_t id;
    enum field_type type;
    json_t *choices;
};

/* Where names are resolved: the database (filter_compile) or a test's
 * table. Each callback answers for the one channel ctx stands for. All but
 * route are required; they run on the compiling thread only. */
struct filter_catalog {
    void *ctx;
    /* The tag's id (> 0), 0 unknown, -1 error. */
    int64_t (*tag_id)(void *ctx, const char *name);
    /* 1 found (def filled), 0 unknown, -1 error. */
    int (*field)(void *ctx, const char *name, struct filter_field *def);
    /* 1 found with *filter the saved tree (a new reference the compiler
     * releases), 0 unknown, -1 error. id is a well-formed UUID. */
    int (*segment)(void *ctx, const char *id, json_t **filter);
    /* 1 known route code, 0 unknown, -1 error. NULL: every well-formed code
     * ([A-Za-z0-9_-]{1,32}) is accepted (routes come with issue 11). */
    int (*route)(void *ctx, const char *code);
};

/* What filter_compile does, over any catalog. self_segment_id (may be
 * NULL): the saved segment this tree is about to become, so a reference
 * back to it is refused as a cycle. now_ms: the wall time (unix ms) that
 * last_message_within_s counts back from; 0 reads clock_wall_ms(). Same
 * returns as filter_compile (-2 when the catalog failed or out of memory).
 * Pure but for the catalog's calls; any thread. */
int filter_compile_with(const struct filter_catalog *cat, const json_t *filter,
                        const char *path_prefix, int first_param, const char *self_segment_id,
                        int64_t now_ms, struct filter_sql *out, struct jsonf_error *err);

/* filter_compile for a tree about to be stored as segment self_segment_id
 * (NULL: a new one), so that a reference back to it is a cycle. */
int filter_compile_segment(struct db *db, const char *channel_id, const json_t *filter,
                           const char *path_prefix, int first_param, const char *self_segment_id,
                           struct filter_sql *out, struct jsonf_error *err);

/* True when s is a UUID in its 36-character text form (any case). */
bool filter_uuid_valid(const char *s);

#endif
