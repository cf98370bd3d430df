/* pipe_join.c — where a pipelinable statement goes. A caller that finds
 * no free connection joins the least loaded open pipeline with room whose
 * batch in flight is young (a slow statement must not hold up quick ones);
 * while the pool is busy, it first fills a quick pipeline to
 * PQPOOL__PIPE_FILL, since deeper batches on fewer connections cost the
 * client and the server less per statement; else it makes the free
 * connection it was granted a pipeline of its own. */
#include "pipe_join.h"

#include "clock.h"
#include "lease.h"
#include "pipe.h"
#include "pool.h"

/* Under the lock: e waits at the end of pp's queue. */
static void append(pqpool__pipe *pp, pentry *e)
{
	e->role = R_WAIT;
	e->abandoned = false;
	pqc_event_init(&e->ev);
	e->join_ns = pqc_now_ns();
	push_back(&pp->pend, &pp->pend_tail, e);
	atomic_fetch_add_explicit(&pp->load, 1, memory_order_relaxed);
}

/* Appends e to s's pipeline if it is open and holds fewer than limit. */
static bool join_at(pqpool__slot *s, pentry *e, int limit)
{
	bool ok;
	pthread_mutex_lock(&s->pipe.mu);
	ok = s->pipe.active && !s->pipe.closing &&
	     atomic_load_explicit(&s->pipe.load, memory_order_relaxed) < limit;
	if (ok)
		append(&s->pipe, e);
	pthread_mutex_unlock(&s->pipe.mu);
	return ok;
}

pqpool__slot *pqpool__pipe_join(struct pqpool *p, pentry *e)
{
	int depth = p->ctx.cfg.pipeline_depth;
	int64_t now = pqc_now_ns(), hol = (int64_t)PQPOOL__PIPE_HOL_MS * 1000000;

	for (int tries = 0; tries < 3; tries++) {
		pqpool__slot *best = NULL;
		int best_load = depth;
		for (int i = 0; i < p->nslots; i++) {
			pqpool__slot *s = &p->slots[i];
			int l;
			int64_t t;
			if (!atomic_load_explicit(&s->pipe.open, memory_order_relaxed))
				continue;
			l = atomic_load_explicit(&s->pipe.load, memory_order_relaxed);
			t = atomic_load_explicit(&s->pipe.sent_ns, memory_order_relaxed);
			if (l < best_load && (t == 0 || now - t <= hol)) {
				best = s;
				best_load = l;
			}
		}
		if (!best)
			return NULL;
		if (join_at(best, e, depth))
			return best;
	}
	return NULL;
}

pqpool__slot *pqpool__pipe_fill(struct pqpool *p, pentry *e)
{
	int64_t now = pqc_now_ns(),
	        young = (int64_t)PQPOOL__PIPE_QUICK_US * PQPOOL__PIPE_FILL * 1000;
	pqpool__slot *best = NULL;
	int limit = p->ctx.cfg.pipeline_depth < PQPOOL__PIPE_FILL
	                    ? p->ctx.cfg.pipeline_depth
	                    : PQPOOL__PIPE_FILL,
	    best_load = limit, total = 0;

	for (int i = 0; i < p->nslots; i++) {
		pqpool__slot *s = &p->slots[i];
		int l, q;
		int64_t t;
		if (!atomic_load_explicit(&s->pipe.open, memory_order_relaxed))
			continue;
		l = atomic_load_explicit(&s->pipe.load, memory_order_relaxed);
		t = atomic_load_explicit(&s->pipe.sent_ns, memory_order_relaxed);
		total += l;
		q = atomic_load_explicit(&s->pipe.stmt_us, memory_order_relaxed);
		if (l < best_load && (t == 0 || now - t <= young) && q > 0 &&
		    q <= PQPOOL__PIPE_QUICK_US) {
			best = s;
			best_load = l;
		}
	}
	return best && total >= PQPOOL__PIPE_FILL && join_at(best, e, limit)
	               ? best
	               : NULL;
}

bool pqpool__pipe_start(pqpool__slot *s, pentry *e)
{
	pqpool__pipe *pp = &s->pipe;
	PGconn *pg = s->link.pg;

	if (PQsetnonblocking(pg, 1) != 0 || PQenterPipelineMode(pg) != 1) {
		s->link.broken = true;
		pqpool__release(s, false);
		return false;
	}
	pthread_mutex_lock(&pp->mu);
	pp->active = true;
	pp->closing = false;
	append(pp, e);
	e->counted = true; /* its lease was */
	atomic_store_explicit(&pp->open, true, memory_order_relaxed);
	pthread_mutex_unlock(&pp->mu);
	return true;
}

