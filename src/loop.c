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
#include "pqpool.h"

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
#include "stats.h"
#include "stmtcache.h"

/* A submitted statement: a pipeline entry, its callback, its own copy of
 * the SQL and parameters behind it. */
typedef struct lentry {
	pentry e; /* first: an lentry is a pentry */
	pqpool_done_fn done;
	void *arg;
	bool alone;       /* on a connection of its own */
	bool retried;     /* sent again once after a stale plan */
	unsigned flags;   /* pqpool_submit's */
	int attempts;     /* sent this many times after failures (1: once) */
	int64_t retry_at; /* on the loop's later list: sent again from then */
	char *params_buf[];
} lentry;

#define L(pe) ((lentry *)(void *)(pe))

/* A connection the loop holds: a leased slot in pipeline mode. Its flight
 * and reading state live in the slot's pipe (unused while leased here); the
 * statements not sent yet, here. */
typedef struct lconn {
	struct lconn *next;
	pqpool_loop *loop;
	pqpool__slot *s;
	void *handle;       /* the adapter's */
	int fd;             /* ours: a dup of libpq's socket, which libpq may
	                     * close on a failure while the adapter watches it */
	unsigned watching;  /* PQPOOL_EV_* asked of the adapter */
	pentry *pend, *pend_tail;
	int npend, nflight;
	bool alone;         /* holds one statement that may not be shared */
	bool lost;          /* failed: released (closed) at the end of the round */
	bool settled;       /* and what it held moved on or failed */
	bool closing;       /* takes no more: released once drained */
	bool dirty;         /* has statements to send this round */
	bool flushing;      /* libpq holds output the socket did not take */
	int64_t sent_ns;    /* when the oldest group in flight went out; 0 none */
	int64_t cancel_ns;  /* when a cancel request went out; 0 none */
} lconn;

struct pqpool_loop {
	struct pqpool *pool;
	pqpool_adapter ad;
	lconn *conns;
	int nconns;
	pentry *queue, *queue_tail; /* waiting for room on a connection */
	pentry *later, *later_tail; /* retries waiting out their backoff */
	int outstanding;
	int depth;           /* nesting of our entry points (callbacks submit) */
	bool freeing;        /* pqpool_loop_free from a callback */
	bool acquire_failed; /* this round: the pool had nothing to give */
	int64_t timer_ns;    /* when the armed timer fires; 0: not armed */
	int64_t next_ns;     /* no deadline is due before this */
	int64_t retry_ms;    /* backoff while the pool has no connection */
};

static int conn_load(const lconn *c)
{
	return c->npend + c->nflight;
}

/* ---- callbacks ---- */

/* Calls e's callback, once; the thread's error describes a failure, and is
 * kept for the next callback whatever this one does. */
static void tell(pqpool_loop *l, lentry *e, int status, const PGresult *res)
{
	pqpool__saved_error err;
	pqpool_done_fn done = e->done;
	e->done = NULL;
	l->outstanding--;
	pqpool__error_save(&err);
	done(e->arg, status, status == PQPOOL_OK ? res : NULL);
	pqpool__error_restore(&err);
}

/* No deadline of the loop is due before t. */
static void due_at(pqpool_loop *l, int64_t t)
{
	if (t < l->next_ns)
		l->next_ns = t;
}

/* Calls e's callback with status (the thread's error describing a
 * failure), then frees e. */
static void complete(pqpool_loop *l, pentry *pe, int status, PGresult *res)
{
	lentry *e = L(pe);
	if (e->done)
		tell(l, e, status, res);
	PQclear(res);
	PQclear(pe->last);
	free(e);
}

/* Fails e with status and a message of its own. */
static void fail(pqpool_loop *l, pentry *e, int status, const char *fmt, long long a)
{
	pqpool__fail(status, fmt, a);
	complete(l, e, status, NULL);
}

