/* Prometheus metrics in one process-wide registry, rendered in the text
 * exposition format 0.0.4. Creating a metric or a new series takes a lock;
 * updating an existing series does not: series live in a fixed-size
 * open-addressing table whose slots are published with release stores and
 * never removed, so a lookup is a few atomic loads and the update is an
 * atomic add. Label values come from the network (channel ids, paths), so
 * both the number of series and the length of each value are capped. */
#include "metrics.h"

#include "utf8.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_LABELS 4
/* Longer label values are cut: a value is an identifier, not a payload. */
#define METRICS_VALUE_MAX 128
/* Power of two, over twice METRICS_MAX_SERIES + 1 so probes stay short. */
#define METRICS_TABLE_SLOTS 4096
#define METRICS_OVERFLOW_VALUE "_overflow"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const metric_type_names[] = {"counter", "gauge", "histogram"};

struct metric_series {
    uint64_t hash;
    char *values[METRICS_MAX_LABELS];
    _Atomic uint64_t value_bits; /* counter or gauge value, a double's bits */
    _Atomic uint64_t sum_bits;   /* histogram sum, a double's bits */
    _Atomic uint64_t counts[];   /* histogram: per bucket, not cumulative; last is +Inf */
};

struct metric {
    char *name;
    char *help;
    enum metric_type type;
    int nlabels;
    char *labels[METRICS_MAX_LABELS];
    double *buckets;
    size_t nbuckets;
    pthread_mutex_t lock; /* serialises series creation only */
    _Atomic(struct metric_series *) *slots;
    /* Creation order, for stable output; entries below nseries are set. */
    struct metric_series **series;
    _Atomic size_t nseries;
    /* Set once the cap is reached; new label sets fold into it. */
    _Atomic(struct metric_series *) overflow;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric **registry; /* sorted by name */
static size_t registry_len;
static size_t registry_cap;

/* --- small helpers ------------------------------------------------------ */

static double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    uint64_t next;
    do {
        next = double_to_bits(bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static bool name_valid(const char *s, bool allow_colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Copies s into out as valid UTF-8 of at most METRICS_VALUE_MAX bytes:
 * invalid bytes become U+FFFD and the cut falls between characters, so the
 * exposition stays valid whatever the network sent. */
static void value_clean(char out[METRICS_VALUE_MAX + 1], const char *s)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t avail = strlen((const char *)p);
    while (*p) {
        size_t n = utf8_seq_len(p, avail);
        const unsigned char *piece = p;
        size_t plen = n;
        if (n == 0) {
            piece = (const unsigned char *)"\xEF\xBF\xBD";
            plen = 3;
            n = 1;
        }
        if (o + plen > METRICS_VALUE_MAX)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        p += n;
        avail -= n;
    }
    out[o] = '\0';
}

static uint64_t values_hash(const char *const *values, int n)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xFF; /* separator: ("ab","c") differs from ("a","bc") */
        h *= 1099511628211ULL;
    }
    return h;
}

/* --- series ------------------------------------------------------------- */

static struct metric_series *series_find(struct metric *m, const char *const *values, uint64_t hash)
{
    size_t mask = METRICS_TABLE_SLOTS - 1;
    size_t i = (size_t)hash & mask;
    for (size_t probes = 0; probes < METRICS_TABLE_SLOTS; probes++, i = (i + 1) & mask) {
        struct metric_series *s = atomic_load_explicit(&m->slots[i], memory_order_acquire);
        if (!s)
            return NULL;
        if (s->hash != hash)
            continue;
        int k = 0;
        while (k < m->nlabels && strcmp(s->values[k], values[k]) == 0)
            k++;
        if (k == m->nlabels)
            return s;
    }
    return NULL;
}

static void series_free(struct metric_series *s)
{
    if (!s)
        return;
    for (int i = 0; i < METRICS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s);
}

/* Called with m->lock held and room in m->series. */
static struct metric_series *series_insert(struct metric *m, const char *const *values,
                                           uint64_t hash)
{
    size_t ncounts = m->type == METRIC_HISTOGRAM ? m->nbuckets + 1 : 0;
    struct metric_series *s = calloc(1, sizeof *s + ncounts * sizeof s->counts[0]);
    if (!s)
        return NULL;
    s->hash = hash;
    for (int i = 0; i < m->nlabels; i++) {
        s->values[i] = str_dup(values[i]);
        if (!s->values[i]) {
            series_free(s);
            return NULL;
        }
    }
    atomic_init(&s->value_bits, double_to_bits(0.0));
    atomic_init(&s->sum_bits, double_to_bits(0.0));
    for (size_t i = 0; i < ncounts; i++)
        atomic_init(&s->counts[i], 0);

    size_t mask = METRICS_TABLE_SLOTS - 1;
    size_t i = (size_t)hash & mask;
    while (atomic_load_explicit(&m->slots[i], memory_order_relaxed))
        i = (i + 1) & mask;
    size_t n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
    m->series[n] = s;
    /* Publish: readers that see the slot or the count see a whole series. */
    atomic_store_explicit(&m->slots[i], s, memory_order_release);
    atomic_store_explicit(&m->nseries, n + 1, memory_order_release);
    return s;
}

/* The series for these label values, created on first use; NULL only when
 * memory runs out. Lock-free when the series exists. */
static struct metric_series *series_get(struct metric *m, va_list ap)
{
    char clean[METRICS_MAX_LABELS][METRICS_VALUE_MAX + 1];
    const char *values[METRICS_MAX_LABELS];
    for (int i = 0; i < m->nlabels; i++) {
        value_clean(clean[i], va_arg(ap, const char *));
        values[i] = clean[i];
    }
    uint64_t hash = values_hash(values, m->nlabels);
    struct metric_series *s = series_find(m, values, hash);
    if (s)
        return s;
    s = atomic_load_explicit(&m->overflow, memory_order_acquire);
    if (s)
        return s;

