/* pipe.c — automatic pipelining of one-shot statements.
 *
 * A slot becomes a pipeline when a caller takes it for a pipelinable
 * statement; callers that find no free connection join the least loaded
 * pipeline with room. Statements that joined while a batch is in flight go
 * out together, in one write, with one Sync, as soon as that batch is read.
 *
 * No thread of our own and no leader: the role of reader (the one caller
 * that sends the next batch and reads the socket) belongs to a caller whose
 * statement is in the pipeline, and passes to another such caller when its
 * own result is in or its deadline passes. Everyone else sleeps on its own
 * event until its result is delivered.
 *
 * A group (the statements under one Sync) commits or rolls back as one: a
 * result is delivered only once the group's Sync is read; when a statement
 * fails, its caller gets its own error and every other statement of the
 * group (rolled back, or skipped by the server) is sent again in a group of
 * its own, so it can only succeed or fail by itself.
 */
#include "pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "event.h"
#include "exec.h"
#include "lease.h"
#include "pipe_int.h"
#include "pipe_join.h"
#include "pool.h"
#include "role.h"

/* The pool wants the slot back (callers wait for a whole connection, the
 * pool closes, the connection is past its lifetime): take no more. */
static void maybe_close(struct pqpool *p, pqpool__slot *s)
{
	pqpool__pipe *pp = &s->pipe;
	if (pp->closing)
		return;
	if (atomic_load_explicit(&p->contend, memory_order_relaxed) != 0 ||
	    (s->link.expires_ms && pqc_now_coarse_ms() >= s->link.expires_ms) ||
	    pqpool__retired(s))
		pp->closing = true;
}

/* ---- the reader's role ---- */

/* Gives back a slot whose pipeline ended. */
static void end_pipeline(pqpool__slot *s)
{
	PGconn *pg = s->link.pg;
	if (!s->link.broken &&
	    (PQexitPipelineMode(pg) != 1 || PQsetnonblocking(pg, 0) != 0))
		s->link.broken = true;
	pqpool__release(s, false);
}

/* The reader's deadline passed. Under the lock; may drop it (to send a
 * cancel). Returns the deadline to read on to, or 0 when the reader is out:
 * its role R_DONE (outcome set) or R_GAVE_UP (the error set; with
 * *left_behind its entry is now the pipeline's). */
static int64_t reader_deadline(pqpool__slot *s, pentry *me, wakelist *w,
                               bool *left_behind)
{
	pqpool__pipe *pp = &s->pipe;
	long long waited_ms = (long long)((pqc_now_ns() - me->t0_ns) / 1000000);
	bool others = false, flying = pqpool__pipe_in_list(pp->flight, me);

	for (pentry *e = pp->flight; e; e = e->next)
		if (e != me && !e->abandoned)
			others = true;
	if (flying && !others && !me->cancelled) {
		/* a cancel can only hurt statements nobody waits for: as an
		 * unpipelined statement, it gets a grace to answer */
		int64_t d = pqc_now_ns() + (int64_t)PQPOOL__CANCEL_GRACE_MS * 1000000;
		me->cancelled = true;
		pp->cancel_sent = true;
		pthread_mutex_unlock(&pp->mu);
		pqpool__cancel_query(s, d);
		pthread_mutex_lock(&pp->mu);
		return d;
	}
	if (flying && !others) {
		/* no answer to the cancel either: the connection is given up,
		 * with what nobody waits for; the unsent ones move on */
		for (pentry *e = pp->flight, *n; e; e = n) {
			n = e->next;
			if (e != me)
				pqpool__pipe_free_entry(pp, e);
		}
		PQclear(me->last);
		me->last = NULL;
		pqpool__pipe_leave(pp);
		pp->flight = pp->flight_tail = pp->cur = NULL;
		pp->awaiting_sync = false;
		pqpool__pipe_lost(s, w, me);
		pqpool__fail(PQPOOL_ETIMEDOUT,
		             "query: timed out after %lld ms, no answer to the cancel "
		             "request; connection closed",
		             waited_ms);
		pqpool__note_query(s, me->t0_ns, PQPOOL_ETIMEDOUT);
		pqpool__pipe_set_outcome(me, PQPOOL_ETIMEDOUT);
		me->role = R_DONE;
		return 0;
	}
	/* others wait on this batch: the statement is left to whoever reads
	 * next, and cancelled (what that aborts of theirs is sent again) */
	if (flying) {
		me->abandoned = true;
		*left_behind = true;
		pqpool__pipe_cancel_for(s, me);
	} else {
		pqpool__pipe_unlink_pend(pp, me);
		pqpool__pipe_leave(pp);
	}
	pqpool__count_failure(&s->ctx->counters, PQPOOL_ETIMEDOUT, NULL);
	pqpool__fail(PQPOOL_ETIMEDOUT,
	             "query: timed out after %lld ms in a pipeline (DB_QUERY_TIMEOUT)",
	             waited_ms);
	me->role = R_GAVE_UP;
	return 0;
}

