/* loop_entry.c — the end of a submitted statement: its callback, called
 * once; its failure; and, for a PQPOOL_IDEMPOTENT one, a retry after a
 * backoff on the loop's later list. */
#include "loop_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "clock.h"
#include "error.h"
#include "exec.h"
#include "health.h"
#include "lease.h"
#include "log.h"
#include "pipe.h"
#include "pipe_int.h"
#include "pool.h"
#include "rand.h"
#include "role.h"
#include "stats.h"
#include "stmtcache.h"

/* ---- callbacks ---- */

/* Calls e's callback, once; the thread's error describes a failure, and is
 * kept for the next callback whatever this one does. */
void pqpool__loop_tell(pqpool_loop *l, lentry *e, int status, const PGresult *res)
{
	pqpool__saved_error err;
	pqpool_done_fn done = e->done;
	e->done = NULL;
	l->outstanding--;
	pqpool__error_save(&err);
	done(e->arg, status, status == PQPOOL_OK ? res : NULL);
	pqpool__error_restore(&err);
}

/* Calls e's callback with status (the thread's error describing a
 * failure), then frees e. */
void pqpool__loop_complete(pqpool_loop *l, pentry *pe, int status, PGresult *res)
{
	lentry *e = L(pe);
	if (e->done)
		pqpool__loop_tell(l, e, status, res);
	PQclear(res);
	PQclear(pe->last);
	free(e);
}

/* Fails e with status and a message of its own. */
void pqpool__loop_fail(pqpool_loop *l, pentry *e, int status, const char *fmt,
                       long long a)
{
	pqpool__fail(status, fmt, a);
	pqpool__loop_complete(l, e, status, NULL);
}

/* A statement that failed with status (the thread's error describing it)
 * in a way worth trying again goes on the later list for its backoff, as
 * pqpool_query's retry loop would: true. Any statement after a failed
 * connect (nothing was sent), a PQPOOL_IDEMPOTENT one after a lost
 * connection or a retryable SQLSTATE; within retry_attempts,
 * DB_RETRY_DEADLINE and its own deadline. A health check's follows its
 * own rule (lentry.health), its last try on a fresh connection
 * (lentry.fresh_ms). */
bool pqpool__loop_retry_later(pqpool_loop *l, pentry *pe, int status, int64_t now)
{
	lentry *e = L(pe);
	const pqpool_config *cfg = &l->pool->ctx.cfg;
	int delay;
	int64_t at;

	if (!e->done)
		return false;
	if (e->health) {
		/* a connection the server closed moments ago: another at once, as
		 * the blocking probe does; its verdict is final otherwise */
		if (status != PQPOOL_ECONNLOST || e->attempts >= PQPOOL__HEALTH_TRIES ||
		    now >= pe->deadline_ns)
			return false;
		delay = 0;
		/* the last try: not on a connection opened with those lost */
		if (e->attempts == PQPOOL__HEALTH_TRIES - 1)
			e->fresh_ms = pqc_now_coarse_ms();
	} else {
		if (e->attempts >= cfg->retry_attempts)
			return false;
		/* a failed connect sent nothing: any statement may go again */
		if (status != PQPOOL_ECONNECT &&
		    !pqpool__retry_refused(&l->pool->ctx, pqpool_errcode()) &&
		    !((e->flags & PQPOOL_IDEMPOTENT) &&
		      (status == PQPOOL_ECONNLOST ||
		       pqpool_sqlstate_retryable(pqpool_errcode()))))
			return false;
		delay = pqpool_backoff_ms(e->attempts, cfg->retry_base_delay_ms,
		                          cfg->retry_max_delay_ms, pqc_rand64());
	}
	at = now + (int64_t)delay * 1000000;
	if (!e->health && (at >= pe->t0_ns + (int64_t)cfg->retry_deadline_ms * 1000000 ||
	                   at >= pe->deadline_ns))
		return false;
	if (!e->health)
		pqpool__log(&l->pool->ctx.log, PQPOOL_LOG_WARN,
		            "database query attempt %d failed, retrying in %d ms: %s",
		            e->attempts, delay, pqpool_errmsg());
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
void pqpool__loop_later_due(pqpool_loop *l, int64_t now)
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
