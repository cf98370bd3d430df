/* loop_health.c — the health check on an event loop: the health query
 * submitted as a statement of the loop (so it never blocks, not even to
 * connect), judged as the blocking check judges it, and shared by the
 * checks of one loop while it is in flight. */
#include "loop_int.h"

#include <stdlib.h>

#include "clock.h"
#include "error.h"
#include "health.h"
#include "pool.h"

typedef struct lhwait {
	struct lhwait *next;
	pqpool_health_fn done;
	void *arg;
} lhwait;

/* A check in flight and who waits for its verdict. */
typedef struct lhealth {
	pqpool_loop *loop;
	int64_t t0, deadline;
	lhwait *waiters;
} lhealth;

static void judged(void *arg, int status, const PGresult *res)
{
	lhealth *hc = arg;
	pqpool_health h;
	(void)res;
	/* the thread's error describes a failure */
	pqpool__health_result(hc->loop->pool, status, hc->t0, &h);
	if (hc->loop->health == hc)
		hc->loop->health = NULL; /* a check from a callback below starts anew */
	while (hc->waiters) {
		lhwait *w = hc->waiters;
		hc->waiters = w->next;
		w->done(w->arg, &h);
		free(w);
	}
	free(hc);
}

int pqpool_loop_check_health(pqpool_loop *l, int timeout_ms, pqpool_health_fn done,
                             void *arg)
{
	const pqpool_config *cfg;
	lhwait *w;
	lhealth *hc;
	int64_t t0, deadline;
	int st;

	if (!l || !done)
		return pqpool__fail(PQPOOL_EINVAL, "health: NULL loop or callback");
	cfg = &l->pool->ctx.cfg;
	/* bounded as the blocking check is: connection_timeout_ms in all (or
	 * the caller's shorter bound), the query by query_timeout_ms too */
	if (timeout_ms <= 0 || timeout_ms > cfg->connection_timeout_ms)
		timeout_ms = cfg->connection_timeout_ms;
	if (cfg->query_timeout_ms > 0 && cfg->query_timeout_ms < timeout_ms)
		timeout_ms = cfg->query_timeout_ms;
	t0 = pqc_now_ns();
	deadline = t0 + (int64_t)timeout_ms * 1000000;
	if (!(w = calloc(1, sizeof *w)))
		return pqpool__fail(PQPOOL_ENOMEM, "health: out of memory");
	w->done = done;
	w->arg = arg;
	if (cfg->health_share && l->health && l->health->deadline <= deadline) {
		/* the verdict in flight is ours: it comes within our bound (a
		 * caller with a shorter one starts a check of its own) */
		w->next = l->health->waiters;
		l->health->waiters = w;
		pqpool__ok();
		return PQPOOL_OK;
	}
	if (!(hc = calloc(1, sizeof *hc))) {
		free(w);
		return pqpool__fail(PQPOOL_ENOMEM, "health: out of memory");
	}
	hc->loop = l;
	hc->t0 = t0;
	hc->deadline = deadline;
	hc->waiters = w;
	/* writes' routing: with several hosts, healthy when the primary is */
	st = pqpool__loop_submit(l, l->pool->health_query, 0, NULL, 0, deadline, true,
	                         judged, hc);
	if (st != PQPOOL_OK) {
		free(w);
		free(hc);
		return st;
	}
	if (cfg->health_share)
		l->health = hc; /* the newest: those after it join it */
	return PQPOOL_OK;
}
