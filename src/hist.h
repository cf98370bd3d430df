/* hist.h — latency and pipeline-depth histograms: fixed bounds, buckets,
 * quantiles. */
#ifndef PQPOOL_HIST_H
#define PQPOOL_HIST_H

#include <stdint.h>

#include "pqpool.h"

/* The bucket of a duration in ns (the first whose bound is not below it);
 * the same for every duration in cost, no floating point. */
int pqpool__hist_bucket(int64_t ns);

/* Adds a sample of ns to h (a negative one counts as 0). Not atomic: for
 * histograms kept under a lock. */
void pqpool__hist_add(pqpool_hist *h, int64_t ns);

/* The bucket of a pipeline depth (statements). */
int pqpool__depth_bucket(int depth);

#endif
