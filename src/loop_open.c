/* loop_open.c — the connections an event loop takes from the pool and gives
 * back: an idle one put into pipeline mode, or one opened without blocking
 * into a slot claimed from the pool (PQconnectPoll from the loop's watch,
 * its statements waiting on it), a failed open's statements failed or sent
 * again later, and the pause before the next open. */
#include "loop_int.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "error.h"
#include "lease.h"
#include "pin.h"
#include "pool.h"
#include "rand.h"
#include "router.h"

/* ---- taking a connection ---- */

/* A leased connection c holds goes into pipeline mode, watched for
 * reading; false when it cannot (c is then lost). */
static bool conn_setup(lconn *c)
{
	pqpool__slot *s = c->s;
	if (PQsetnonblocking(s->link.pg, 1) != 0 ||
	    PQenterPipelineMode(s->link.pg) != 1) {
		s->link.broken = true;
		c->lost = true;
		return false;
	}
	if ((c->fd = fcntl(PQsocket(s->link.pg), F_DUPFD_CLOEXEC, 0)) < 0) {
		c->lost = true;
		return false;
	}
	pqpool__loop_watch(c, PQPOOL_EV_READ);
	return true;
}

/* An opening c watches the socket libpq connects on now, for events: a
 * descriptor of its own each step, since libpq may have closed the last
 * one and opened another (the next address, or again without TLS). */
static void open_watch(lconn *c, unsigned events)
{
	pqpool__loop_watch(c, 0);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (PQsocket(c->opg) < 0 ||
	    (c->fd = fcntl(PQsocket(c->opg), F_DUPFD_CLOEXEC, 0)) < 0) {
		c->lost = true;
		return;
	}
	pqpool__loop_watch(c, events);
}

/* The pause before the loop opens another connection after n opens failed
 * in a row: 50 ms doubling to 800 ms, the upper half at random. */
static int64_t open_hold_ns(int n)
{
	int64_t ms = (int64_t)50 << (n < 5 ? n - 1 : 4);
	ms = ms / 2 + (int64_t)(pqc_rand64() % (uint64_t)(ms / 2 + 1));
	return ms * 1000000;
}

lconn *pqpool__loop_take(pqpool_loop *l, bool alone, bool read, int64_t fresh_ms)
{
	struct pqpool *p = l->pool;
	int64_t now = pqc_now_ns();
	char err[PQPOOL__ERRLEN];
	pqpool__slot *s;
	bool claimed, hold;
	lconn *c;

	if (l->acquire_failed)
		return NULL;
	/* an open failed moments ago: not another before the pause; an idle
	 * connection (one host: no routing) may still be taken, but not for
	 * a fresh one, which the caller then seeks among any */
	hold = now < l->open_hold_ns;
	if (hold && fresh_ms) {
		due_at(l, l->open_hold_ns);
		return NULL;
	}
	if (hold && p->members) {
		l->acquire_failed = true;
		due_at(l, l->open_hold_ns);
		return NULL;
	}
	/* with several hosts: the member for this kind of statement (with no
	 * primary known, asking the hosts connects, and blocks) */
	if (!hold && !(p = pqpool__route(l->pool, read ? PQPOOL_READ : 0,
	                                 now + (int64_t)p->ctx.cfg.connection_timeout_ms *
	                                                 1000000))) {
		l->acquire_failed = true;
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c))) {
		l->acquire_failed = true;
		pqpool__fail(PQPOOL_ENOMEM, "submit: out of memory");
		return NULL;
	}
	claimed = false;
	if (hold ? pqpool__try_acquire(p, &s, __FILE__, __LINE__) != PQPOOL_OK
	         : pqpool__acquire_or_claim(p, fresh_ms, &s, &claimed, __FILE__,
	                                    __LINE__) != PQPOOL_OK) {
		free(c);
		l->acquire_failed = true;
		if (hold)
			due_at(l, l->open_hold_ns);
		return NULL;
	}
	c->loop = l;
	c->s = s;
	c->fd = -1;
	c->alone = alone;
	c->read = read && l->pool->members;
	s->pipe.flight = s->pipe.flight_tail = s->pipe.cur = NULL;
	s->pipe.awaiting_sync = s->pipe.cancel_sent = false;
	c->next = l->conns; /* a failure below: released at the end of the round */
	l->conns = c;
	l->nconns++;
	if (claimed) {
		c->opening = true;
		c->open_ns = now;
		c->open_ms = pqc_now_coarse_ms();
		if ((c->opg = pqpool__connect_start(&p->ctx.params, err, sizeof err)))
			open_watch(c, PQPOOL_EV_WRITE); /* libpq's first step: writable */
		if (!c->opg || c->lost) {
			/* failed now, before any statement joins it: no callback
			 * runs inside a submit */
			c->lost = false;
			pqpool__loop_open_failed(
			        l, c, c->opg ? "its socket could not be watched" : err);
			l->acquire_failed = true;
			return NULL;
		}
		due_at(l, now + (int64_t)p->ctx.cfg.connection_timeout_ms * 1000000);
	} else if (!conn_setup(c)) {
		l->acquire_failed = true;
		return NULL;
	}
	l->retry_ms = 0;
	return c;
}

