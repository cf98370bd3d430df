/* loop_int.h — what the parts of the asynchronous API share: a submitted
 * statement (lentry), a connection the loop holds (lconn), the loop itself,
 * and the functions of loop_entry.c (a statement's end: callback, failure,
 * retry), loop_watch.c (the adapter, cancel requests), loop_open.c
 * (connections taken and given back), loop_conn.c (choosing a connection,
 * the wire) and loop_time.c (deadlines), each calling only those listed
 * before it. loop.c has the
 * rounds and the API. */
#ifndef PQPOOL_LOOP_INT_H
#define PQPOOL_LOOP_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "pipe_int.h"
#include "pqpool.h"
#include "slot.h"

/* A submitted statement: a pipeline entry, its callback, its own copy of
 * the SQL and parameters behind it. */
typedef struct lentry {
	pentry e; /* first: an lentry is a pentry */
	pqpool_done_fn done;
	void *arg;
	bool alone;       /* on a connection of its own */
	bool health;      /* a health check's: sent again at once, up to
	                   * PQPOOL__HEALTH_TRIES, only after its connection was
	                   * lost (health.c's rule) */
	int64_t fresh_ms; /* its last try: on a connection opened after this
	                   * (coarse ms) when one can be had now; 0 any */
	bool retried;     /* sent again once after a stale plan */
	unsigned flags;   /* pqpool_submit's */
	int attempts;     /* sent this many times after failures (1: once) */
	int64_t retry_at; /* on the loop's later list: sent again from then */
	char *params_buf[];
} lentry;

#define L(pe) ((lentry *)(void *)(pe))

/* What a token the adapter gives back stands for: its first byte. */
enum { PQPOOL__LTAG_CONN = 0, PQPOOL__LTAG_CANCEL = 1 };

/* A cancel request the loop sends for a connection's running statement,
 * step by step from its own watch (cancel.h). */
typedef struct lcancel {
	unsigned char tag;     /* PQPOOL__LTAG_CANCEL: first */
	pqpool__canceller *cc; /* taken from the slot while one is out */
	int fd;                /* a dup of the request's socket; -1 none */
	unsigned watching;
	void *handle;     /* the adapter's */
	int64_t until_ns; /* given up then */
} lcancel;

/* A connection the loop holds: a leased slot in pipeline mode. Its flight
 * and reading state live in the slot's pipe (unused while leased here); the
 * statements not sent yet, here. */
typedef struct lconn {
	unsigned char tag; /* PQPOOL__LTAG_CONN: first */
	struct lconn *next;
	pqpool_loop *loop;
	pqpool__slot *s;
	void *handle;      /* the adapter's */
	int fd;            /* ours: a dup of libpq's socket, which libpq may
	                    * close on a failure while the adapter watches it */
	unsigned watching; /* PQPOOL_EV_* asked of the adapter */
	pentry *pend, *pend_tail;
	int npend, nflight;
	bool alone;        /* holds one statement that may not be shared */
	bool read;         /* taken for reads (PQPOOL_READ), with several hosts */
	bool lost;         /* failed: released (closed) at the end of the round */
	bool settled;      /* and what it held moved on or failed */
	bool closing;      /* takes no more: released once drained */
	bool dirty;        /* has statements to send this round */
	bool opening;      /* connecting (opg): its statements wait in pend */
	PGconn *opg;       /* the connection being opened into s (OPENING) */
	int64_t open_ns;   /* when the open began */
	int64_t open_ms;   /* the same, coarse (compared with created_ms) */
	bool flushing;     /* libpq holds output the socket did not take */
	int64_t sent_ns;   /* when the oldest group in flight went out; 0 none */
	int stmt_us;       /* the last group's time per statement; 0 unknown */
	int64_t cancel_ns; /* when a cancel request went out; 0 none */
	lcancel cx;        /* the request itself, while it is out */
} lconn;

struct pqpool_loop {
	struct pqpool *pool;
	pqpool_adapter ad;
	lconn *conns;
	int nconns;
	pentry *queue, *queue_tail; /* waiting for room on a connection */
	pentry *later, *later_tail; /* retries waiting out their backoff */
	int outstanding;
	int depth;              /* nesting of our entry points (callbacks submit) */
	bool freeing;           /* pqpool_loop_free from a callback */
	bool acquire_failed;    /* this round: the pool had nothing to give */
	int64_t timer_ns;       /* when the armed timer fires; 0: not armed */
	int64_t next_ns;        /* no deadline is due before this */
	int64_t retry_ms;       /* backoff while the pool has no connection */
	int open_fails;         /* opens failed in a row */
	int64_t open_hold_ns;   /* after one failed: no other begins before this */
	struct lhealth *health; /* the health check in flight, to share */
};

static inline int conn_load(const lconn *c)
{
	return c->npend + c->nflight;
}

/* No deadline of the loop is due before t. */
static inline void due_at(pqpool_loop *l, int64_t t)
{
	if (t < l->next_ns)
		l->next_ns = t;
}

/* ---- loop.c ---- */

/* pqpool_submit's work, its arguments checked: deadline_ns 0 for
 * query_timeout_ms from now; health, a health check's statement. */
int pqpool__loop_submit(pqpool_loop *l, const char *sql, int nparams,
                        const char *const *params, unsigned flags, int64_t deadline_ns,
                        bool health, pqpool_done_fn done, void *arg);

