/* janitor.h — lazy upkeep of a pool. */
#ifndef PQPOOL_JANITOR_H
#define PQPOOL_JANITOR_H

#include <stdint.h>

struct pqpool;

/* Reaps and warns, at most once per upkeep interval (cheap otherwise: one
 * relaxed load). The caller is pinned or owns a slot. now: coarse ms. */
void pqpool__maybe_upkeep(struct pqpool *p, int64_t now);

#endif
