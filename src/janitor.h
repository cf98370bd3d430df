/* janitor.h — lazy upkeep of a pool. */
#ifndef PQPOOL_JANITOR_H
#define PQPOOL_JANITOR_H

#include <stdatomic.h>
#include <stdint.h>

#include "pool.h"

/* pqpool_maintain of a pool of one host (or a member): reaps, warns and
 * refills to pool_min. */
int pqpool__maintain(struct pqpool *pool);

/* The upkeep itself, once its time has come (see below). */
void pqpool__upkeep_due(struct pqpool *p, int64_t now);

/* Reaps and warns, at most once per upkeep interval (cheap otherwise: one
 * relaxed load, inline on every release). The caller is pinned or owns a
 * slot. now: coarse ms. */
static inline void pqpool__maybe_upkeep(struct pqpool *p, int64_t now)
{
	if (now >= atomic_load_explicit(&p->next_upkeep_ms, memory_order_relaxed))
		pqpool__upkeep_due(p, now);
}

#endif