/* A PQPOOL_IDEMPOTENT statement that failed with status (the thread's
 * error describing it) in a way worth trying again goes on the later list
 * for its backoff, as pqpool_query's retry loop would: true. Within
 * retry_attempts, DB_RETRY_DEADLINE and its own deadline. */
static bool retry_later(pqpool_loop *l, pentry *pe, int status, int64_t now)
{
	lentry *e = L(pe);
	const pqpool_config *cfg = &l->pool->ctx.cfg;
	int delay;
	int64_t at;

	if (!e->done || !(e->flags & PQPOOL_IDEMPOTENT) || e->attempts >= cfg->retry_attempts ||
	    !(status == PQPOOL_ECONNLOST || pqpool_sqlstate_retryable(pqpool_errcode())))
		return false;
	delay = pqpool_backoff_ms(e->attempts, cfg->retry_base_delay_ms, cfg->retry_max_delay_ms,
	                          pqc_rand64());
	at = now + (int64_t)delay * 1000000;
	if (at >= pe->t0_ns + (int64_t)cfg->retry_deadline_ms * 1000000 || at >= pe->deadline_ns)
		return false;
	pqpool__log(&l->pool->ctx.log, PQPOOL_LOG_WARN,
	            "database query attempt %d failed, retrying in %d ms: %s", e->attempts,
	            delay, pqpool_errmsg());
	pqpool__count(&l->pool->ctx.counters, PQPOOL__RETRIES, 1);
	e->attempts++;
	e->retry_at = at;
	PQclear(pe->last);
	pe->last = NULL;
	pe->cancelled = pe->failed = false;
	push_back(&l->later, &l->later_tail, pe);
	due_at(l, at);
	return true;
}

/* Retries whose backoff is over go to the front of the queue (they were
 * submitted before what waits there); the next of the others is due. */
static void later_due(pqpool_loop *l, int64_t now)
{
	pentry *due = NULL, *due_tail = NULL;
	for (pentry **pe = &l->later, *prev = NULL; *pe;) {
		pentry *e = *pe;
		if (now < L(e)->retry_at) {
			due_at(l, L(e)->retry_at);
			prev = e;
			pe = &e->next;
			continue;
		}
		*pe = e->next;
		if (l->later_tail == e)
			l->later_tail = prev;
		push_back(&due, &due_tail, e);
	}
	if (due) {
		due_tail->next = l->queue;
		if (!l->queue)
			l->queue_tail = due_tail;
		l->queue = due;
	}
}

/* ---- the adapter ---- */

static void watch(lconn *c, unsigned events)
{
	pqpool_loop *l = c->loop;
	if (c->watching == events || c->fd < 0)
		return;
	if (l->ad.watch(l->ad.host, c->fd, events, c, &c->handle) != 0) {
		c->watching = 0;
		c->handle = NULL;
		if (events)
			c->lost = true; /* cannot be watched: given up */
		return;
	}
	c->watching = events;
}

static void arm(pqpool_loop *l, int64_t at_ns)
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

/* Takes a connection from the pool into the loop; NULL when the pool has
 * none to give now (l->acquire_failed), with the error set. */
static lconn *conn_take(pqpool_loop *l, bool alone)
{
	struct pqpool *p = l->pool;
	pqpool__slot *s;
	lconn *c;
	int st;

	if (l->acquire_failed)
		return NULL;
	st = pqpool__try_acquire(p, &s, __FILE__, __LINE__);
	if (st == PQPOOL_EAGAIN) {
		int64_t d = pqc_now_ns() + (int64_t)p->ctx.cfg.connection_timeout_ms * 1000000;
		st = pqpool__acquire_unqueued(p, d, &s, __FILE__, __LINE__);
	}
	if (st != PQPOOL_OK) {
		l->acquire_failed = true;
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c))) {
		pqpool__release(s, false);
		l->acquire_failed = true;
		pqpool__fail(PQPOOL_ENOMEM, "submit: out of memory");
		return NULL;
	}
	if (PQsetnonblocking(s->link.pg, 1) != 0 || PQenterPipelineMode(s->link.pg) != 1) {
		s->link.broken = true;
		pqpool__release(s, false);
		free(c);
		return NULL;
	}
	c->loop = l;
	c->s = s;
	c->alone = alone;
	if ((c->fd = dup(PQsocket(s->link.pg))) < 0)
		c->lost = true;
	s->pipe.flight = s->pipe.flight_tail = s->pipe.cur = NULL;
	s->pipe.awaiting_sync = s->pipe.cancel_sent = false;
	watch(c, PQPOOL_EV_READ);
	c->next = l->conns;
	l->conns = c;
	l->nconns++;
	l->retry_ms = 0;
	return c;
}

