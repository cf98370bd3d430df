/* pipe_join.h — where a pipelinable statement goes: the pipeline it joins,
 * or the free connection it makes a pipeline (pipe_join.c). Each returns
 * with e appended, under and then out of the pipeline's lock. */
#ifndef PQPOOL_PIPE_JOIN_H
#define PQPOOL_PIPE_JOIN_H

#include <stdbool.h>

#include "pipe_int.h"
#include "slot.h"

struct pqpool;

/* While the pool is busy (PQPOOL__PIPE_FILL statements pipelined), joins
 * the least loaded quick pipeline holding fewer than PQPOOL__PIPE_FILL (or
 * the depth, when smaller), before a free connection is taken. NULL when
 * there is none. */
pqpool__slot *pqpool__pipe_fill(struct pqpool *p, pentry *e);

/* Joins the least loaded open pipeline with room and no old batch (one
 * sent more than PQPOOL__PIPE_HOL_MS ago). NULL when there is none. */
pqpool__slot *pqpool__pipe_join(struct pqpool *p, pentry *e);

/* Makes a leased slot a pipeline with e as its first statement and its
 * caller the reader. False (the slot released) when libpq refuses. */
bool pqpool__pipe_start(pqpool__slot *s, pentry *e);

#endif
