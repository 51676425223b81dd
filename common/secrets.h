/* Keeping a process's secrets (the JWT and data keys, channel secrets and
 * access tokens) out of places they could leak from after use: core files,
 * other processes of the same user, and freed memory. Main thread, at
 * start-up, before other threads exist. */
#ifndef KIZUNA_SECRETS_H
#define KIZUNA_SECRETS_H

#include <stddef.h>

/* Makes the process non-dumpable (prctl PR_SET_DUMPABLE 0: no core file,
 * no ptrace or /proc/<pid>/mem by other processes of the same user) and sets
 * RLIMIT_CORE to 0, so that a crash writes no core holding secrets. Returns
 * 0, or -1 with errstr. */
int secrets_process_protect(char *errstr, size_t errcap);

/* Makes jansson wipe every block it frees, so that a JSON request body that
 * carried a secret leaves no copy in freed memory. Blocks are still plain
 * malloc'd (free() on json_dumps' result stays right), so this may be
 * called at any time; call it before the first request is parsed. */
void secrets_json_wipe_on_free(void);

/* Wipes the whole of a malloc'd block (malloc_usable_size bytes) without
 * freeing it; what secrets_json_wipe_on_free installs, before free. NULL is
 * ignored. Any thread. */
void secrets_block_wipe(void *p);

#endif