void pqpool__loop_open_step(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	struct pqpool *p = pqpool__pool_of(s);
	char err[PQPOOL__ERRLEN];
	PostgresPollingStatusType st = pqpool__connect_step(c->opg, &p->ctx.params,
	                                                    &p->ctx.log, err, sizeof err);

	if (st == PGRES_POLLING_FAILED) {
		pqpool__loop_open_failed(l, c, err);
		return;
	}
	if (st != PGRES_POLLING_OK) {
		open_watch(c, st == PGRES_POLLING_READING ? PQPOOL_EV_READ
		                                          : PQPOOL_EV_WRITE);
		return;
	}
	pqpool__loop_watch(c, 0);
	close(c->fd);
	c->fd = -1;
	c->opening = false;
	pqpool__pin(p);
	pqpool__open_settle(p, s, c->opg, c->open_ns); /* s: BUSY, ours */
	pqpool__unpin(p);
	c->opg = NULL;
	pqpool__lease_opened(s, c->open_ns, __FILE__, __LINE__);
	l->open_fails = 0;
	l->open_hold_ns = 0;
	if (conn_setup(c))
		c->dirty = c->pend != NULL; /* sent at the end of this round */
}

void pqpool__loop_open_failed(pqpool_loop *l, lconn *c, const char *why)
{
	struct pqpool *p = pqpool__pool_of(c->s);
	int64_t now = pqc_now_ns(), ms = (now - c->open_ns) / 1000000;
	pentry *pend = c->pend;

	pqpool__loop_watch(c, 0);
	PQfinish(c->opg);
	c->opg = NULL;
	c->opening = false;
	c->lost = c->settled = true;
	atomic_fetch_add(&p->ctx.counters.acquire_errors, 1);
	pqpool__pin(p);
	pqpool__open_settle(p, c->s, NULL, c->open_ns); /* emptied */
	c->s = NULL;
	l->open_fails++;
	l->open_hold_ns = now + open_hold_ns(l->open_fails);
	due_at(l, l->open_hold_ns);
	c->pend = c->pend_tail = NULL;
	c->npend = 0;
	/* nothing was sent: each may go again after its backoff, as
	 * pqpool_query's attempts do after a failed connect */
	while (pend) {
		pentry *e = pend;
		pend = e->next;
		e->next = NULL;
		pqpool__fail(PQPOOL_ECONNECT, "acquire: could not connect to %s%s: %s",
		             p->ctx.params.masked,
		             ms >= p->ctx.cfg.connection_timeout_ms
		                     ? " within DB_CONNECTION_TIMEOUT"
		                     : "",
		             why);
		if (!pqpool__loop_retry_later(l, e, PQPOOL_ECONNECT, now))
			pqpool__loop_complete(l, e, PQPOOL_ECONNECT, NULL);
	}
	pqpool__unpin(p);
}

/* Gives a connection back: closed when it failed or still has statements
 * in flight, else out of pipeline mode (the release rolls back or closes a
 * connection left in a transaction). */
void pqpool__loop_conn_release(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	lconn **pc = &l->conns;

	while (*pc != c)
		pc = &(*pc)->next;
	*pc = c->next;
	l->nconns--;
	pqpool__loop_cancel_end(c, NULL); /* its canceller back to the slot */
	pqpool__loop_watch(c, 0);
	if (c->fd >= 0)
		close(c->fd);
	if (c->opening) { /* given up before it opened */
		struct pqpool *p = pqpool__pool_of(s);
		PQfinish(c->opg);
		pqpool__pin(p);
		pqpool__open_abandon(p, s);
		pqpool__unpin(p);
	} else if (s) { /* (an open that failed has no slot left) */
		PGconn *pg = s->link.pg;
		if (c->lost || c->nflight || c->flushing || PQexitPipelineMode(pg) != 1 ||
		    PQsetnonblocking(pg, 0) != 0)
			s->link.broken = true;
		s->pipe.flight = s->pipe.flight_tail = s->pipe.cur = NULL;
		pqpool__release(s, false);
	}
	free(c);
}
