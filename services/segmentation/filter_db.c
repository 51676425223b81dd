/* The database side of filters: the catalog that resolves a tree's tag,
 * field and segment names for one channel (filter.c does the compiling),
 * and filter_matches, the same SQL asked for one friend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "filter.h"

struct filter_db_catalog {
    struct db *db;
    const char *channel_id;
};

static int64_t catalog_tag_id(void *ctx, const char *name)
{
    struct filter_db_catalog *k = ctx;
    const char *params[] = {k->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(k->db, "SELECT id FROM tags WHERE channel_id = $1 AND name = $2", 2, params,
                &res) != DB_OK)
        return -1;
    int64_t id = 0;
    if (db_result_rows(res) == 1)
        id = strtoll(db_result_value(res, 0, 0), NULL, 10);
    db_result_free(&res);
    return id;
}

static int catalog_field(void *ctx, const char *name, struct filter_field *def)
{
    static const char *const types[] = {"text", "number", "date", "datetime", "choice"};
    static const enum field_type kinds[] = {FIELD_TEXT, FIELD_NUMBER, FIELD_DATE, FIELD_DATETIME,
                                            FIELD_CHOICE};
    struct filter_db_catalog *k = ctx;
    const char *params[] = {k->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(k->db,
                "SELECT id, type, coalesce(array_to_json(choices), '[]'::json)::text FROM fields"
                " WHERE channel_id = $1 AND name = $2",
                2, params, &res) != DB_OK)
        return -1;
    int found = 0;
    if (db_result_rows(res) == 1) {
        def->id = strtoll(db_result_value(res, 0, 0), NULL, 10);
        const char *type = db_result_value(res, 0, 1);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(type, types[i]) == 0)
                def->type = kinds[i];
        def->choices = NULL;
        if (def->type == FIELD_CHOICE)
            def->choices = json_loads(db_result_value(res, 0, 2), 0, NULL);
        found = def->type == FIELD_CHOICE && !def->choices ? -1 : 1;
    }
    db_result_free(&res);
    return found;
}

static int catalog_segment(void *ctx, const char *id, json_t **filter)
{
    struct filter_db_catalog *k = ctx;
    const char *params[] = {k->channel_id, id};
    struct db_result *res = NULL;
    if (db_exec(k->db, "SELECT filter::text FROM segments WHERE channel_id = $1 AND id = $2::uuid",
                2, params, &res) != DB_OK)
        return -1;
    int found = 0;
    if (db_result_rows(res) == 1) {
        *filter = json_loads(db_result_value(res, 0, 0), JSON_DECODE_ANY, NULL);
        found = *filter ? 1 : -1;
    }
    db_result_free(&res);
    return found;
}

int filter_compile_segment(struct db *db, const char *channel_id, const json_t *filter,
                           const char *path_prefix, int first_param, const char *self_segment_id,
                           struct filter_sql *out, struct jsonf_error *err)
{
    struct filter_db_catalog k = {.db = db, .channel_id = channel_id};
    struct filter_catalog cat = {
        .ctx = &k, .tag_id = catalog_tag_id, .field = catalog_field, .segment = catalog_segment};
    return filter_compile_with(&cat, filter, path_prefix, first_param, self_segment_id, 0, out,
                               err);
}

int filter_compile(struct db *db, const char *channel_id, const json_t *filter,
                   const char *path_prefix, int first_param, struct filter_sql *out,
                   struct jsonf_error *err)
{
    return filter_compile_segment(db, channel_id, filter, path_prefix, first_param, NULL, out, err);
}

int filter_matches(struct db *db, const char *channel_id, const json_t *filter, int64_t friend_id,
                   struct jsonf_error *err)
{
    struct filter_sql q;
    int rc = filter_compile(db, channel_id, filter, "filter", 3, &q, err);
    if (rc < 0)
        return rc;
    static const char head[] = "SELECT EXISTS (SELECT 1 FROM friends f WHERE f.id = $1::bigint "
                               "AND f.channel_id = $2 AND (";
    size_t len = sizeof head - 1 + strlen(q.sql) + 3;
    char *sql = malloc(len);
    const char **params = calloc((size_t)q.nparams + 2, sizeof *params);
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)friend_id);
    rc = -2;
    if (sql && params) {
        snprintf(sql, len, "%s%s))", head, q.sql);
        params[0] = id;
        params[1] = channel_id;
        for (int i = 0; i < q.nparams; i++)
            params[i + 2] = q.params[i];
        struct db_result *res = NULL;
        if (db_exec(db, sql, q.nparams + 2, params, &res) == DB_OK) {
            rc = db_result_rows(res) == 1 && strcmp(db_result_value(res, 0, 0), "t") == 0;
            db_result_free(&res);
        }
    }
    free(sql);
    free(params);
    filter_sql_free(&q);
    return rc;
}
