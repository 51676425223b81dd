/* A running kizuna-segmentation for integration tests, on its real schema
 * in the local stack: started on SEG_ITEST_PORT with a clean schema, its
 * channels seeded straight into `segmentation.channels` (as its consumer of
 * the `channels` topic would store them), and called as any tenant and role
 * with a token signed with $KIZUNA_JWT_KEY. One at a time per process. */
#ifndef KIZUNA_SEG_ITEST_H
#define KIZUNA_SEG_ITEST_H

#include <stdbool.h>
#include <stddef.h>

#include "itest.h"

#define SEG_ITEST_PORT 18182

/* Drops the segmentation schema (so migrations run afresh), starts the
 * service (its channels consumer in a new group, so that it reads the
 * `channels` topic from the beginning into the fresh table) with extra settings ("K=V", NULL-terminated, or NULL) and waits
 * until it is ready. The log is $BUILD/tests/seg-<tag>.log. */
void seg_itest_start(const char *tag, const char *const *settings);
/* SIGTERM, expects a clean exit and a clean log. From a Test only. */
void seg_itest_finish(void);
/* For .fini: stops the service if a test ended early; checks nothing. */
void seg_itest_reap(void);

/* Inserts (or replaces) a channel owned by tenant in zone tz. */
void seg_itest_channel(const char *channel_id, const char *tenant, const char *tz);

/* Calls the service: method, path ("/v1/channels/C/tags"), an optional JSON
 * body, as role of tenant. Returns the status; *res (when not NULL) gets
 * the answer for itest_http_free. */
long seg_itest_call(const char *tenant, const char *role, const char *method, const char *path,
                    const char *json_body, struct itest_http *res);

/* seg_itest_call with any body and Content-Type (CSV imports): body is len
 * bytes (may be NULL), content_type NULL sends none. */
long seg_itest_call_body(const char *tenant, const char *role, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len,
                         struct itest_http *res);

/* A connection to the segmentation schema (search_path set), for asserting
 * what was stored. Owned by the harness; valid until seg_itest_finish. */
struct db *seg_itest_db(void);

#endif
