/* pipe_int.h — what the parts of the pipelining share: an entry (one
 * statement in a pipeline), the wake-ups collected under the lock, and the
 * functions of pipe_io.c (the wire) and pipe_group.c (delivery). */
#ifndef PQPOOL_PIPE_INT_H
#define PQPOOL_PIPE_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "event.h"
#include "slot.h"

enum pqpool__pipe_role {
	R_WAIT,   /* in a pipeline, its result not delivered */
	R_DONE,   /* its outcome is in status/msg/res */
	R_READER, /* it holds the reader's role now */
	R_MOVE,   /* taken out before it was sent: join another pipeline */
	R_ALONE,  /* taken out unsent: run it unpipelined */
	R_GAVE_UP /* its caller's deadline passed (the error is set) */
};

/* One statement in a pipeline. Allocated, because a caller that gives up
 * leaves it behind for the reader to free once its results are read. */
typedef struct pqpool__pentry {
	struct pqpool__pentry *next;
	pqpool__qreq req;
	int64_t t0_ns, deadline_ns;
	int64_t join_ns; /* when it joined a shared connection (head-of-line
	                  * wait); 0 when it runs alone */
	int role;        /* under the pipe's lock */
	bool abandoned;  /* under the lock: its caller gave up */
	pqc_event ev;    /* set once role leaves R_WAIT */
	/* the reader's, while in flight */
	PGresult *last;
	int nres;          /* result sets still to come (2 after a Prepare) */
	bool prepared;     /* a Prepare was sent for it */
	bool prep_ok;      /* and the server prepared it */
	bool failed;       /* an error result of its own */
	bool solo;         /* to be sent in a group of its own */
	bool end_of_group; /* a Sync follows it */
	bool cancelled;    /* a cancel request was sent for it */
	bool counted;      /* its share of the connection counted as an acquire */
	/* the outcome, once R_DONE */
	int status;
	bool sent; /* it reached the server (its outcome may be unknown) */
	char sqlstate[6];
	char msg[PQPOOL__ERRLEN];
	PGresult *res;
} pentry;

typedef struct wakelist {
	pentry *e[8];
	int n;
} wakelist;

/* Wakes what was collected under the lock, after it is dropped. A full
 * list is flushed by its owner first (see wake_add). */
static inline void wake_all(wakelist *w)
{
	for (int i = 0; i < w->n; i++)
		pqc_event_set(&w->e[i]->ev);
	w->n = 0;
}

/* Under the lock: e leaves R_WAIT for role; woken once the lock is dropped
 * (or at once, under the lock, when the list is full: a futex wake under a
 * short lock is cheaper than unbounded storage). */
static inline void wake_add(wakelist *w, pentry *e, int role, pentry *me)
{
	e->role = role;
	if (e == me)
		return;
	if (w->n == (int)(sizeof w->e / sizeof w->e[0]))
		wake_all(w);
	w->e[w->n++] = e;
}

static inline void push_back(pentry **head, pentry **tail, pentry *e)
{
	e->next = NULL;
	if (*tail)
		(*tail)->next = e;
	else
		*head = e;
	*tail = e;
}

enum { READ_GROUP, READ_DEADLINE, READ_LOST };
enum { TAKE_MORE, TAKE_GROUP, TAKE_LOST };

/* ---- pipe_io.c: the wire; the reader's alone, no lock ---- */

/* Sends the batch in flight: each run of statements under one Sync, a
 * statement to be sent alone under one of its own; then flushes it all,
 * reading meanwhile so that neither side can block the other. */
bool pqpool__pipe_send(pqpool__slot *s, int64_t deadline_ns);

/* Sends e's statement (with a Prepare first when it is new on the
 * connection: e->nres 2); no Sync, no flush. False when libpq refuses. */
bool pqpool__pipe_send_one(pqpool__slot *s, pentry *e);
/* Marks the end of a group; no flush of its own on libpq 17+. */
bool pqpool__pipe_send_sync(PGconn *pg);

/* One result (or the NULL that ends a result set) read in order, for
 * pp->cur: TAKE_MORE, TAKE_GROUP when it was the Sync of cur's group, or
 * TAKE_LOST when it is not what was sent. Consumes r. */
int pqpool__pipe_take(pqpool__pipe *pp, PGresult *r);

/* Reads results until the group at the head of the flight is complete (its
 * Sync read): READ_GROUP, or READ_DEADLINE, or READ_LOST. */
int pqpool__pipe_read(pqpool__slot *s, int64_t deadline_ns);

/* ---- pipe_group.c: delivery, under the pipe's lock ---- */

/* e leaves the pipeline's lists (delivered, moved, freed). */
void pqpool__pipe_leave(pqpool__pipe *pp);
/* Frees an entry its caller left behind. */
void pqpool__pipe_free_entry(pqpool__pipe *pp, pentry *e);
/* Records e's outcome from status and this thread's last error. */
void pqpool__pipe_set_outcome(pentry *e, int status);
/* Takes the group at the head of the flight (read to its Sync) out of it:
 * its first statement, *failed the first that failed of its own (NULL when
 * none did), *again_failed when that failure was our cancel request
 * hitting a statement it was not meant for (to be sent again). Counts
 * each statement's head-of-line wait. */
pentry *pqpool__pipe_detach_group(pqpool__slot *s, pentry **failed, bool *again_failed);
/* e's group left a transaction open: nothing of it committed; e fails
 * with PQPOOL_EQUERY (the error set, the query counted). */
void pqpool__pipe_fail_open_tx(pqpool__slot *s, pentry *e);
/* A Prepare the server did not carry out is forgotten. */
void pqpool__pipe_forget_unprepared(pqpool__slot *s, const pentry *e);
/* e failed on a plan the server no longer honours (26000, or a cached
 * plan whose result type changed): prepare it again. */
bool pqpool__pipe_stale(const pentry *e);
/* The group at the head of the flight was read to its Sync: delivers it,
 * or re-queues what a failure in it rolled back. */
void pqpool__pipe_complete(pqpool__slot *s, wakelist *w, pentry *me);
/* The connection failed: what was sent gets the failure, what was not
 * moves to another connection. */
void pqpool__pipe_lost(pqpool__slot *s, wakelist *w, pentry *me);
bool pqpool__pipe_in_list(const pentry *head, const pentry *e);
void pqpool__pipe_unlink_pend(pqpool__pipe *pp, pentry *e);
/* For a statement in flight whose caller gives up: a cancel request, once
 * per batch (what it aborts of others' is sent again). */
void pqpool__pipe_cancel_for(pqpool__slot *s, pentry *e);
/* The same without a statement to blame (a group split): the lock is held
 * throughout, so the connection is still this pipeline's. */
void pqpool__pipe_cancel_batch(pqpool__slot *s);
/* By the reader whose statement is settled: hands the role on, or ends the
 * pipeline (true: give the slot back once the lock is dropped). */
bool pqpool__pipe_hand_off(pqpool__slot *s, wakelist *w, pentry *me);

#endif
