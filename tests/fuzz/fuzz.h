/* What the libFuzzer targets in tests/fuzz share: the entry point's
 * prototype, a contract check that stops the run with the broken promise
 * named (libFuzzer then saves the input), and copies of the input that
 * end exactly where it ends, so that AddressSanitizer sees a read one byte
 * past it. Header-only; each target is one translation unit. */
#ifndef KIZUNA_FUZZ_H
#define KIZUNA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken contract is a finding like a crash: abort, which libFuzzer
 * reports and saves as crash-<sha1>. */
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The input as a malloc'd NUL-terminated string of exactly len + 1 bytes
 * (an embedded NUL ends it early, as it would for a C string from the
 * network). Aborts when out of memory: that is not a finding. */
static inline char *fuzz_strndup(const uint8_t *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    if (len)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* The input as a malloc'd buffer of exactly len bytes (never NULL). */
static inline uint8_t *fuzz_memdup(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        abort();
    if (len)
        memcpy(p, data, len);
    return p;
}

/* True when the first cap bytes of s hold a NUL. */
static inline int fuzz_terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

#endif
