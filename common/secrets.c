/* Process-wide protection of secrets: no core dumps, and JSON trees wiped
 * when jansson frees them. Secrets in our own buffers are wiped where they
 * are freed, with crypto_wipe; this covers what we do not allocate. */
#include "secrets.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "crypto.h"

int secrets_process_protect(char *errstr, size_t errcap)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        snprintf(errstr, errcap, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(errstr, errcap, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
        return -1;
    }
    return 0;
}

void secrets_block_wipe(void *p)
{
    if (p)
        crypto_wipe(p, malloc_usable_size(p));
}

static void json_free_wiped(void *p)
{
    secrets_block_wipe(p);
    free(p);
}

void secrets_json_wipe_on_free(void)
{
    json_set_alloc_funcs(malloc, json_free_wiped);
}
