/* loop_conn.c — the connections an event loop holds, chosen for each
 * statement; and the wire: what waits sent under one Sync per group,
 * results read without blocking, groups delivered by the pipeline's rules,
 * a lost connection's statements moved on or failed. */
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
#include "exec.h"
#include "pipe.h"
#include "pipe_int.h"
#include "pool.h"
#include "role.h"
#include "stats.h"
#include "stmtcache.h"

/* ---- choosing a connection ---- */

static int64_t hol_ns(void)
{
	return (int64_t)PQPOOL__PIPE_HOL_MS * 1000000;
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

/* Whether c has room for a shared statement of this kind, none of its
 * groups out longer than the head-of-line bound. With quick (a health
 * check), only if nothing slow runs on it: nothing in flight or waiting,
 * or its last group quick (PQPOOL__PIPE_QUICK_US a statement): a check must
 * not wait behind slow statements, nor slow checks behind each other (a
 * DB_HEALTH_QUERY that takes 100 ms); then each takes a connection of its
 * own, or waits for one. */
static bool shared_room(pqpool_loop *l, lconn *c, int64_t now, bool read, bool quick)
{
	if (c->alone || c->lost || c->closing || c->s->pipe.cancel_sent ||
	    conn_load(c) >= l->pool->ctx.cfg.pipeline_depth ||
	    !pqpool__loop_conn_fits(l, c, read))
		return false;
	if (c->sent_ns && now - c->sent_ns > hol_ns())
		return false;
	return !(quick && conn_load(c) > 0 &&
	         (!c->stmt_us || c->stmt_us > PQPOOL__PIPE_QUICK_US));
}

/* Whether c is the connection of a statement run alone that is done and
 * fit for the next one (no transaction left open). */
static bool alone_spare(pqpool_loop *l, lconn *c, bool read)
{
	return c->alone && !c->lost && !c->closing && !c->opening && conn_load(c) == 0 &&
	       !c->flushing && PQtransactionStatus(c->s->link.pg) == PQTRANS_IDLE &&
	       pqpool__loop_conn_fits(l, c, read);
}

/* Whether c was opened after fresh_ms (coarse ms), or began opening then. */
static bool opened_after(const lconn *c, int64_t fresh_ms)
{
	return c->opening ? c->open_ms > fresh_ms : pqpool__opened_after(c->s, fresh_ms);
}

/* The least loaded connection e may go on (shared_room or alone_spare);
 * with fresh_ms, only one opened after then. */
static lconn *conn_for(pqpool_loop *l, const lentry *e, int64_t fresh_ms)
{
	bool read = (e->flags & PQPOOL_READ) != 0;
	int64_t now = pqc_now_ns();
	lconn *best = NULL;
	for (lconn *c = l->conns; c; c = c->next) {
		if (e->alone ? !alone_spare(l, c, read)
		             : !shared_room(l, c, now, read, e->health))
			continue;
		if (fresh_ms && !opened_after(c, fresh_ms))
			continue;
		if (e->alone)
			return c;
		if (!best || conn_load(c) < conn_load(best))
			best = c;
	}
	return best;
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
	/* a health check's last try: on a connection opened after the losses
	 * (lentry.fresh_ms); with none to be had now, on any, as the others */
	if (L(e)->fresh_ms && !(c = conn_for(l, L(e), L(e)->fresh_ms)))
		c = pqpool__loop_take(l, L(e)->alone, read, L(e)->fresh_ms);
	if (!c)
		c = conn_for(l, L(e), 0);
	if (!c)
		c = pqpool__loop_take(l, L(e)->alone, read, 0);
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
