/* pipe_group.c — delivering a pipeline's results: a group's outcome once
 * its Sync is read, re-sending what a failed group rolled back, the
 * connection's loss, and passing the reader's role on. Under the pipe's
 * lock. */
#include "pipe_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "exec.h"
#include "stmtcache.h"

/* Records e's outcome from status and this thread's last error. */
void pqpool__pipe_set_outcome(pentry *e, int status)
{
	e->status = status;
	snprintf(e->msg, sizeof e->msg, "%s", status == PQPOOL_OK ? "" : pqpool_errmsg());
	snprintf(e->sqlstate, sizeof e->sqlstate, "%s",
	         status == PQPOOL_OK ? "" : pqpool_errcode());
}

/* e leaves the pipeline's lists (delivered, moved, freed). */
void pqpool__pipe_leave(pqpool__pipe *pp)
{
	atomic_fetch_sub_explicit(&pp->load, 1, memory_order_relaxed);
}

/* An entry its caller left behind, once nothing more of it will come. */
void pqpool__pipe_free_entry(pqpool__pipe *pp, pentry *e)
{
	PQclear(e->last);
	PQclear(e->res);
	free(e);
	pqpool__pipe_leave(pp);
}

/* A Prepare the server did not carry out (it failed, or the group was
 * aborted before it): the statement is not there to execute. */
void pqpool__pipe_forget_unprepared(pqpool__slot *s, const pentry *e)
{
	if (e->prepared && !e->prep_ok)
		pqpool__stmt_forget(s->link.stmts, e->req.sql);
}

/* A statement whose plan the server no longer honours (a table changed
 * under it, or it was deallocated): run unpipelined, where it is prepared
 * again. */
