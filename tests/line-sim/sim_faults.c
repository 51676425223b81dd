/* Fault decisions and their settings. The random draw is per thread
 * (xorshift64*), seeded from the clock and the thread's address, so the
 * worker threads never contend on a shared generator. */
#include "sim_faults.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

void sim_faults_default(struct sim_faults *f)
{
    *f = (struct sim_faults){.after_accept = 0.5, .error_status = 500};
}

enum sim_fault sim_faults_decide(const struct sim_faults *f, double u_kind, double u_phase,
                                 bool *after_accept)
{
    enum sim_fault fault = SIM_FAULT_NONE;
    if (u_kind < f->error_rate)
        fault = SIM_FAULT_ERROR;
    else if (u_kind < f->error_rate + f->drop_rate)
        fault = SIM_FAULT_DROP;
    *after_accept = fault != SIM_FAULT_NONE && u_phase < f->after_accept;
    return fault;
}

double sim_faults_draw(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&state;
        if (state == 0)
            state = 0x9e3779b97f4a7c15ULL;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t r = state * 0x2545f4914f6cdd1dULL;
    return (double)(r >> 11) / (double)(1ULL << 53);
}

/* Reads a number field into *out when present. Returns -1 (and fills err)
 * when it is present but not a number in [lo, hi]. */
static int faults_number(const json_t *obj, const char *key, double lo, double hi, double *out,
                         char *err, size_t errcap)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        snprintf(err, errcap, "%s must be a number from %g to %g", key, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

int sim_faults_update(struct sim_faults *f, const json_t *obj, char *err, size_t errcap)
{
    struct sim_faults n = *f;
    double latency = (double)n.latency_ms, status = n.error_status;
    if (!json_is_object(obj)) {
        snprintf(err, errcap, "body must be a JSON object");
        return -1;
    }
    if (faults_number(obj, "error_rate", 0, 1, &n.error_rate, err, errcap) ||
        faults_number(obj, "drop_rate", 0, 1, &n.drop_rate, err, errcap) ||
        faults_number(obj, "after_accept", 0, 1, &n.after_accept, err, errcap) ||
        faults_number(obj, "latency_ms", 0, 60000, &latency, err, errcap) ||
        faults_number(obj, "error_status", 500, 599, &status, err, errcap))
        return -1;
    if (n.error_rate + n.drop_rate > 1.0) {
        snprintf(err, errcap, "error_rate + drop_rate must not exceed 1");
        return -1;
    }
    n.latency_ms = (long)latency;
    n.error_status = (int)status;
    *f = n;
    return 0;
}

json_t *sim_faults_json(const struct sim_faults *f)
{
    return json_pack("{s:f, s:f, s:f, s:I, s:i}", "error_rate", f->error_rate, "drop_rate",
                     f->drop_rate, "after_accept", f->after_accept, "latency_ms",
                     (json_int_t)f->latency_ms, "error_status", f->error_status);
}
