/* pipe_io.c — the wire of a pipeline: a batch written in one go with a
 * Sync per group, and the results read back, group by group. Only the
 * caller holding the reader's role runs this; no lock. */
#include "pipe_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "exec.h"
#include "fdwait.h"
#include "stats.h"
#include "stmtcache.h"

bool pqpool__pipe_send_one(pqpool__slot *s, pentry *e)
{
	PGconn *pg = s->link.pg;
	const pqpool__qreq *q = &e->req;
	char name[PQPOOL__STMT_NAMELEN];
	int found = PQPOOL__STMT_UNNAMED;

	e->nres = 1;
	e->prepared = e->prep_ok = e->failed = e->end_of_group = false;
	e->last = NULL;
	e->sent = true;
	if (s->ctx->cfg.prepare) {
		found = pqpool__stmt_find(&s->link.stmts, q->sql, name);
		if (found < 0)
			found = PQPOOL__STMT_UNNAMED; /* out of memory: unnamed works */
	}
	if (found == PQPOOL__STMT_PREPARE) {
		if (pqpool__stmt_add(s->link.stmts, q->sql) != PQPOOL_OK) {
			found = PQPOOL__STMT_UNNAMED;
		} else {
			if (!PQsendPrepare(pg, name, q->sql, q->nparams, NULL))
				return false;
			e->prepared = true;
			e->nres = 2;
			found = PQPOOL__STMT_CACHED;
		}
	}
	if (found == PQPOOL__STMT_CACHED)
		return PQsendQueryPrepared(pg, name, q->nparams, q->params, NULL, NULL,
		                           0);
	return PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
}

bool pqpool__pipe_send_sync(PGconn *pg)
{
#ifdef LIBPQ_HAS_SEND_PIPELINE_SYNC
	return PQsendPipelineSync(pg) == 1; /* libpq 17+: no flush of its own */
#else
	return PQpipelineSync(pg) == 1;
#endif
}

/* Sends the batch in flight: each run of statements under one Sync, a
 * statement to be sent alone under one of its own; then flushes it all,
 * reading meanwhile so that neither side can block the other. */
bool pqpool__pipe_send(pqpool__slot *s, int64_t deadline_ns)
{
	PGconn *pg = s->link.pg;
	int64_t now = pqc_now_ns(), now_ms = pqc_now_coarse_ms();
	int f, depth = 0;

	for (pentry *e = s->pipe.flight; e; e = e->next) {
		depth++;
		if (!e->counted) {
			/* a share of the connection is an acquire; its wait, the
			 * time until its batch went out */
			e->counted = true;
			pqpool__qstats_lease(&s->q, now_ms);
			pqpool__qstats_wait(&s->q, now - e->t0_ns);
		}
		if (!pqpool__pipe_send_one(s, e))
			return false;
		if (e->solo || !e->next || e->next->solo) {
			e->end_of_group = true;
			pqpool__qstats_depth(&s->q, depth);
			if (!pqpool__pipe_send_sync(pg))
				return false;
		}
	}
	while ((f = PQflush(pg)) == 1) {
		int w = pqc_wait_fd(PQsocket(pg), POLLOUT | POLLIN, deadline_ns);
		if (w <= 0 || !PQconsumeInput(pg))
			return false;
	}
	return f == 0;
}

/* ---- reading ---- */

/* One result (or the NULL that ends a result set) of the reading in
 * order: TAKE_MORE, TAKE_GROUP when it was the Sync of cur's group, or
 * TAKE_LOST when it is not what was sent. Consumes r. */
int pqpool__pipe_take(pqpool__pipe *pp, PGresult *r)
{
	pentry *c = pp->cur;

	if (pp->awaiting_sync) {
		ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		PQclear(r);
		if (st != PGRES_PIPELINE_SYNC)
			return TAKE_LOST; /* not the protocol we sent */
		pp->awaiting_sync = false;
		return TAKE_GROUP;
	}
	if (!c) {
		PQclear(r);
		return TAKE_LOST;
	}
	if (!r) { /* the end of one of c's result sets */
		if (--c->nres > 0)
			return TAKE_MORE;
		if (c->end_of_group)
			pp->awaiting_sync = true;
		else
			pp->cur = c->next;
		return TAKE_MORE;
	}
	switch (PQresultStatus(r)) {
	case PGRES_PIPELINE_ABORTED: /* skipped: an earlier one failed */
		PQclear(r);
		break;
	case PGRES_FATAL_ERROR:
		c->failed = true;
		pqpool__keep_result(&c->last, r);
		break;
	case PGRES_COMMAND_OK:
		if (c->nres == 2) { /* the Prepare's */
			c->prep_ok = true;
			PQclear(r);
			break;
		}
		pqpool__keep_result(&c->last, r);
		break;
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
	case PGRES_PIPELINE_SYNC:
		PQclear(r);
		return TAKE_LOST;
	default:
		pqpool__keep_result(&c->last, r);
	}
	return TAKE_MORE;
}

/* Reads results until the group at the head of the flight is complete (its
 * Sync read), the deadline passes or the connection fails. The reader's
 * alone: no lock. */
int pqpool__pipe_read(pqpool__slot *s, int64_t deadline_ns)
{
	PGconn *pg = s->link.pg;
	bool tls = PQsslInUse(pg);

	for (;;) {
		int t;
		while (PQisBusy(pg)) {
			int w;
			if (tls) { /* TLS may hold bytes the socket no longer shows */
				if (!PQconsumeInput(pg))
					return READ_LOST;
				if (!PQisBusy(pg))
					break;
			}
			w = pqc_wait_fd(PQsocket(pg), POLLIN, deadline_ns);
			if (w == 0)
				return READ_DEADLINE;
			if (w < 0 || !PQconsumeInput(pg))
				return READ_LOST;
		}
		t = pqpool__pipe_take(&s->pipe, PQgetResult(pg));
		if (t == TAKE_GROUP)
			return READ_GROUP;
		if (t == TAKE_LOST)
			return READ_LOST;
	}
}
