/* loop.c — the asynchronous API: statements submitted with a callback, any
 * number outstanding, queued and pipelined onto the connections one event
 * loop takes from the pool. The host's loop drives it through an adapter
 * (descriptors to watch, one timer); nothing here blocks on the database,
 * nor takes a lock of its own: a loop belongs to one thread.
 *
 * The rules are the blocking pipeline's (pipe.c): the statements submitted
 * together form a group under one Sync; a result is delivered once its
 * Sync confirmed the group committed; when one of a group fails, its
 * caller gets its error and the others are sent again, each alone. */
#include "loop_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "clock.h"
#include "error.h"
#include "exec.h"
#include "lease.h"
#include "log.h"
#include "pipe.h"
#include "pipe_int.h"
#include "pool.h"
#include "rand.h"
#include "role.h"
#include "stats.h"
#include "stmtcache.h"

/* ---- a round ---- */

static void loop_destroy(pqpool_loop *l);

static void enter(pqpool_loop *l)
{
	l->depth++;
}

/* Connections that failed go (what they held moved on or failed first);
 * with idle, also those with nothing to do that the loop need not keep:
 * the pool wants them, the loop is idle, or they ran a statement alone. */
static void release_pass(pqpool_loop *l, bool idle)
{
	bool contended =
	        atomic_load_explicit(&l->pool->contend, memory_order_relaxed) != 0;
	int64_t now_ms = pqc_now_coarse_ms();

	for (lconn *c = l->conns, *n; c; c = n) {
		n = c->next;
		if (!c->lost && !c->closing && !c->opening &&
		    ((c->s->link.expires_ms && now_ms >= c->s->link.expires_ms) ||
		     pqpool__retired(c->s) || !pqpool__loop_conn_fits(l, c, c->read)))
			c->closing =
			        true; /* past its lifetime, retired, or its host no
			               * longer the primary: drained, then replaced */
		if (c->lost) {
			pqpool__loop_conn_lost(l, c);
			pqpool__loop_conn_release(l, c);
		} else if (idle && conn_load(c) == 0 && !c->flushing && !c->opening &&
		           (c->alone || c->closing || contended || l->outstanding == 0 ||
		            l->queue)) {
			pqpool__loop_conn_release(l, c);
		}
	}
}

static void send_pass(pqpool_loop *l)
{
	for (lconn *c = l->conns; c; c = c->next)
		if (c->dirty && !c->lost && !c->opening)
			pqpool__loop_conn_send(c);
}

/* The end of a round: deadlines due are acted on, what callbacks submitted
 * goes out, connections with nothing to do go back, the timer is armed for
 * the next deadline. Failed connections are released before others are
 * taken, so that a descriptor number the adapter watched is never watched
 * twice. */
static void leave(pqpool_loop *l)
{
	int64_t now;

	if (l->depth > 1) {
		l->depth--;
		return;
	}
	if (l->freeing) {
		loop_destroy(l);
		return;
	}
	now = pqc_now_ns();
	if (now >= l->next_ns)
		pqpool__loop_expire(l, now);
	if (l->later)
		pqpool__loop_later_due(l, now);
	release_pass(l, false);
	pqpool__loop_drain_queue(l);
	send_pass(l);
	release_pass(l, true);
	if (l->queue) { /* what was released may take it */
		pqpool__loop_drain_queue(l);
		send_pass(l);
		release_pass(l, false);
	}
	l->acquire_failed = false;
	l->depth = 0;
	if (l->freeing) { /* a callback of the round freed the loop */
		loop_destroy(l);
		return;
	}
	if (l->queue) {
		due_at(l,
		       l->queue->t0_ns +
		               (int64_t)l->pool->ctx.cfg.connection_timeout_ms * 1000000);
		if (!l->nconns) {
			/* the pool had nothing to give and nothing here frees one:
			 * look again soon (1, 2, 4 ... 16 ms) */
			l->retry_ms = l->retry_ms
			                      ? (l->retry_ms < 16 ? l->retry_ms * 2 : 16)
			                      : 1;
			due_at(l, now + l->retry_ms * 1000000);
		}
	}
	if (l->next_ns != INT64_MAX && (l->outstanding || l->queue || l->nconns)) {
		pqpool__loop_arm(l, l->next_ns);
	} else if (!l->outstanding && !l->queue && !l->nconns && l->timer_ns) {
		/* idle: nothing armed keeps the host's loop running */
		l->timer_ns = 0;
		l->next_ns = INT64_MAX;
		l->ad.timer(l->ad.host, -1);
	}
}