/* ---- loop_entry.c: a statement's end ---- */

/* Calls e's callback, once; the thread's error describes a failure, and is
 * kept for the next callback whatever this one does. */
void pqpool__loop_tell(pqpool_loop *l, lentry *e, int status, const PGresult *res);

/* Calls e's callback with status (the thread's error describing a
 * failure), then frees e. */
void pqpool__loop_complete(pqpool_loop *l, pentry *pe, int status, PGresult *res);

/* Fails e with status and a message of its own. */
void pqpool__loop_fail(pqpool_loop *l, pentry *e, int status, const char *fmt,
                       long long a);

/* A statement that failed with status (the thread's error describing it)
 * in a way worth trying again goes on the later list for its backoff, as
 * pqpool_query's retry loop would: true. Any statement after a failed
 * connect (nothing was sent), a PQPOOL_IDEMPOTENT one after a lost
 * connection or a retryable SQLSTATE; within retry_attempts,
 * DB_RETRY_DEADLINE and its own deadline. A health check's follows its
 * own rule (lentry.health). */
bool pqpool__loop_retry_later(pqpool_loop *l, pentry *pe, int status, int64_t now);

/* Retries whose backoff is over go to the front of the queue (they were
 * submitted before what waits there); the next of the others is due. */
void pqpool__loop_later_due(pqpool_loop *l, int64_t now);

/* ---- loop_watch.c: the adapter, and cancel requests ---- */

/* Asks the adapter to watch c's descriptor for events (0: stop); a
 * connection that cannot be watched is given up. */
void pqpool__loop_watch(lconn *c, unsigned events);

/* Arms the adapter's timer for at_ns (monotonic) unless it fires by then. */
void pqpool__loop_arm(pqpool_loop *l, int64_t at_ns);

/* Sends a cancel request for what runs on c without blocking (one at a
 * time: none while one is out), given up at until_ns. */
void pqpool__loop_cancel(pqpool_loop *l, lconn *c, int64_t until_ns);
/* The cancel request's socket is ready: its next step. */
void pqpool__loop_cancel_step(lconn *c);
/* Ends c's cancel request (done, failed: why logged, or given up). */
void pqpool__loop_cancel_end(lconn *c, const char *why);

/* ---- loop_open.c: taking and giving back connections ---- */

/* Takes a connection from the pool into the loop: an idle one, or a slot
 * to open one into without blocking (its statements wait until it is
 * open); while the loop pauses its opens, an idle one only. NULL when the
 * pool has none to give now (l->acquire_failed), with the error set. With
 * fresh_ms (coarse ms), one opened after then (pqpool__acquire_or_claim);
 * NULL then without l->acquire_failed during the pause, as only opening
 * one would do. */
lconn *pqpool__loop_take(pqpool_loop *l, bool alone, bool read, int64_t fresh_ms);

/* An opening c's socket is ready: the connect's next step. */
void pqpool__loop_open_step(pqpool_loop *l, lconn *c);

/* An opening c failed (why: libpq's reason, or that it timed out): its
 * slot is emptied, its statements (none was sent) fail with
 * PQPOOL_ECONNECT or wait their backoff, and the loop opens no other
 * connection for a while. c is released at the end of the round. */
void pqpool__loop_open_failed(pqpool_loop *l, lconn *c, const char *why);

/* Gives a connection back: closed when it failed or still has statements
 * in flight, else out of pipeline mode (the release rolls back or closes a
 * connection left in a transaction). */
void pqpool__loop_conn_release(pqpool_loop *l, lconn *c);

/* ---- loop_conn.c: choosing a connection, and the wire ---- */

/* Finds e a connection: false when none has room and the pool has none to
 * give now (e stays where it was). A statement fills a connection up to
 * the pipeline depth before another connection is taken: deeper pipelines
 * cost the server fewer wake-ups per statement. */
bool pqpool__loop_place(pqpool_loop *l, pentry *e);
/* Whether c takes a statement of this kind (PQPOOL_READ or not). */
bool pqpool__loop_conn_fits(const pqpool_loop *l, const lconn *c, bool read);

/* What waits in the loop's queue goes out, in order, while there is room. */
void pqpool__loop_drain_queue(pqpool_loop *l);

/* Sends what waits on c: each run of statements under one Sync, a
 * statement sent again under one of its own; then flushes what the socket
 * takes. */
void pqpool__loop_conn_send(lconn *c);

/* c's connection failed: what was sent gets the failure (it may have run),
 * what was not goes to the front of the loop's queue. */
void pqpool__loop_conn_lost(pqpool_loop *l, lconn *c);

/* Reads what has arrived on c and delivers each group read to its Sync. */
void pqpool__loop_conn_read(pqpool_loop *l, lconn *c);

/* ---- loop_time.c: deadlines ---- */

/* The deadline of a statement submitted at t0: DB_QUERY_TIMEOUT after it. */
int64_t pqpool__loop_deadline_of(const struct pqpool *p, int64_t t0);

/* Looks at every deadline: callers past theirs are told at once (what was
 * sent is left to be read, and cancelled: what that aborts of others' is
 * sent again), groups held up past PQPOOL__PIPE_SPLIT_MS are cancelled (and
 * sent again, each alone), a connection deaf to a cancel is given up.
 * Sets l->next_ns to the earliest deadline still ahead. */
void pqpool__loop_expire(pqpool_loop *l, int64_t now);

#endif