/* Gives a connection back: closed when it failed or still has statements
 * in flight, else out of pipeline mode (the release rolls back or closes a
 * connection left in a transaction). */
static void conn_release(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	PGconn *pg = s->link.pg;
	lconn **pc = &l->conns;

	while (*pc != c)
		pc = &(*pc)->next;
	*pc = c->next;
	l->nconns--;
	watch(c, 0);
	if (c->fd >= 0)
		close(c->fd);
	if (c->lost || c->nflight || c->flushing || PQexitPipelineMode(pg) != 1 ||
	    PQsetnonblocking(pg, 0) != 0)
		s->link.broken = true;
	s->pipe.flight = s->pipe.flight_tail = s->pipe.cur = NULL;
	pqpool__release(s, false);
	free(c);
}

/* The least loaded connection with room, none of whose groups has been out
 * longer than the head-of-line bound. */
static lconn *conn_best(pqpool_loop *l, int64_t now)
{
	int depth = l->pool->ctx.cfg.pipeline_depth;
	lconn *best = NULL;
	for (lconn *c = l->conns; c; c = c->next) {
		if (c->alone || c->lost || c->closing || c->s->pipe.cancel_sent ||
		    conn_load(c) >= depth)
			continue;
		if (c->sent_ns && now - c->sent_ns > hol_ns())
			continue;
		if (!best || conn_load(c) < conn_load(best))
			best = c;
	}
	return best;
}

/* A connection of a statement run alone that is done and fit for the next
 * one (no transaction left open). */
static lconn *conn_spare(pqpool_loop *l)
{
	for (lconn *c = l->conns; c; c = c->next)
		if (c->alone && !c->lost && !c->closing && conn_load(c) == 0 &&
		    !c->flushing && PQtransactionStatus(c->s->link.pg) == PQTRANS_IDLE)
			return c;
	return NULL;
}

static void conn_add(lconn *c, pentry *e)
{
	e->join_ns = c->alone ? 0 : pqc_now_ns(); /* alone: never behind another's */
	push_back(&c->pend, &c->pend_tail, e);
	c->npend++;
	c->dirty = true;
	if (c->loop->depth == 0)
		watch(c, PQPOOL_EV_READ | PQPOOL_EV_WRITE); /* sent when writable */
}

/* Finds e a connection: false when none has room and the pool has none to
 * give now (e stays where it was). A statement fills a connection up to
 * the pipeline depth before another connection is taken: deeper pipelines
 * cost the server fewer wake-ups per statement. */
static bool place(pqpool_loop *l, pentry *e)
{
	lconn *c = NULL;
	if (!L(e)->alone)
		c = conn_best(l, pqc_now_ns());
	else
		c = conn_spare(l);
	if (!c)
		c = conn_take(l, L(e)->alone);
	if (!c)
		return false;
	conn_add(c, e);
	return true;
}

