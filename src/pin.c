/* pin.c — what keeps a pool allocated. The pool is freed once it is closed
 * and nothing holds it: no slot open (a lease pins it, as does a connection
 * being opened) and no thread inside a call that may block without owning a
 * slot (`users`). Code that gives up the last thing pinning it must not
 * touch it after. */
#include "pin.h"

#include <stdlib.h>

#include "pool.h"

/* Pinning takes no lock: every pqpool_query pins, and a lock per pin is
 * contended by all callers at once. Only the last user to leave a closed
 * pool takes it, to tell the closer or free the pool; the decrement and
 * close's setting of CLOSED_BIT are sequentially consistent, so that one of
 * them sees the other. */
void pqpool__pin(struct pqpool *p)
{
	atomic_fetch_add(&p->users, 1);
}

void pqpool__unpin(struct pqpool *p)
{
	bool free_it;
	if (atomic_fetch_sub(&p->users, 1) != 1 ||
	    !(atomic_load(&p->contend) & PQPOOL__CLOSED_BIT))
		return;
	pthread_mutex_lock(&p->mu);
	free_it = pqpool__last_one_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (free_it)
		pqpool__pool_free(p);
}

bool pqpool__last_one_locked(struct pqpool *p)
{
	if (!p->closed || p->nopen > 0 || p->users > 0 || p->freeing)
		return false;
	if (!p->zombie) {
		pthread_cond_broadcast(&p->drained); /* pqpool_close frees it */
		return false;
	}
	p->freeing = true;
	return true;
}

void pqpool__pool_free(struct pqpool *p)
{
	pqpool__params_free(&p->ctx.params);
	pqpool__counters_destroy(&p->ctx.counters);
	pqpool__flight_destroy(&p->health);
	free(p->health_query);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->drained);
	for (int i = 0; i < p->nslots; i++)
		pthread_mutex_destroy(&p->slots[i].pipe.mu);
	free(p->slots);
	free(p->members); /* closed already; each frees itself */
	free(p);
}