/* ---- the API ---- */

int pqpool_loop_new(pqpool *pool, const pqpool_adapter *adapter, pqpool_loop **out)
{
	pqpool_loop *l;
	if (out)
		*out = NULL;
	if (!pool || !adapter || !adapter->watch || !adapter->timer || !out)
		return pqpool__fail(PQPOOL_EINVAL,
		                    "loop: NULL pool, adapter, adapter function or out");
	if (atomic_load_explicit(&pool->contend, memory_order_acquire) &
	    PQPOOL__CLOSED_BIT)
		return pqpool__fail(PQPOOL_ECLOSED, "loop: the pool is closed");
	if (!(l = calloc(1, sizeof *l)))
		return pqpool__fail(PQPOOL_ENOMEM, "loop: out of memory");
	l->pool = pool;
	l->ad = *adapter;
	l->next_ns = INT64_MAX;
	*out = l;
	pqpool__ok();
	return PQPOOL_OK;
}

/* A copy of the statement and its parameters in one allocation. */
static lentry *entry_new(const char *sql, int nparams, const char *const *params)
{
	size_t sl = strlen(sql) + 1,
	       total = sizeof(lentry) + (size_t)nparams * sizeof(char *);
	lentry *e;
	char *p;

	for (int i = 0; i < nparams; i++)
		if (params[i])
			total += strlen(params[i]) + 1;
	total += sl;
	if (!(e = calloc(1, total)))
		return NULL;
	p = (char *)(e->params_buf + nparams);
	memcpy(p, sql, sl);
	e->e.req.sql = p;
	p += sl;
	for (int i = 0; i < nparams; i++) {
		if (!params[i])
			continue;
		size_t n = strlen(params[i]) + 1;
		memcpy(p, params[i], n);
		e->params_buf[i] = p;
		p += n;
	}
	e->e.req.nparams = nparams;
	e->e.req.params = (const char *const *)e->params_buf;
	return e;
}

