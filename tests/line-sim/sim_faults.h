/* Fault injection for the /v2 endpoints: a share of requests answered with
 * a 5xx, a share whose connection is closed without an answer, and added
 * latency. `after_accept` is the share of injected errors and drops that
 * happen after the request was accepted and delivered, which is what really
 * tests retry keys: the client sees a failure, retries with the same key,
 * and must get 409 rather than a second delivery. Latency is added after
 * processing, so a client timeout also leaves the send delivered. */
#ifndef LINESIM_FAULTS_H
#define LINESIM_FAULTS_H

#include <stdbool.h>

#include <jansson.h>

struct sim_faults {
    double error_rate;   /* 0..1: answer error_status */
    double drop_rate;    /* 0..1: close the connection without answering */
    double after_accept; /* 0..1: share of the above that happen after acceptance */
    long latency_ms;     /* 0..60000, added to every /v2 answer */
    int error_status;    /* 500..599, default 500 */
};

enum sim_fault { SIM_FAULT_NONE = 0, SIM_FAULT_ERROR, SIM_FAULT_DROP };

/* The defaults: no faults, after_accept 0.5, error_status 500. */
void sim_faults_default(struct sim_faults *f);

/* Decides one request's fault from three uniform draws in [0,1): u_kind
 * picks error or drop, u_phase picks before or after acceptance. Pure, so
 * tests can pass fixed draws. */
enum sim_fault sim_faults_decide(const struct sim_faults *f, double u_kind, double u_phase,
                                 bool *after_accept);

/* A uniform draw in [0,1) from a per-thread generator. Any thread. */
double sim_faults_draw(void);

/* Applies the fields present in obj on top of *f. Returns 0, or -1 with a
 * message in err (naming the field) when a value is out of range; *f is
 * then unchanged. */
int sim_faults_update(struct sim_faults *f, const json_t *obj, char *err, size_t errcap);
/* The settings as a JSON object (caller owns). */
json_t *sim_faults_json(const struct sim_faults *f);

#endif
