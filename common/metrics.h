/* Prometheus metrics: counters, gauges and histograms with up to four
 * labels, in one process-wide registry rendered in the text exposition
 * format. Updates are lock-free for existing series; any thread may call. */
#ifndef KIZUNA_METRICS_H
#define KIZUNA_METRICS_H

#include <stddef.h>

struct metric;

/* labels is a comma-separated list of label names ("status,method") or NULL.
 * The registry owns the metric; metrics_free_all() releases everything.
 * Creating a name twice returns the existing metric. Call from main() at
 * startup. */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* buckets: ascending upper bounds; +Inf is implied. Copied. */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
                                 const double *buckets, size_t nbuckets);

/* The variadic part is one label value (const char *) per declared label.
 * Values are escaped on output. A series is created on first use; past
 * METRICS_MAX_SERIES per metric, new series are folded into label value
 * "_overflow" so hostile input cannot grow memory without bound. */
#define METRICS_MAX_SERIES 1024
void metrics_add(struct metric *m, double v, ...);     /* counter: v >= 0 */
void metrics_set(struct metric *m, double v, ...);     /* gauge */
void metrics_observe(struct metric *m, double v, ...); /* histogram */

/* Renders every metric. Returns a malloc'd NUL-terminated buffer, or NULL. */
char *metrics_render(size_t *len);

/* Frees the registry (shutdown and tests). */
void metrics_free_all(void);

#endif
