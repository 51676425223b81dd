/* Keeps segmentation's inbox (common/inbox.h) from growing without end:
 * every consumer writes one row per event (a webhook, a result, a channel
 * record), thousands a second at a busy time. A worker deletes the rows
 * older than a keep time every few minutes. The keep time must outlast the
 * topics' retention (7 days, deploy/topics.manifest): a group reset to the
 * earliest offset replays that far back, and the inbox is what makes such a
 * replay change nothing. */
#ifndef KIZUNA_SEGMENTATION_INBOX_KEEP_H
#define KIZUNA_SEGMENTATION_INBOX_KEEP_H

#include <stddef.h>

struct service;

/* Starts the worker on its own connection to svc's database, its stop
 * registered with the drain (SHUTDOWN_STOP_ACCEPTING). keep_s: rows older
 * than this go; every_s: how often it looks (the first look is at the start). 0, or -1 with errstr. Main thread, in service_def.setup. */
int inbox_keep_start(struct service *svc, long keep_s, long every_s, char *errstr, size_t errcap);

#endif
