/* loop_conn.c — the connections an event loop holds: taken from the pool
 * into pipeline mode, chosen for each statement, given back; and the wire:
 * what waits sent under one Sync per group, results read without
 * blocking, groups delivered by the pipeline's rules, a lost connection's
 * statements moved on or failed. */
#include "loop_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "cancel.h"
#include "clock.h"
#include "error.h"
#include "exec.h"
#include "conn.h"
#include "lease.h"
#include "pin.h"
#include "log.h"
#include "pipe.h"
#include "pipe_int.h"
#include "pool.h"
#include "rand.h"
#include "role.h"
#include "router.h"
#include "stats.h"
#include "stmtcache.h"

/* ---- the adapter ---- */

/* Asks the adapter to watch fd with token for events (0: stop); false
 * when it cannot. */
static bool watch_fd(pqpool_loop *l, int fd, unsigned events, void *token,
                     unsigned *watching, void **handle)
{
	if (*watching == events || fd < 0)
		return true;
	if (l->ad.watch(l->ad.host, fd, events, token, handle) != 0) {
		*watching = 0;
		*handle = NULL;
		return events == 0;
	}
	*watching = events;
	return true;
}

void pqpool__loop_watch(lconn *c, unsigned events)
{
	if (!watch_fd(c->loop, c->fd, events, c, &c->watching, &c->handle))
		c->lost = true; /* cannot be watched: given up */
}

/* ---- cancel requests, step by step ---- */

/* c's cancel request waits on the socket the canceller has now, for
 * events (POLLIN/POLLOUT): a descriptor of our own each step, as libpq
 * may change the socket. False when it cannot be watched. */
static bool cancel_watch(lconn *c, int fd, short events)
{
	lcancel *x = &c->cx;
	watch_fd(c->loop, x->fd, 0, x, &x->watching, &x->handle);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	return x->fd >= 0 && watch_fd(c->loop, x->fd,
	                              events == POLLIN ? PQPOOL_EV_READ : PQPOOL_EV_WRITE,
	                              x, &x->watching, &x->handle);
}

void pqpool__loop_cancel_end(lconn *c, const char *why)
{
	lcancel *x = &c->cx;
	if (!x->cc)
		return;
	watch_fd(c->loop, x->fd, 0, x, &x->watching, &x->handle);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	pqpool__cancel_end(x->cc);
	pqpool__give_canceller(c->s, x->cc);
	x->cc = NULL;
	if (why)
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN, "%s", why);
	if (!c->s->pipe.flight && c->s->pipe.cancel_sent) {
		/* what it was for was read already: what waits may go now */
		c->s->pipe.cancel_sent = false;
		c->cancel_ns = 0;
		c->dirty = c->pend != NULL;
	}
}

void pqpool__loop_cancel(pqpool_loop *l, lconn *c, int64_t until_ns)
{
	lcancel *x = &c->cx;
	char err[256];
	short events;
	int fd;

	if (x->cc)
		return; /* one is out already */
	x->tag = PQPOOL__LTAG_CANCEL;
	x->fd = -1;
	if (!(x->cc = pqpool__take_canceller(c->s))) {
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN,
		            "cancel requests are unavailable with this libpq");
		return;
	}
	if (pqpool__cancel_begin(x->cc, &fd, &events, err, sizeof err) != 0) {
		pqpool__give_canceller(c->s, x->cc);
		x->cc = NULL;
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN, "%s", err);
		return;
	}
	x->until_ns = until_ns;
	due_at(l, until_ns);
	if (!cancel_watch(c, fd, events))
		pqpool__loop_cancel_end(c, "cancel: its socket could not be watched");
}

void pqpool__loop_cancel_step(lconn *c)
{
	lcancel *x = &c->cx;
	char err[256];
	short events;
	int fd, r = pqpool__cancel_step(x->cc, &fd, &events, err, sizeof err);
	if (r > 0)
		pqpool__loop_cancel_end(c, NULL);
	else if (r < 0)
		pqpool__loop_cancel_end(c, err);
	else if (!cancel_watch(c, fd, events))
		pqpool__loop_cancel_end(c, "cancel: its socket could not be watched");
}