/* The next batch: everything that joined, up to the first statement to be
 * sent alone again; such a statement goes out in a batch of its own, so
 * that if it is the slow one of a failed group, those behind it can move to
 * another connection instead of waiting for it (see await). */
static void take_batch(pqpool__pipe *pp)
{
	pentry *last = pp->pend;
	if (!last->solo)
		while (last->next && !last->next->solo)
			last = last->next;
	pp->flight = pp->pend;
	pp->flight_tail = last;
	pp->pend = last->next;
	if (!pp->pend)
		pp->pend_tail = NULL;
	last->next = NULL;
}

/* Until when to read before splitting the group at the head of the flight:
 * a group of several statements that has run PQPOOL__PIPE_SPLIT_MS holds up
 * all of them behind the slowest. deadline when it is not to be split. */
static int64_t split_at(pqpool__pipe *pp, int64_t deadline)
{
	int64_t sent = atomic_load_explicit(&pp->sent_ns, memory_order_relaxed), at;
	int n = 0;
	if (pp->cancel_sent || !sent)
		return deadline;
	for (pentry *e = pp->flight; e; e = e->next) {
		n++;
		if (e->end_of_group)
			break;
	}
	at = sent + (int64_t)PQPOOL__PIPE_SPLIT_MS * 1000000;
	return n >= 2 && at < deadline ? at : deadline;
}

/*
 * Holds the reader's role until the caller's own statement is settled:
 * sends each batch, reads each group, delivers, re-queues. Called and
 * returns with the pipe's lock held. *left_behind: the caller's entry is
 * now the pipeline's to free. True when the pipeline ended and the slot
 * must be given back (after the lock is dropped).
 */
static bool drive(struct pqpool *p, pqpool__slot *s, pentry *me, bool *left_behind,
                  int *role)
{
	pqpool__pipe *pp = &s->pipe;
	int64_t deadline = me->deadline_ns;
	wakelist w = {.n = 0};

	for (;;) {
		int64_t until;
		int r;
		if (me->role != R_WAIT && me->role != R_READER) {
			/* read before the hand-off: an entry left behind may be
			 * freed by the next reader as soon as the lock drops */
			bool ended;
			*role = me->role;
			ended = pqpool__pipe_hand_off(s, &w, me);
			pthread_mutex_unlock(&pp->mu);
			wake_all(&w);
			pthread_mutex_lock(&pp->mu);
			return ended;
		}
		me->role = R_READER;
		if (!pp->flight) {
			take_batch(pp);
			pp->cur = pp->flight;
			pp->awaiting_sync = false;
			atomic_store_explicit(&pp->sent_ns, pqc_now_ns(),
			                      memory_order_relaxed);
			atomic_store_explicit(&s->lease.acquired_ms, pqc_now_coarse_ms(),
			                      memory_order_relaxed);
			pthread_mutex_unlock(&pp->mu);
			r = pqpool__pipe_send(s, deadline) ? READ_GROUP : READ_LOST;
			pthread_mutex_lock(&pp->mu);
			if (r == READ_LOST)
				pqpool__pipe_lost(s, &w, me);
			continue;
		}
		until = split_at(pp, deadline);
		pthread_mutex_unlock(&pp->mu);
		wake_all(&w);
		r = pqpool__pipe_read(s, until);
		pthread_mutex_lock(&pp->mu);
		if (r == READ_DEADLINE && until < deadline) {
			/* a group held up past PQPOOL__PIPE_SPLIT_MS: cancel what
			 * runs; the group is then sent again, each alone */
			pqpool__pipe_cancel_batch(s);
			continue;
		}
		if (r == READ_GROUP) {
			pqpool__pipe_complete(s, &w, me);
			maybe_close(p, s);
		} else if (r == READ_LOST) {
			pqpool__pipe_lost(s, &w, me);
		} else if ((deadline = reader_deadline(s, me, &w, left_behind)) == 0) {
			deadline = me->deadline_ns;
		}
	}
}

/* Puts e in a pipeline. *s its slot; *reader when the caller drives it. */
static int enter(struct pqpool *p, pentry *e, int64_t acquire_deadline,
                 pqpool__slot **out, bool *reader)
{
	pqpool__slot *s = NULL;
	int st = PQPOOL_EAGAIN;

	*reader = false;
	if ((*out = pqpool__pipe_fill(p, e)) != NULL)
		return PQPOOL_OK;
	for (;;) {
		if (atomic_load_explicit(&p->contend, memory_order_acquire) == 0) {
			st = pqpool__acquire_unqueued(p, acquire_deadline, &s, __FILE__,
			                              __LINE__);
			if (st == PQPOOL_EAGAIN && (*out = pqpool__pipe_join(p, e)) != NULL)
				return PQPOOL_OK;
		}
		if (st == PQPOOL_EAGAIN) /* others queue, or nothing to join */
			st = pqpool__acquire_until(p, acquire_deadline, &s, __FILE__,
			                           __LINE__);
		if (st != PQPOOL_OK)
			return st;
		if (pqpool__pipe_start(s, e)) {
			*out = s;
			*reader = true;
			return PQPOOL_OK;
		}
		st = PQPOOL_EAGAIN; /* that connection would not pipeline */
	}
}