bool pqpool__pipe_stale(const pentry *e)
{
	const char *code = PQresultErrorField(e->last, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorMessage(e->last);
	if (!code)
		return false;
	return strcmp(code, "26000") == 0 ||
	       (strcmp(code, "0A000") == 0 && msg &&
	        strstr(msg, "cached plan must not change result type") != NULL);
}

static void deliver(pqpool__slot *s, pentry *e, wakelist *w, pentry *me)
{
	int st = pqpool__result_status(s, e->last, e->cancelled ? e->t0_ns : 0, &e->res,
	                               "query");
	e->last = NULL; /* consumed */
	pqpool__note_query(s, e->t0_ns, st);
	pqpool__pipe_set_outcome(e, st);
	pqpool__pipe_leave(&s->pipe);
	wake_add(w, e, R_DONE, me);
}

/* Takes the group at the head of the flight (read to its Sync) out of it:
 * its first statement, *failed the first that failed of its own (NULL when
 * none did), *again_failed when that failure was our cancel request
 * hitting a statement it was not meant for. */
pentry *pqpool__pipe_detach_group(pqpool__slot *s, pentry **failed, bool *again_failed)
{
	pqpool__pipe *pp = &s->pipe;
	pentry *g = pp->flight, *end = g;
	const char *code;
	int64_t ahead_done = pp->done_ns,
	        sent = atomic_load_explicit(&pp->sent_ns, memory_order_relaxed);
	int n = 0;

	while (!end->end_of_group)
		end = end->next;
	pp->flight = end->next;
	if (!pp->flight)
		pp->flight_tail = NULL;
	pp->cur = pp->flight;
	end->next = NULL;
	*failed = NULL;
	pp->done_ns = pqc_now_ns();
	for (pentry *e = g; e; e = e->next) {
		n++;
		if (e->failed && !*failed)
			*failed = e;
		/* what ran ahead of it on this connection since it joined (0:
		 * it ran alone, not shared) */
		if (e->join_ns)
			pqpool__qstats_hol(&s->q, ahead_done - e->join_ns, 1);
	}
	if (sent) /* how quick its statements are, for pipe.c's fill() */
		atomic_store_explicit(&pp->stmt_us,
		                      (int)((pp->done_ns - sent) / 1000 / n) + 1,
		                      memory_order_relaxed);
	/* Our cancel request hits whatever runs when it arrives: a statement
	 * it was not meant for is sent again, like the rest of its group. */
	code = *failed ? PQresultErrorField((*failed)->last, PG_DIAG_SQLSTATE) : NULL;
	*again_failed = *failed && pp->cancel_sent && !(*failed)->cancelled && code &&
	                strcmp(code, "57014") == 0;
	return g;
}

void pqpool__pipe_fail_open_tx(pqpool__slot *s, pentry *e)
{
	PQclear(e->last);
	e->last = NULL;
	pqpool__fail(PQPOOL_EQUERY,
	             "query: a pipelined statement left a transaction open; "
	             "connection closed (send it with PQPOOL_NO_PIPELINE)");
	pqpool__note_query(s, e->t0_ns, PQPOOL_EQUERY);
}

/* The group at the head of the flight was read to its Sync. */
void pqpool__pipe_complete(pqpool__slot *s, wakelist *w, pentry *me)
{
	pqpool__pipe *pp = &s->pipe;
	pentry *failed, *again = NULL, *again_tail = NULL;
	PGTransactionStatusType tx = PQtransactionStatus(s->link.pg);
	bool open_tx = tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR, again_failed;
	pentry *g = pqpool__pipe_detach_group(s, &failed, &again_failed);

	if (open_tx) {
		/* the group left a transaction open: nothing of it committed, and
		 * the connection is not fit to share; it is closed */
		s->link.broken = true;
		pp->closing = true;
	}
	while (g) {
		pentry *e = g;
		g = g->next;
		pqpool__pipe_forget_unprepared(s, e);
		if (e->abandoned) {
			pqpool__pipe_free_entry(pp, e);
			continue;
		}
		if (open_tx) {
			pqpool__pipe_fail_open_tx(s, e);
			pqpool__pipe_set_outcome(e, PQPOOL_EQUERY);
			pqpool__pipe_leave(pp);
			wake_add(w, e, R_DONE, me);
		} else if (!failed || (e == failed && !again_failed)) {
			if (e->failed && pqpool__pipe_stale(e)) {
				pqpool__stmt_forget(s->link.stmts, e->req.sql);
				PQclear(e->last);
				e->last = NULL;
				e->sent = false; /* it did not run */
				pqpool__pipe_leave(pp);
				wake_add(w, e, R_ALONE, me);
				continue;
			}
			deliver(s, e, w, me);
		} else {
			/* rolled back or skipped with the group: again, alone */
			PQclear(e->last);
			e->last = NULL;
			e->solo = true;
			push_back(&again, &again_tail, e);
		}
	}
	if (again) { /* ahead of those that joined since */
		again_tail->next = pp->pend;
		if (!pp->pend)
			pp->pend_tail = again_tail;
		pp->pend = again;
	}
	if (!pp->flight) {
		pp->cancel_sent = false;
		atomic_store_explicit(&pp->sent_ns, 0, memory_order_relaxed);
	}
}

/* The connection failed: what was sent gets the failure, what was not
 * moves to another connection. */
void pqpool__pipe_lost(pqpool__slot *s, wakelist *w, pentry *me)
{
	pqpool__pipe *pp = &s->pipe;
	int st = pqpool__conn_lost(s, "query", NULL);

	pp->closing = true;
	for (pentry *e = pp->flight, *n; e; e = n) {
		n = e->next;
		if (e->abandoned) {
			pqpool__pipe_free_entry(pp, e);
			continue;
		}
		PQclear(e->last);
		e->last = NULL;
		pqpool__note_query(s, e->t0_ns, st);
		pqpool__pipe_set_outcome(e, st);
		pqpool__pipe_leave(pp);
		wake_add(w, e, R_DONE, me);
	}
	pp->flight = pp->flight_tail = pp->cur = NULL;
	pp->awaiting_sync = false;
	for (pentry *e = pp->pend, *n; e; e = n) {
		n = e->next;
		e->next = NULL;
		pqpool__pipe_leave(pp);
		wake_add(w, e, R_MOVE, me); /* a solo one stays solo */
	}
	pp->pend = pp->pend_tail = NULL;
	pp->cancel_sent = false;
	atomic_store_explicit(&pp->sent_ns, 0, memory_order_relaxed);
}

bool pqpool__pipe_in_list(const pentry *head, const pentry *e)
{
	for (; head; head = head->next)
		if (head == e)
			return true;
	return false;
}

static pentry *first_live(pentry *e)
{
	for (; e; e = e->next)
		if (!e->abandoned && e->role == R_WAIT)
			return e;
	return NULL;
}

void pqpool__pipe_unlink_pend(pqpool__pipe *pp, pentry *e)
{
	pentry **pe = &pp->pend, *prev = NULL;
	while (*pe != e) {
		prev = *pe;
		pe = &(*pe)->next;
	}
	*pe = e->next;
	if (pp->pend_tail == e)
		pp->pend_tail = prev;
	e->next = NULL;
}

/* Under the lock, for a statement in flight whose caller gives up: asks the
 * server to cancel what runs, once per batch. Whatever it aborts is sent
 * again (complete_group), except the statements given up. The lock is
 * held throughout, so the connection is still this pipeline's. */
void pqpool__pipe_cancel_batch(pqpool__slot *s)
{
	if (s->pipe.cancel_sent)
		return;
	s->pipe.cancel_sent = true;
	pqpool__cancel_query(s,
	                     pqc_now_ns() + (int64_t)PQPOOL__CANCEL_GRACE_MS * 1000000);
}

void pqpool__pipe_cancel_for(pqpool__slot *s, pentry *e)
{
	e->cancelled = true;
	pqpool__pipe_cancel_batch(s);
}

/* Under the lock, by the reader whose own statement is settled: hands the
 * role to a caller still waiting, or ends the pipeline when none is left.
 * True when the pipeline ended: the caller then gives the slot back. */
bool pqpool__pipe_hand_off(pqpool__slot *s, wakelist *w, pentry *me)
{
	pqpool__pipe *pp = &s->pipe;
	pentry *n = first_live(pp->flight);

	if (!n)
		n = first_live(pp->pend);
	if (n) {
		wake_add(w, n, R_READER, me);
		return false;
	}
	/* nobody waits: what is still in flight was given up by its callers */
	if (pp->flight) {
		s->link.broken = true; /* results nobody will read: close it */
		for (pentry *e = pp->flight, *nx; e; e = nx) {
			nx = e->next;
			pqpool__pipe_free_entry(pp, e);
		}
		pp->flight = pp->flight_tail = pp->cur = NULL;
	}
	pp->active = pp->awaiting_sync = false;
	atomic_store_explicit(&pp->open, false, memory_order_relaxed);
	atomic_store_explicit(&pp->sent_ns, 0, memory_order_relaxed);
	return true;
}
