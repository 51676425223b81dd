/* PostgreSQL's binary array format (array_recv): int32 ndim, int32 flags
 * (1 when some element is NULL), uint32 element type oid, then per
 * dimension int32 size and int32 lower bound, then per element int32
 * length (-1 for NULL) and the element's binary form. For text and bytea
 * that form is the raw bytes. Everything is big-endian. The header is
 * reserved up front and written by pgarray_finish, when the count is known. */
#include "pgarray.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PGARRAY_HEADER 20 /* ndim, flags, oid, size, lower bound */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static bool reserve(struct pgarray *a, size_t more)
{
    if (a->failed)
        return false;
    if (more > (size_t)INT_MAX - a->len) {
        a->failed = true; /* a parameter's length is an int */
        return false;
    }
    if (a->len + more <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more)
        cap *= 2;
    uint8_t *p = realloc(a->buf, cap);
    if (!p) {
        a->failed = true;
        return false;
    }
    a->buf = p;
    a->cap = cap;
    return true;
}

void pgarray_init(struct pgarray *a, uint32_t elem_oid)
{
    memset(a, 0, sizeof *a);
    a->elem_oid = elem_oid;
    if (reserve(a, PGARRAY_HEADER))
        a->len = PGARRAY_HEADER;
}

void pgarray_add(struct pgarray *a, const void *p, size_t len)
{
    if (!p)
        len = 0;
    if (len > (size_t)INT32_MAX || !reserve(a, 4 + len)) {
        a->failed = true;
        return;
    }
    put32(a->buf + a->len, p ? (uint32_t)len : UINT32_MAX); /* -1: NULL */
    a->len += 4;
    if (len > 0)
        memcpy(a->buf + a->len, p, len);
    a->len += len;
    a->count++;
    if (!p)
        a->has_null = true;
}

void pgarray_add_text(struct pgarray *a, const char *s)
{
    pgarray_add(a, s, s ? strlen(s) : 0);
}

void pgarray_add_ll(struct pgarray *a, long long v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", v);
    pgarray_add(a, text, (size_t)n);
}

const char *pgarray_finish(struct pgarray *a, int *len)
{
    if (a->failed || !a->buf)
        return NULL;
    if (a->count == 0) {
        /* No dimensions: the empty array. */
        put32(a->buf, 0);
        put32(a->buf + 4, 0);
        put32(a->buf + 8, a->elem_oid);
        *len = 12;
        return (const char *)a->buf;
    }
    put32(a->buf, 1);
    put32(a->buf + 4, a->has_null ? 1 : 0);
    put32(a->buf + 8, a->elem_oid);
    put32(a->buf + 12, (uint32_t)a->count);
    put32(a->buf + 16, 1);
    *len = (int)a->len;
    return (const char *)a->buf;
}

void pgarray_free(struct pgarray *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}