void pqpool__loop_arm(pqpool_loop *l, int64_t at_ns)
{
	int64_t now = pqc_now_ns(), ms;
	if (l->timer_ns && l->timer_ns <= at_ns && l->timer_ns > now)
		return; /* fires sooner anyway: we look again then */
	ms = at_ns <= now ? 0 : (at_ns - now + 999999) / 1000000;
	l->timer_ns = now + ms * 1000000;
	l->ad.timer(l->ad.host, ms > INT32_MAX / 2 ? INT32_MAX / 2 : (int)ms);
}

/* ---- connections ---- */

static int64_t hol_ns(void)
{
	return (int64_t)PQPOOL__PIPE_HOL_MS * 1000000;
}

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

/* Takes a connection from the pool into the loop: an idle one, or a slot
 * to open one into without blocking (its statements wait until it is
 * open). NULL when the pool has none to give now (l->acquire_failed),
 * with the error set. */
static lconn *conn_take(pqpool_loop *l, bool alone, bool read)
{
	struct pqpool *p = l->pool;
	int64_t now = pqc_now_ns();
	char err[PQPOOL__ERRLEN];
	pqpool__slot *s;
	bool claimed;
	lconn *c;

	if (l->acquire_failed)
		return NULL;
	if (now < l->open_hold_ns) {
		/* an open failed moments ago: not another before the pause */
		l->acquire_failed = true;
		due_at(l, l->open_hold_ns);
		return NULL;
	}
	/* with several hosts: the member for this kind of statement (with no
	 * primary known, asking the hosts connects, and blocks) */
	if (!(p = pqpool__route(l->pool, read ? PQPOOL_READ : 0,
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
	if (pqpool__acquire_or_claim(p, &s, &claimed, __FILE__, __LINE__) != PQPOOL_OK) {
		free(c);
		l->acquire_failed = true;
		return NULL;
	}
	c->loop = l;
	c->s = s;
	c->fd = -1;
	c->alone = alone;
	c->read = read && l->pool->members;
	s->pipe.flight = s->pipe.flight_tail = s->pipe.cur = NULL;
	s->pipe.awaiting_sync = s->pipe.cancel_sent = false;
	if (claimed) {
		c->opening = true;
		c->open_ns = now;
		if (!(c->opg = pqpool__connect_start(&p->ctx.params, err, sizeof err))) {
			c->next = l->conns; /* failed at once: released at the end */
			l->conns = c;
			l->nconns++;
			pqpool__loop_open_failed(l, c, err);
			l->acquire_failed = true;
			return NULL;
		}
		open_watch(c, PQPOOL_EV_WRITE); /* libpq's first step: writable */
		if (c->lost) { /* cannot be watched: failed now, before any
		                * statement joins it (no callback inside a submit) */
			c->next = l->conns;
			l->conns = c;
			l->nconns++;
			c->lost = false;
			pqpool__loop_open_failed(l, c, "its socket could not be watched");
			l->acquire_failed = true;
			return NULL;
		}
		due_at(l, now + (int64_t)p->ctx.cfg.connection_timeout_ms * 1000000);
	}
	c->next = l->conns;
	l->conns = c;
	l->nconns++;
	if (!claimed && !conn_setup(c)) { /* released at the end of the round */
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

/* Whether c takes a statement of this kind (read or not): with several
 * hosts, reads go on connections taken for reads, the others on those to
 * the primary. */
bool pqpool__loop_conn_fits(const pqpool_loop *l, const lconn *c, bool read)
{
	if (!l->pool->members)
		return true;
	if (c->opening) /* its role is learnt once open */
		return c->read == read;
	if (read)
		return c->read;
	return !c->read && atomic_load_explicit(&c->s->ctx->role, memory_order_relaxed) ==
	                           PQPOOL__ROLE_PRIMARY;
}

/* The least loaded connection with room for this kind of statement, none
 * of whose groups has been out longer than the head-of-line bound. With
 * quick (a health check), only one that nothing slow runs on: nothing in
 * flight or waiting, or its last group quick (PQPOOL__PIPE_QUICK_US a
 * statement): a check must not wait behind slow statements, nor slow checks
 * behind each other (a DB_HEALTH_QUERY that takes 100 ms); then each takes
 * a connection of its own, or waits for one. */
static lconn *conn_best(pqpool_loop *l, int64_t now, bool read, bool quick)
{
	int depth = l->pool->ctx.cfg.pipeline_depth;
	lconn *best = NULL;
	for (lconn *c = l->conns; c; c = c->next) {
		if (c->alone || c->lost || c->closing || c->s->pipe.cancel_sent ||
		    conn_load(c) >= depth || !pqpool__loop_conn_fits(l, c, read))
			continue;
		if (c->sent_ns && now - c->sent_ns > hol_ns())
			continue;
		if (quick && conn_load(c) > 0 &&
		    (!c->stmt_us || c->stmt_us > PQPOOL__PIPE_QUICK_US))
			continue;
		if (!best || conn_load(c) < conn_load(best))
			best = c;
	}
	return best;
}

/* A connection of a statement run alone that is done and fit for the next
 * one (no transaction left open). */
static lconn *conn_spare(pqpool_loop *l, bool read)
{
	for (lconn *c = l->conns; c; c = c->next)
		if (c->alone && !c->lost && !c->closing && !c->opening &&
		    conn_load(c) == 0 && !c->flushing &&
		    PQtransactionStatus(c->s->link.pg) == PQTRANS_IDLE &&
		    pqpool__loop_conn_fits(l, c, read))
			return c;
	return NULL;
}

static void conn_add(lconn *c, pentry *e)
{
	e->join_ns = c->alone ? 0 : pqc_now_ns(); /* alone: never behind another's */
	push_back(&c->pend, &c->pend_tail, e);
	c->npend++;
	c->dirty = true;
	if (c->loop->depth == 0 && !c->opening)
		pqpool__loop_watch(c, PQPOOL_EV_READ |
		                              PQPOOL_EV_WRITE); /* sent when writable */
}

/* Finds e a connection: false when none has room and the pool has none to
 * give now (e stays where it was). A statement fills a connection up to
 * the pipeline depth before another connection is taken: deeper pipelines
 * cost the server fewer wake-ups per statement. */
bool pqpool__loop_place(pqpool_loop *l, pentry *e)
{
	lconn *c = NULL;
	bool read = (L(e)->flags & PQPOOL_READ) != 0;
	if (!L(e)->alone)
		c = conn_best(l, pqc_now_ns(), read, L(e)->health);
	else
		c = conn_spare(l, read);
	if (!c)
		c = conn_take(l, L(e)->alone, read);
	if (!c)
		return false;
	conn_add(c, e);
	return true;
}

/* What waits in the loop's queue goes out, in order, while there is room. */
void pqpool__loop_drain_queue(pqpool_loop *l)
{
	while (l->queue) {
		pentry *e = l->queue;
		l->queue = e->next;
		if (!l->queue)
			l->queue_tail = NULL;
		if (!pqpool__loop_place(l, e)) {
			e->next = l->queue;
			l->queue = e;
			if (!l->queue_tail)
				l->queue_tail = e;
			return;
		}
	}
}

/* ---- the wire ---- */

/* Sends what waits on c: each run of statements under one Sync, a
 * statement sent again under one of its own; then flushes what the socket
 * takes. */
void pqpool__loop_conn_send(lconn *c)
{
	pqpool__slot *s = c->s;
	pqpool__pipe *pp = &s->pipe;
	PGconn *pg = s->link.pg;
	int64_t now = pqc_now_ns(), now_ms = pqc_now_coarse_ms();
	int f;

	c->dirty = false;
	if (pp->cancel_sent)
		return; /* nothing new until what it may hit is read (conn_group) */
	if (pp->flight && s->ctx->cfg.pipeline_one_sync)
		return; /* one group in flight: the next once it is read */
	if (!pp->flight &&
	    s->link.checked_ms < atomic_load_explicit(&pqpool__pool_of(s)->broken_at_ms,
	                                              memory_order_relaxed)) {
		/* another connection broke since this one was last seen alive
		 * (terminated backends go together): the cheap check a lease
		 * gets, before anything is sent; a dead one's statements go
		 * elsewhere, unsent (pqpool__loop_conn_lost) */
		if (!pqpool__conn_alive(pg)) {
			c->lost = true;
			return;
		}
		s->link.checked_ms = now_ms;
	}
	atomic_store_explicit(&s->lease.acquired_ms, now_ms, memory_order_relaxed);
	while (c->pend) {
		pentry *e = c->pend;
		c->pend = e->next;
		if (!c->pend)
			c->pend_tail = NULL;
		c->npend--;
		e->next = NULL;
		if (!e->counted) {
			/* a share of the connection is an acquire; its wait, the
			 * time until it went out */
			e->counted = true;
			pqpool__qstats_lease(&s->q, now_ms);
			pqpool__qstats_wait(&s->q, now - e->t0_ns);
		}
		if (pp->flight_tail)
			pp->flight_tail->next = e;
		else
			pp->flight = pp->cur = e;
		pp->flight_tail = e;
		c->nflight++;
		if (!pqpool__pipe_send_one(s, e)) {
			c->lost = true;
			return;
		}
		if (e->solo || !c->pend || c->pend->solo) {
			e->end_of_group = true;
			if (!c->alone)
				pqpool__qstats_depth(&s->q, c->nflight);
			if (!pqpool__pipe_send_sync(pg)) {
				c->lost = true;
				return;
			}
			if (s->ctx->cfg.pipeline_one_sync)
				break;
		}
	}
	if (!c->sent_ns) {
		c->sent_ns = now;
		due_at(c->loop, now + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000);
	}
	f = PQflush(pg);
	if (f < 0) {
		c->lost = true;
		return;
	}
	c->flushing = f == 1;
	pqpool__loop_watch(c, PQPOOL_EV_READ | (c->flushing ? PQPOOL_EV_WRITE : 0));
}

/* The group at the head of c's flight was read to its Sync: delivers it,
 * or sends again what a failure in it rolled back. */
static void conn_group(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	pqpool__pipe *pp = &s->pipe;
	PGTransactionStatusType tx = PQtransactionStatus(s->link.pg);
	bool open_tx = tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR, again_failed;
	pentry *failed, *again = NULL, *again_tail = NULL;
	pentry *g = pqpool__pipe_detach_group(s, &failed, &again_failed);
	int64_t now = pqc_now_ns();
	int ng = 0;

	for (pentry *e = g; e; e = e->next)
		ng++;
	if (c->sent_ns && ng)
		c->stmt_us = (int)((now - c->sent_ns) / 1000 / ng) + 1;
	c->sent_ns = pp->flight ? now : 0;
	if (c->sent_ns)
		due_at(l, c->sent_ns + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000);
	if (!pp->flight && pp->cancel_sent && !c->cx.cc) {
		/* (while the request itself is out, it may still reach the
		 * server and hit what would be sent next: held until it is
		 * done, pqpool__loop_cancel_end) */
		pp->cancel_sent = false;
		c->cancel_ns = 0;
		c->dirty = c->pend != NULL; /* held while the cancel was out */
	}
	if (!pp->flight && c->pend)
		c->dirty = true; /* held while a group was in flight (one Sync) */
	if (open_tx && !c->alone) {
		/* nothing of the group committed, and the connection is not fit
		 * to share: it is closed once drained */
		s->link.broken = true;
		c->closing = true;
	}
	while (g) {
		pentry *e = g;
		g = g->next;
		e->next = NULL;
		c->nflight--;
		pqpool__pipe_forget_unprepared(s, e);
		if (!L(e)->done) { /* its caller was told it timed out */
			pqpool__loop_complete(l, e, PQPOOL_ETIMEDOUT, NULL);
		} else if (open_tx && !c->alone) {
			pqpool__pipe_fail_open_tx(s, e);
			pqpool__loop_complete(l, e, PQPOOL_EQUERY, NULL);
		} else if (!failed || (e == failed && !again_failed)) {
			PGresult *res = NULL;
			int st;
			if (e->failed && pqpool__pipe_stale(e) && !L(e)->retried) {
				/* prepared again, alone */
				pqpool__stmt_forget(s->link.stmts, e->req.sql);
				PQclear(e->last);
				e->last = NULL;
				L(e)->retried = e->solo = true;
				push_back(&again, &again_tail, e);
				continue;
			}
			st = pqpool__result_status(
			        s, e->last, e->cancelled ? e->t0_ns : 0, &res, "query");
			e->last = NULL;
			pqpool__note_query(s, e->t0_ns, st);
			if (st != PQPOOL_OK &&
			    pqpool__loop_retry_later(l, e, st, pqc_now_ns()))
				PQclear(res); /* a serialization failure, say: later */
			else
				pqpool__loop_complete(l, e, st, res);
		} else {
			/* rolled back or skipped with the group: again, alone */
			PQclear(e->last);
			e->last = NULL;
			e->solo = true;
			push_back(&again, &again_tail, e);
		}
	}
	if (again && again_failed && failed != again_tail &&
	    pqpool__pipe_in_list(again, failed)) {
		/* the statement our cancel hit was the slow one, most likely: it
		 * goes last, so that those of its group are not stuck behind it */
		pentry **pe = &again;
		while (*pe != failed)
			pe = &(*pe)->next;
		*pe = failed->next;
		failed->next = NULL;
		again_tail->next = failed;
		again_tail = failed;
	}
	if (again) { /* ahead of what was submitted since */
		int n = 0;
		for (pentry *e = again; e; e = e->next)
			n++;
		again_tail->next = c->pend;
		if (!c->pend)
			c->pend_tail = again_tail;
		c->pend = again;
		c->npend += n;
		c->dirty = true;
	}
}

/* c's connection failed: what was sent gets the failure (it may have run),
 * what was not goes to the front of the loop's queue. */
void pqpool__loop_conn_lost(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	pqpool__pipe *pp;
	int st;

	if (c->opening && !c->settled) { /* its socket could not be watched */
		pqpool__loop_open_failed(l, c, "its socket could not be watched");
		return;
	}
	c->lost = true;
	if (c->settled)
		return;
	c->settled = true;
	pp = &s->pipe;
	st = pqpool__conn_lost(s, "query", NULL);
	for (pentry *e = pp->flight, *n; e; e = n) {
		pqpool__saved_error err;
		n = e->next;
		c->nflight--;
		pqpool__note_query(s, e->t0_ns, st);
		pqpool__error_save(&err);
		if (!pqpool__loop_retry_later(l, e, st, pqc_now_ns()))
			pqpool__loop_complete(l, e, st, NULL);
		pqpool__error_restore(&err);
	}
	pp->flight = pp->flight_tail = pp->cur = NULL;
	pp->awaiting_sync = false;
	if (c->pend) {
		c->pend_tail->next = l->queue;
		if (!l->queue)
			l->queue_tail = c->pend_tail;
		l->queue = c->pend;
		c->pend = c->pend_tail = NULL;
		c->npend = 0;
	}
}

/* Reads what has arrived on c and delivers each group read to its Sync. */
void pqpool__loop_conn_read(pqpool_loop *l, lconn *c)
{
	PGconn *pg = c->s->link.pg;
	pqpool__pipe *pp = &c->s->pipe;

	do {
		if (!PQconsumeInput(pg)) {
			pqpool__loop_conn_lost(l, c);
			return;
		}
		while (pp->flight && !PQisBusy(pg)) {
			int t = pqpool__pipe_take(pp, PQgetResult(pg));
			if (t == TAKE_GROUP) {
				conn_group(l, c);
			} else if (t == TAKE_LOST) {
				pqpool__loop_conn_lost(l, c);
				return;
			}
		}
		/* bytes TLS decrypted and libpq did not take (it reads one record
		 * at most into the room it has) leave the socket silent */
	} while (pp->flight && pqpool__conn_tls_pending(pg));
}
