/* See seg_page.h. */
#include "seg_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "db.h"

bool seg_page_limit(struct seg_request *r, int *limit)
{
    const char *text = httpd_request_query(r->req, "limit");
    *limit = SEG_LIST_DEFAULT;
    if (!text)
        return true;
    int v = 0;
    bool ok = *text && strlen(text) <= 3;
    for (const char *p = text; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (*p - '0');
    }
    if (!ok || v < 1 || v > SEG_LIST_MAX) {
        httpd_respond_error(r->resp, 400, "invalid_argument", "an integer from 1 to 500", "limit");
        return false;
    }
    *limit = v;
    return true;
}

bool seg_page_cursor(struct seg_request *r, const char **cursor)
{
    *cursor = httpd_request_query(r->req, "cursor");
    if (*cursor && !filter_uuid_valid(*cursor)) {
        httpd_respond_error(r->resp, 400, "invalid_argument", "not a cursor from this API",
                            "cursor");
        return false;
    }
    return true;
}

int seg_page_query(struct db *db, const char *head, const char *tail, const char *const *params,
                   int n, const struct filter_sql *q, struct db_result **out)
{
    size_t len = strlen(head) + strlen(q->sql) + strlen(tail) + 3;
    char *sql = malloc(len);
    const char **all = calloc((size_t)(n + q->nparams) + 1, sizeof *all);
    int rc = DB_FATAL;
    if (sql && all) {
        snprintf(sql, len, "%s(%s)%s", head, q->sql, tail);
        for (int i = 0; i < n; i++)
            all[i] = params[i];
        for (int i = 0; i < q->nparams; i++)
            all[n + i] = q->params[i];
        rc = db_exec(db, sql, n + q->nparams, all, out);
    }
    free(sql);
    free(all);
    return rc;
}

void seg_page_respond_filter(struct seg_request *r, const struct jsonf_error *err)
{
    admin_api_respond_invalid(r->resp, err, "invalid_filter", NULL);
}
