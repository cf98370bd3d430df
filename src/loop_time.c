/* loop_time.c — the loop's deadlines, looked at from one timer: callers
 * past theirs told at once (and their statements cancelled), groups held
 * up split, a connection deaf to a cancel given up. */
#include "loop_int.h"

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

/* ---- deadlines ---- */

int64_t pqpool__loop_deadline_of(const struct pqpool *p, int64_t t0)
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
			int64_t a =
			        e->t0_ns +
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
		pqpool__loop_fail(
		        l, e, PQPOOL_ETIMEDOUT,
		        queued ? "acquire: timed out after %lld ms waiting for a "
		                 "connection"
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
void pqpool__loop_expire(pqpool_loop *l, int64_t now)
{
	int64_t next = INT64_MAX, grace = (int64_t)PQPOOL__CANCEL_GRACE_MS * 1000000;

	for (lconn *c = l->conns; c; c = c->next) {
		pqpool__pipe *pp;
		int ahead = 0;
		if (c->lost) /* (a failed open has no slot left) */
			continue;
		if (c->opening) {
			int64_t at =
			        c->open_ns +
			        (int64_t)l->pool->ctx.cfg.connection_timeout_ms * 1000000;
			char why[64];
			if (now >= at) {
				snprintf(why, sizeof why, "timed out after %lld ms",
				         (long long)((now - c->open_ns) / 1000000));
				pqpool__loop_open_failed(l, c, why);
				continue;
			}
			if (at < next)
				next = at;
			/* its statements wait for a connection, as in the queue */
			c->npend -= expire_unsent(l, &c->pend, &c->pend_tail, now, true);
			for (pentry *e = c->pend; e; e = e->next)
				if (e->deadline_ns < next)
					next = e->deadline_ns;
			continue;
		}
		pp = &c->s->pipe;
		if (c->cancel_ns && now - c->cancel_ns >= grace && pp->flight) {
			c->s->link.broken = true;
			pqpool__loop_conn_lost(l, c);
			continue;
		}
		if (c->cancel_ns && c->cancel_ns + grace < next)
			next = c->cancel_ns + grace;
		if (c->cx.cc) { /* a cancel request still out */
			if (now >= c->cx.until_ns)
				pqpool__loop_cancel_end(
				        c, "cancel: timed out reaching the server");
			else if (c->cx.until_ns < next)
				next = c->cx.until_ns;
		}
		c->npend -= expire_unsent(l, &c->pend, &c->pend_tail, now, false);
		for (pentry *e = pp->flight; e; e = e->next) {
			if (!L(e)->done)
				continue;
			if (now < e->deadline_ns) {
				if (e->deadline_ns < next)
					next = e->deadline_ns;
				continue;
			}
			pqpool__count_failure(&l->pool->ctx.counters, PQPOOL_ETIMEDOUT,
			                      NULL);
			pqpool__fail(PQPOOL_ETIMEDOUT,
			             "query: timed out after %lld ms in a pipeline "
			             "(DB_QUERY_TIMEOUT)",
			             (long long)((now - e->t0_ns) / 1000000));
			/* told now; the entry stays until its results are read */
			pqpool__loop_tell(l, L(e), PQPOOL_ETIMEDOUT, NULL);
			e->cancelled = true;
			if (!pp->cancel_sent) {
				pp->cancel_sent = true;
				c->cancel_ns = now;
				pqpool__loop_cancel(l, c, now + grace);
				if (now + grace < next)
					next = now + grace;
			}
		}
		/* the head group, of several statements, held up by one */
		for (pentry *e = pp->flight; e && !e->end_of_group; e = e->next)
			ahead++;
		if (ahead >= 1 && c->sent_ns && !pp->cancel_sent) {
			int64_t at =
			        c->sent_ns + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000;
			if (now >= at) {
				pp->cancel_sent = true;
				c->cancel_ns = now;
				pqpool__loop_cancel(l, c, now + grace);
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