    pthread_mutex_lock(&m->lock);
    s = series_find(m, values, hash);
    if (!s && atomic_load_explicit(&m->nseries, memory_order_relaxed) < METRICS_MAX_SERIES) {
        s = series_insert(m, values, hash);
    } else if (!s) {
        const char *fold[METRICS_MAX_LABELS];
        for (int i = 0; i < m->nlabels; i++)
            fold[i] = METRICS_OVERFLOW_VALUE;
        uint64_t fold_hash = values_hash(fold, m->nlabels);
        /* The series array has one spare place for this fold. */
        s = series_find(m, fold, fold_hash);
        if (!s)
            s = series_insert(m, fold, fold_hash);
        if (s)
            atomic_store_explicit(&m->overflow, s, memory_order_release);
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* --- metrics ------------------------------------------------------------ */

static void metric_free(struct metric *m)
{
    if (!m)
        return;
    size_t n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
    for (size_t i = 0; m->series && i < n; i++)
        series_free(m->series[i]);
    free(m->series);
    free((void *)m->slots);
    for (int i = 0; i < METRICS_MAX_LABELS; i++)
        free(m->labels[i]);
    free(m->buckets);
    free(m->help);
    free(m->name);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Splits "a, b,c" into m->labels. Returns false on a bad or repeated name. */
static bool metric_labels_parse(struct metric *m, const char *labels)
{
    const char *p = labels;
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (m->nlabels == METRICS_MAX_LABELS || len == 0)
            return false;
        char *name = malloc(len + 1);
        if (!name)
            return false;
        memcpy(name, p, len);
        name[len] = '\0';
        m->labels[m->nlabels++] = name;
        /* Names starting with "__" are reserved by Prometheus. */
        if (!name_valid(name, false) || strncmp(name, "__", 2) == 0)
            return false;
        if (m->type == METRIC_HISTOGRAM && strcmp(name, "le") == 0)
            return false;
        for (int i = 0; i < m->nlabels - 1; i++)
            if (strcmp(m->labels[i], name) == 0)
                return false;
        p = end ? end + 1 : NULL;
    }
    return true;
}

static struct metric *metric_create(enum metric_type type, const char *name, const char *help,
                                    const char *labels, const double *buckets, size_t nbuckets)
{
    if (!name_valid(name, true))
        return NULL;
    if (type == METRIC_HISTOGRAM) {
        if (nbuckets > 0 && !buckets)
            return NULL;
        for (size_t i = 0; i < nbuckets; i++)
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
                return NULL;
    }

    pthread_mutex_lock(&registry_lock);
    size_t lo = 0, hi = registry_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(registry[mid]->name, name);
        if (cmp == 0) {
            struct metric *found = registry[mid]->type == type ? registry[mid] : NULL;
            pthread_mutex_unlock(&registry_lock);
            return found;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }

    struct metric *m = calloc(1, sizeof *m);
    if (!m)
        goto fail;
    m->type = type;
    pthread_mutex_init(&m->lock, NULL);
    m->name = str_dup(name);
    m->help = str_dup(help ? help : "");
    m->slots = calloc(METRICS_TABLE_SLOTS, sizeof m->slots[0]);
    m->series = calloc(METRICS_MAX_SERIES + 1, sizeof m->series[0]);
    if (!m->name || !m->help || !m->slots || !m->series)
        goto fail;
    if (!metric_labels_parse(m, labels))
        goto fail;
    if (type == METRIC_HISTOGRAM && nbuckets > 0) {
        m->buckets = malloc(nbuckets * sizeof *m->buckets);
        if (!m->buckets)
            goto fail;
        memcpy(m->buckets, buckets, nbuckets * sizeof *m->buckets);
        m->nbuckets = nbuckets;
    }
    /* A metric without labels shows 0 before its first update. */
    if (m->nlabels == 0 && !series_insert(m, NULL, values_hash(NULL, 0)))
        goto fail;
    if (registry_len == registry_cap) {
        size_t cap = registry_cap ? registry_cap * 2 : 32;
        struct metric **grown = realloc(registry, cap * sizeof *grown);
        if (!grown)
            goto fail;
        registry = grown;
        registry_cap = cap;
    }
    memmove(registry + lo + 1, registry + lo, (registry_len - lo) * sizeof *registry);
    registry[lo] = m;
    registry_len++;
    pthread_mutex_unlock(&registry_lock);
    return m;

fail:
    pthread_mutex_unlock(&registry_lock);
    metric_free(m);
    return NULL;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
    return metric_create(METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return metric_create(METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
                                 const double *buckets, size_t nbuckets)
{
    return metric_create(METRIC_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

void metrics_add(struct metric *m, double v, ...)
{
    /* A counter only goes up; a gauge may be moved either way. */
    if (!m || isnan(v) || m->type == METRIC_HISTOGRAM || (m->type == METRIC_COUNTER && v < 0))
        return;
    va_list ap;
    va_start(ap, v);
    struct metric_series *s = series_get(m, ap);
    va_end(ap);
    if (s)
        atomic_add_double(&s->value_bits, v);
}

void metrics_set(struct metric *m, double v, ...)
{
    if (!m || m->type != METRIC_GAUGE)
        return;
    va_list ap;
    va_start(ap, v);
    struct metric_series *s = series_get(m, ap);
    va_end(ap);
    if (s)
        atomic_store_explicit(&s->value_bits, double_to_bits(v), memory_order_relaxed);
}

void metrics_observe(struct metric *m, double v, ...)
{
    if (!m || m->type != METRIC_HISTOGRAM || isnan(v))
        return;
    va_list ap;
    va_start(ap, v);
    struct metric_series *s = series_get(m, ap);
    va_end(ap);
    if (!s)
        return;
    /* First bucket whose upper bound is >= v; nbuckets is +Inf. */
    size_t lo = 0, hi = m->nbuckets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= m->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->sum_bits, v);
}

/* --- rendering ---------------------------------------------------------- */

struct render_buf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static void buf_append(struct render_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct render_buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* Escapes backslash and newline (HELP), plus the double quote in label
 * values, as the exposition format requires. */
static void buf_escaped(struct render_buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (quote && *p == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        buf_append(b, run, (size_t)(p - run));
        buf_puts(b, esc);
        run = p + 1;
    }
    buf_puts(b, run);
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void format_double(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, cap, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, cap, "%.17g", v);
    }
}

/* name{l1="v1",...,extra="extra_value"} value\n */
static void render_sample(struct render_buf *b, const struct metric *m, const char *suffix,
                          const struct metric_series *s, const char *extra, const char *extra_value,
                          const char *value)
{
    buf_puts(b, m->name);
    buf_puts(b, suffix);
    if (m->nlabels > 0 || extra) {
        buf_puts(b, "{");
        for (int i = 0; i < m->nlabels; i++) {
            if (i > 0)
                buf_puts(b, ",");
            buf_puts(b, m->labels[i]);
            buf_puts(b, "=\"");
            buf_escaped(b, s->values[i], true);
            buf_puts(b, "\"");
        }
        if (extra) {
            if (m->nlabels > 0)
                buf_puts(b, ",");
            buf_puts(b, extra);
            buf_puts(b, "=\"");
            buf_puts(b, extra_value);
            buf_puts(b, "\"");
        }
        buf_puts(b, "}");
    }
    buf_puts(b, " ");
    buf_puts(b, value);
    buf_puts(b, "\n");
}

static void render_metric(struct render_buf *b, const struct metric *m)
{
    char num[64];
    char le[64];
    buf_puts(b, "# HELP ");
    buf_puts(b, m->name);
    buf_puts(b, " ");
    buf_escaped(b, m->help, false);
    buf_puts(b, "\n# TYPE ");
    buf_puts(b, m->name);
    buf_puts(b, " ");
    buf_puts(b, metric_type_names[m->type]);
    buf_puts(b, "\n");

    size_t n = atomic_load_explicit(&m->nseries, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        const struct metric_series *s = m->series[i];
        if (m->type != METRIC_HISTOGRAM) {
            uint64_t bits = atomic_load_explicit(&s->value_bits, memory_order_relaxed);
            format_double(num, sizeof num, bits_to_double(bits));
            render_sample(b, m, "", s, NULL, NULL, num);
            continue;
        }
        /* _count is the +Inf bucket, so the two always agree. */
        uint64_t cumulative = 0;
        for (size_t k = 0; k <= m->nbuckets; k++) {
            cumulative += atomic_load_explicit(&s->counts[k], memory_order_relaxed);
            if (k < m->nbuckets)
                format_double(le, sizeof le, m->buckets[k]);
            else
                snprintf(le, sizeof le, "+Inf");
            snprintf(num, sizeof num, "%llu", (unsigned long long)cumulative);
            render_sample(b, m, "_bucket", s, "le", le, num);
        }
        uint64_t sum_bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
        format_double(num, sizeof num, bits_to_double(sum_bits));
        render_sample(b, m, "_sum", s, NULL, NULL, num);
        snprintf(num, sizeof num, "%llu", (unsigned long long)cumulative);
        render_sample(b, m, "_count", s, NULL, NULL, num);
    }
}

char *metrics_render(size_t *len)
{
    struct render_buf b = {0};
    buf_append(&b, "", 0); /* an empty registry renders as "" */
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_len; i++)
        render_metric(&b, registry[i]);
    pthread_mutex_unlock(&registry_lock);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

void metrics_free_all(void)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < registry_len; i++)
        metric_free(registry[i]);
    free(registry);
    registry = NULL;
    registry_len = 0;
    registry_cap = 0;
    pthread_mutex_unlock(&registry_lock);
}