/* What waits in the loop's queue goes out, in order, while there is room. */
static void drain_queue(pqpool_loop *l)
{
	while (l->queue) {
		pentry *e = l->queue;
		l->queue = e->next;
		if (!l->queue)
			l->queue_tail = NULL;
		if (!place(l, e)) {
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
static void conn_send(lconn *c)
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
	watch(c, PQPOOL_EV_READ | (c->flushing ? PQPOOL_EV_WRITE : 0));
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

	c->sent_ns = pp->flight ? pqc_now_ns() : 0;
	if (c->sent_ns)
		due_at(l, c->sent_ns + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000);
	if (!pp->flight && pp->cancel_sent) {
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
			complete(l, e, PQPOOL_ETIMEDOUT, NULL);
		} else if (open_tx && !c->alone) {
			PQclear(e->last);
			e->last = NULL;
			pqpool__fail(PQPOOL_EQUERY,
			             "query: a pipelined statement left a transaction open; "
			             "connection closed (send it with PQPOOL_NO_PIPELINE)");
			pqpool__note_query(s, e->t0_ns, PQPOOL_EQUERY);
			complete(l, e, PQPOOL_EQUERY, NULL);
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
			st = pqpool__result_status(s, e->last, e->cancelled ? e->t0_ns : 0, &res,
			                           "query");
			e->last = NULL;
			pqpool__note_query(s, e->t0_ns, st);
			if (st != PQPOOL_OK && retry_later(l, e, st, pqc_now_ns()))
				PQclear(res); /* a serialization failure, say: later */
			else
				complete(l, e, st, res);
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
static void conn_lost(pqpool_loop *l, lconn *c)
{
	pqpool__slot *s = c->s;
	pqpool__pipe *pp = &s->pipe;
	int st;

	c->lost = true;
	if (c->settled)
		return;
	c->settled = true;
	st = pqpool__conn_lost(s, "query", NULL);
	for (pentry *e = pp->flight, *n; e; e = n) {
		pqpool__saved_error err;
		n = e->next;
		c->nflight--;
		pqpool__note_query(s, e->t0_ns, st);
		pqpool__error_save(&err);
		if (!retry_later(l, e, st, pqc_now_ns()))
			complete(l, e, st, NULL);
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
static void conn_read(pqpool_loop *l, lconn *c)
{
	PGconn *pg = c->s->link.pg;
	pqpool__pipe *pp = &c->s->pipe;

	if (!PQconsumeInput(pg)) {
		conn_lost(l, c);
		return;
	}
	while (pp->flight && !PQisBusy(pg)) {
		int t = pqpool__pipe_take(pp, PQgetResult(pg));
		if (t == TAKE_GROUP) {
			conn_group(l, c);
		} else if (t == TAKE_LOST) {
			conn_lost(l, c);
			return;
		}
	}
}

/* ---- deadlines ---- */

static int64_t deadline_of(const struct pqpool *p, int64_t t0)
{
	int qt = p->ctx.cfg.query_timeout_ms;
	return qt > 0 ? t0 + (int64_t)qt * 1000000 : INT64_MAX;
}

/* Entries past their deadline in a list not sent: failed, unlinked. */
static int expire_unsent(pqpool_loop *l, pentry **head, pentry **tail, int64_t now,
                         bool queued)
{
	int n = 0;
	for (pentry **pe = head, *prev = NULL; *pe;) {
		pentry *e = *pe;
		int64_t d = e->deadline_ns;
		if (queued) {
			int64_t a = e->t0_ns +
			            (int64_t)l->pool->ctx.cfg.connection_timeout_ms * 1000000;
			if (a < d)
				d = a;
		}
		if (now < d) {
			prev = e;
			pe = &e->next;
			continue;
		}
		*pe = e->next;
		if (*tail == e)
			*tail = prev;
		n++;
		pqpool__count_failure(&l->pool->ctx.counters, PQPOOL_ETIMEDOUT, NULL);
		fail(l, e, PQPOOL_ETIMEDOUT,
		     queued ? "acquire: timed out after %lld ms waiting for a connection"
		            : "query: timed out after %lld ms before it was sent",
		     (long long)((now - e->t0_ns) / 1000000));
	}
	return n;
}

/* Looks at every deadline: callers past theirs are told at once (what was
 * sent is left to be read, and cancelled: what that aborts of others' is
 * sent again), groups held up past PQPOOL__PIPE_SPLIT_MS are cancelled (and
 * sent again, each alone), a connection deaf to a cancel is given up.
 * Sets l->next_ns to the earliest deadline still ahead. */
static void expire(pqpool_loop *l, int64_t now)
{
	int64_t next = INT64_MAX, grace = (int64_t)PQPOOL__CANCEL_GRACE_MS * 1000000;

	for (lconn *c = l->conns; c; c = c->next) {
		pqpool__pipe *pp = &c->s->pipe;
		int ahead = 0;
		if (c->lost)
			continue;
		if (c->cancel_ns && now - c->cancel_ns >= grace && pp->flight) {
			c->s->link.broken = true;
			conn_lost(l, c);
			continue;
		}
		if (c->cancel_ns && c->cancel_ns + grace < next)
			next = c->cancel_ns + grace;
		c->npend -= expire_unsent(l, &c->pend, &c->pend_tail, now, false);
		for (pentry *e = pp->flight; e; e = e->next) {
			if (!L(e)->done)
				continue;
			if (now < e->deadline_ns) {
				if (e->deadline_ns < next)
					next = e->deadline_ns;
				continue;
			}
			pqpool__count_failure(&l->pool->ctx.counters, PQPOOL_ETIMEDOUT, NULL);
			pqpool__fail(PQPOOL_ETIMEDOUT,
			             "query: timed out after %lld ms in a pipeline "
			             "(DB_QUERY_TIMEOUT)",
			             (long long)((now - e->t0_ns) / 1000000));
			/* told now; the entry stays until its results are read */
			tell(l, L(e), PQPOOL_ETIMEDOUT, NULL);
			e->cancelled = true;
			if (!pp->cancel_sent) {
				pp->cancel_sent = true;
				c->cancel_ns = now;
				pqpool__cancel_query(c->s, now + grace);
				if (now + grace < next)
					next = now + grace;
			}
		}
		/* the head group, of several statements, held up by one */
		for (pentry *e = pp->flight; e && !e->end_of_group; e = e->next)
			ahead++;
		if (ahead >= 1 && c->sent_ns && !pp->cancel_sent) {
			int64_t at = c->sent_ns + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000;
			if (now >= at) {
				pp->cancel_sent = true;
				c->cancel_ns = now;
				pqpool__cancel_query(c->s, now + grace);
				if (now + grace < next)
					next = now + grace;
			} else if (at < next) {
				next = at;
			}
		}
		if (c->pend && c->pend->deadline_ns < next)
			next = c->pend->deadline_ns;
	}
	expire_unsent(l, &l->queue, &l->queue_tail, now, true);
	for (pentry *e = l->later; e; e = e->next)
		if (L(e)->retry_at < next)
			next = L(e)->retry_at;
	if (l->queue) {
		int64_t a = l->queue->t0_ns +
		            (int64_t)l->pool->ctx.cfg.connection_timeout_ms * 1000000;
		if (a < next)
			next = a;
	}
	l->next_ns = next;
}

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
	bool contended = atomic_load_explicit(&l->pool->contend, memory_order_relaxed) != 0;
	int64_t now_ms = pqc_now_coarse_ms();

	for (lconn *c = l->conns, *n; c; c = n) {
		n = c->next;
		if (!c->lost && !c->closing && c->s->link.expires_ms &&
		    now_ms >= c->s->link.expires_ms)
			c->closing = true; /* past its lifetime: drained, then replaced */
		if (c->lost) {
			conn_lost(l, c);
			conn_release(l, c);
		} else if (idle && conn_load(c) == 0 && !c->flushing &&
		           (c->alone || c->closing || contended || l->outstanding == 0 ||
		            l->queue)) {
			conn_release(l, c);
		}
	}
}

static void send_pass(pqpool_loop *l)
{
	for (lconn *c = l->conns; c; c = c->next)
		if (c->dirty && !c->lost)
			conn_send(c);
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
		expire(l, now);
	if (l->later)
		later_due(l, now);
	release_pass(l, false);
	drain_queue(l);
	send_pass(l);
	release_pass(l, true);
	if (l->queue) { /* what was released may take it */
		drain_queue(l);
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
		due_at(l, l->queue->t0_ns +
		                  (int64_t)l->pool->ctx.cfg.connection_timeout_ms * 1000000);
		if (!l->nconns) {
			/* the pool had nothing to give and nothing here frees one:
			 * look again soon (1, 2, 4 ... 16 ms) */
			l->retry_ms = l->retry_ms ? (l->retry_ms < 16 ? l->retry_ms * 2 : 16)
			                          : 1;
			due_at(l, now + l->retry_ms * 1000000);
		}
	}
	if (l->next_ns != INT64_MAX && (l->outstanding || l->queue || l->nconns)) {
		arm(l, l->next_ns);
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
	if (atomic_load_explicit(&pool->contend, memory_order_acquire) & PQPOOL__CLOSED_BIT)
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
	size_t sl = strlen(sql) + 1, total = sizeof(lentry) + (size_t)nparams * sizeof(char *);
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

int pqpool_submit(pqpool_loop *l, const char *sql, int nparams, const char *const *params,
                  unsigned flags, pqpool_done_fn done, void *arg)
{
	struct pqpool *p;
	lentry *e;

	if (!l || !sql || !done || nparams < 0 || nparams > 65535 ||
	    (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL,
		                    "submit: NULL loop, SQL, callback or parameters, or more "
		                    "than 65535 parameters");
	p = l->pool;
	if (l->freeing ||
	    (atomic_load_explicit(&p->contend, memory_order_acquire) & PQPOOL__CLOSED_BIT))
		return pqpool__fail(PQPOOL_ECLOSED, "submit: the pool or the loop is closing");
	if (!(e = entry_new(sql, nparams, params)))
		return pqpool__fail(PQPOOL_ENOMEM, "submit: out of memory");
	e->done = done;
	e->arg = arg;
	e->flags = flags;
	e->attempts = 1;
	e->alone = !p->ctx.cfg.pipeline || (flags & PQPOOL_NO_PIPELINE) ||
	           !pqpool__pipelinable(sql);
	e->e.t0_ns = pqc_now_ns();
	e->e.deadline_ns = deadline_of(p, e->e.t0_ns);
	l->outstanding++;
	due_at(l, e->e.deadline_ns);
	if (l->queue || !place(l, &e->e))
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
			arm(l, l->next_ns);
	}
	pqpool__ok();
	return PQPOOL_OK;
}

void pqpool_loop_ready(pqpool_loop *l, void *token, unsigned ready)
{
	lconn *c = token;
	if (!l || !c)
		return;
	enter(l);
	if (!c->lost && (ready & PQPOOL_EV_WRITE) && c->flushing) {
		int f = PQflush(c->s->link.pg);
		if (f < 0)
			c->lost = true;
		c->flushing = f == 1;
		if (!c->lost && !c->flushing && !c->dirty)
			watch(c, PQPOOL_EV_READ);
	}
	if (!c->lost && (ready & PQPOOL_EV_READ))
		conn_read(l, c);
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
		complete(l, e, PQPOOL_ECLOSED, NULL);
		e = n;
	}
}

static void loop_destroy(pqpool_loop *l)
{
	l->depth = 1; /* callbacks from here on submit nothing (freeing) */
	while (l->conns) {
		lconn *c = l->conns;
		pqpool__pipe *pp = &c->s->pipe;
		pentry *flight = pp->flight;
		if (flight)
			c->lost = true; /* results nobody will read: closed */
		pp->flight = pp->flight_tail = pp->cur = NULL;
		c->nflight = 0;
		fail_list(l, flight, "loop freed while the statement was in flight; it may "
		                     "have run");
		fail_list(l, c->pend, "loop freed before the statement was sent");
		c->pend = NULL;
		c->npend = 0;
		conn_release(l, c);
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
