/* health.h — judging the database's health. */
#ifndef PQPOOL_HEALTH_H
#define PQPOOL_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "pqpool.h"

struct pqpool;

/* A health check's tries at most, the blocking one's and the loop's: after
 * a lost connection it goes again on another; the last try on a connection
 * opened after the losses. */
#define PQPOOL__HEALTH_TRIES 3

/* Fills h from a finished probe that started at t0 (monotonic ns) and ended
 * with rc (its message in pqpool_errmsg()). The caller keeps p pinned. */
void pqpool__health_result(struct pqpool *p, int rc, int64_t t0, pqpool_health *h);

/* healthy, or degraded with the reason in why, for a probe that succeeded.
 * Pure. */
pqpool_health_status pqpool__judge_health(double response_ms, int slow_ms, int waiting,
                                          double error_rate, double window_s, char *why,
                                          size_t whylen);

#endif