int pqpool__loop_submit(pqpool_loop *l, const char *sql, int nparams,
                        const char *const *params, unsigned flags, int64_t deadline_ns,
                        bool health, pqpool_done_fn done, void *arg)
{
	struct pqpool *p = l->pool;
	lentry *e;

	if (l->freeing || (atomic_load_explicit(&p->contend, memory_order_acquire) &
	                   PQPOOL__CLOSED_BIT))
		return pqpool__fail(PQPOOL_ECLOSED,
		                    "submit: the pool or the loop is closing");
	if (!(e = entry_new(sql, nparams, params)))
		return pqpool__fail(PQPOOL_ENOMEM, "submit: out of memory");
	e->done = done;
	e->arg = arg;
	e->flags = flags;
	e->health = health;
	e->attempts = 1;
	e->alone = !p->ctx.cfg.pipeline || (flags & PQPOOL_NO_PIPELINE) ||
	           !pqpool__pipelinable(sql);
	e->e.t0_ns = pqc_now_ns();
	e->e.deadline_ns =
	        deadline_ns ? deadline_ns : pqpool__loop_deadline_of(p, e->e.t0_ns);
	l->outstanding++;
	due_at(l, e->e.deadline_ns);
	if (l->queue || !pqpool__loop_place(l, &e->e))
		push_back(&l->queue, &l->queue_tail, &e->e);
	if (l->depth == 0) {
		/* outside a round: sent when its socket is writable, with what
		 * else is submitted before the host's loop turns */
		if (l->queue) {
			l->retry_ms = 0;
			due_at(l, e->e.t0_ns); /* a round soon, to take a connection */
		}
		release_pass(l, false); /* a connection that failed to set up */
		if (l->queue)
			due_at(l, e->e.t0_ns);
		if (l->next_ns != INT64_MAX)
			pqpool__loop_arm(l, l->next_ns);
	}
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_submit(pqpool_loop *l, const char *sql, int nparams, const char *const *params,
                  unsigned flags, pqpool_done_fn done, void *arg)
{
	if (!l || !sql || !done || nparams < 0 || nparams > 65535 ||
	    (nparams > 0 && !params))
		return pqpool__fail(
		        PQPOOL_EINVAL,
		        "submit: NULL loop, SQL, callback or parameters, or more "
		        "than 65535 parameters");
	return pqpool__loop_submit(l, sql, nparams, params, flags, 0, false, done, arg);
}

void pqpool_loop_ready(pqpool_loop *l, void *token, unsigned ready)
{
	lconn *c = token;
	if (!l || !c)
		return;
	enter(l);
	if (*(const unsigned char *)token == PQPOOL__LTAG_CANCEL) {
		c = (lconn *)(void *)((char *)token - offsetof(lconn, cx));
		if (c->cx.cc)
			pqpool__loop_cancel_step(c);
		leave(l);
		return;
	}
	if (c->opening) {
		if (!c->lost)
			pqpool__loop_open_step(l, c);
		leave(l);
		return;
	}
	if (!c->lost && (ready & PQPOOL_EV_WRITE) && c->flushing) {
		int f = PQflush(c->s->link.pg);
		if (f < 0)
			c->lost = true;
		c->flushing = f == 1;
		if (!c->lost && !c->flushing && !c->dirty)
			pqpool__loop_watch(c, PQPOOL_EV_READ);
	}
	if (!c->lost && (ready & PQPOOL_EV_READ))
		pqpool__loop_conn_read(l, c);
	leave(l);
}

void pqpool_loop_timeout(pqpool_loop *l)
{
	if (!l)
		return;
	l->timer_ns = 0;
	enter(l);
	leave(l); /* the deadlines are looked at there */
}

int pqpool_loop_pending(const pqpool_loop *l)
{
	return l ? l->outstanding : 0;
}

static void fail_list(pqpool_loop *l, pentry *e, const char *msg)
{
	while (e) {
		pentry *n = e->next;
		pqpool__fail(PQPOOL_ECLOSED, "%s", msg);
		pqpool__loop_complete(l, e, PQPOOL_ECLOSED, NULL);
		e = n;
	}
}

static void loop_destroy(pqpool_loop *l)
{
	l->depth = 1; /* callbacks from here on submit nothing (freeing) */
	while (l->conns) {
		lconn *c = l->conns;
		pentry *flight = NULL;
		if (c->s && !c->opening) {
			pqpool__pipe *pp = &c->s->pipe;
			flight = pp->flight;
			pp->flight = pp->flight_tail = pp->cur = NULL;
		}
		if (flight)
			c->lost = true; /* results nobody will read: closed */
		c->nflight = 0;
		fail_list(l, flight,
		          "loop freed while the statement was in flight; it may "
		          "have run");
		fail_list(l, c->pend, "loop freed before the statement was sent");
		c->pend = NULL;
		c->npend = 0;
		pqpool__loop_conn_release(l, c);
	}
	fail_list(l, l->queue, "loop freed before the statement was sent");
	l->queue = NULL;
	fail_list(l, l->later, "loop freed before the statement was sent again");
	l->later = NULL;
	if (l->timer_ns)
		l->ad.timer(l->ad.host, -1);
	free(l);
}

void pqpool_loop_free(pqpool_loop *l)
{
	if (!l)
		return;
	l->freeing = true;
	if (l->depth > 0)
		return; /* from a callback: at the end of the round */
	loop_destroy(l);
}