/* Sleeps until e's role changes or its deadline passes. Returns e's role,
 * or R_GAVE_UP with the error set (*left_behind when e is now the
 * pipeline's: it was sent, and its results are still to be read). */
static int await(pqpool__slot *s, pentry *e, bool *left_behind)
{
	pqpool__pipe *pp = &s->pipe;
	int64_t hol = (int64_t)PQPOOL__PIPE_HOL_MS * 1000000;
	long long waited_ms;

	for (;;) {
		/* not sent yet, behind a batch that is taking long: look every
		 * HOL interval whether to go elsewhere */
		int64_t until = pqc_now_ns() + hol;
		if (until > e->deadline_ns)
			until = e->deadline_ns;
		if (pqc_event_wait(&e->ev, until))
			return e->role;
		pthread_mutex_lock(&pp->mu);
		if (e->role != R_WAIT) {
			pthread_mutex_unlock(&pp->mu);
			/* decided as we looked: its setter wakes us next */
			pqc_event_wait(&e->ev, INT64_MAX);
			return e->role;
		}
		if (pqc_now_ns() < e->deadline_ns) {
			int64_t sent =
			        atomic_load_explicit(&pp->sent_ns, memory_order_relaxed);
			if (pqpool__pipe_in_list(pp->pend, e) && sent &&
			    pqc_now_ns() - sent > hol) {
				pqpool__pipe_unlink_pend(pp, e);
				pqpool__pipe_leave(pp);
				pthread_mutex_unlock(&pp->mu);
				return R_MOVE;
			}
			pthread_mutex_unlock(&pp->mu);
			continue;
		}
		break;
	}
	/* the deadline passed, under the lock */
	if (pqpool__pipe_in_list(pp->pend, e)) {
		pqpool__pipe_unlink_pend(pp, e);
		pqpool__pipe_leave(pp);
	} else {
		e->abandoned = true;
		*left_behind = true;
		pqpool__pipe_cancel_for(s, e);
	}
	pthread_mutex_unlock(&pp->mu);
	waited_ms = (long long)((pqc_now_ns() - e->t0_ns) / 1000000);
	pqpool__count_failure(&s->ctx->counters, PQPOOL_ETIMEDOUT, NULL);
	return pqpool__fail(
	               PQPOOL_ETIMEDOUT,
	               "query: timed out after %lld ms in a pipeline (DB_QUERY_TIMEOUT)",
	               waited_ms),
	       R_GAVE_UP;
}

int pqpool__pipe_query(struct pqpool *p, const pqpool__qreq *q,
                       int64_t acquire_deadline_ns, int64_t deadline_ns, PGresult **res,
                       int *outcome)
{
	pentry *e = calloc(1, sizeof *e);
	bool left_behind = false;
	int st, role;

	*outcome = PQPOOL__PIPE_UNSENT;
	if (!e)
		return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
	e->req = *q;
	e->t0_ns = pqc_now_ns();
	e->deadline_ns = deadline_ns;
	for (;;) {
		pqpool__slot *s;
		bool reader, ended = false;

		if ((st = enter(p, e, acquire_deadline_ns, &s, &reader)) != PQPOOL_OK) {
			free(e);
			return st;
		}
		role = reader ? R_READER : await(s, e, &left_behind);
		if (role == R_READER) {
			pthread_mutex_lock(&s->pipe.mu);
			ended = drive(p, s, e, &left_behind, &role);
			pthread_mutex_unlock(&s->pipe.mu);
			if (ended)
				end_pipeline(s);
		}
		if (role != R_MOVE)
			break;
	}
	if (role == R_GAVE_UP) { /* the error is set */
		*outcome =
		        left_behind || e->sent ? PQPOOL__PIPE_SENT : PQPOOL__PIPE_UNSENT;
		if (!left_behind)
			free(e);
		return PQPOOL_ETIMEDOUT;
	}
	if (role == R_ALONE) {
		*outcome = PQPOOL__PIPE_ALONE;
		free(e);
		pqpool__ok();
		return PQPOOL_OK;
	}
	/* R_DONE: e's outcome is set */
	st = e->status;
	if (st == PQPOOL_OK) {
		*outcome = PQPOOL__PIPE_DONE;
		if (res)
			*res = e->res;
		else
			PQclear(e->res);
		e->res = NULL;
		pqpool__ok();
	} else {
		*outcome = e->sent ? PQPOOL__PIPE_SENT : PQPOOL__PIPE_UNSENT;
		pqpool__fail_code(st, e->sqlstate, "%s", e->msg);
	}
	free(e);
	return st;
}
