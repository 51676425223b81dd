/* What csv_import.c (reading and checking an import) hands csv_apply.c
 * (applying it set-based, with its events). Internal to the CSV routes. */
#ifndef KIZUNA_SEGMENTATION_CSV_IMPORT_H
#define KIZUNA_SEGMENTATION_CSV_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fields.h"

struct db;

enum imp_kind { IMP_TAG, IMP_FIELD };

struct imp_col {
    enum imp_kind kind;
    char header[8 + FIELD_NAME_MAX * 4 + 1]; /* "tag:NAME" / "field:NAME" as written */
    const char *name;                        /* in header, after the prefix */
    bool known;                              /* the tag or field exists */
    int64_t tag_id;
    struct field_def def; /* IMP_FIELD */
};

/* A checked import: nrows rows of ncols cells (after user_id). A tag cell
 * is "1", "0" (static) or NULL (leave); a field cell the value's checked
 * text form (owned) or NULL (leave). */
struct imp {
    int ncols;
    struct imp_col cols[64];
    size_t nrows;
    char **user_id;     /* [nrows], owned */
    int64_t *friend_id; /* [nrows], 0 until resolved */
    char **cell;        /* [nrows * ncols] */
};

/* What one apply changed. */
struct imp_result {
    long tags_added;
    long tags_removed;
    long fields_changed;
};

/* Applies imp inside the caller's transaction: every tag and field column
 * set-based, in batches, with the events tags.c and fields.c would emit
 * (TagAdded, TagRemoved, FieldChanged: only for what changed; key
 * "<channel_id>:<user_id>"), enqueued on friend.events in batches. 0, or -1
 * on a database error (db_error_message tells) or out of memory. */
int csv_import_apply(struct db *db, const char *tenant_id, const char *channel_id,
                     const char *causation_id, const struct imp *imp, struct imp_result *out);

#endif
