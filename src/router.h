/* router.h — which member of a pool of several hosts a call goes to. */
#ifndef PQPOOL_ROUTER_H
#define PQPOOL_ROUTER_H

#include <stdint.h>

#include "pool.h"

/* The pool to run a call with flags (PQPOOL_READ: a read) on: p itself for
 * a pool of one host; else the primary for writers, a standby for reads.
 * With no primary known, members are asked (connecting if need be) and, for
 * a caller that may wait, asked again until deadline_ns; deadline_ns 0: only
 * what is known now, nothing asked. NULL with the error set when none. */
struct pqpool *pqpool__route(struct pqpool *p, unsigned flags, int64_t deadline_ns);

/* Measures each standby's replay lag (a round trip each) by deadline_ns;
 * nothing for a pool of one host. */
void pqpool__measure_lags(struct pqpool *p, int64_t deadline_ns);

#endif
