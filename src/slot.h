/* slot.h — a slot of the pool: its state, its parts (the server link, the
 * lease, the query in flight, its figures), and the state machine that moves
 * it between callers. */
#ifndef PQPOOL_SLOT_H
#define PQPOOL_SLOT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancel.h"
#include "conninfo.h"
#include "log.h"
#include "stats.h"
#include "stmtcache.h"

#define PQPOOL__CACHELINE 64

/* Where a slot's state lives: slot->state, an atomic. Transitions:
 *   EMPTY -> OPENING        under pool->mu (claims capacity)
 *   OPENING -> BUSY         by the opener, once connected
 *   BUSY -> OPENING         by the holder, to replace a dead connection
 *   OPENING|BUSY -> EMPTY   under pool->mu, after the connection is closed
 *   IDLE -> BUSY            compare-and-swap by anyone, lock or not: an
 *                           acquirer, a waiter's granter, the janitor, close
 *   BUSY -> IDLE            store by the holder
 * Whoever moved a slot to OPENING or BUSY owns it until it moves it on.
 * pool->nopen counts slots not EMPTY and changes only under pool->mu. */
enum {
	PQPOOL__SLOT_EMPTY = 0,
	PQPOOL__SLOT_OPENING = 1,
	PQPOOL__SLOT_IDLE = 2,
	PQPOOL__SLOT_BUSY = 3
};

/* What every part below the pool may use of it: its settings, read-only
 * after open; the parameters every connect uses; the log; the counters.
 * The pool embeds one and each slot points to it, so that a connection or a
 * statement never needs the pool itself. */
typedef struct pqpool__ctx {
	pqpool_config cfg; /* the pool's copy; health_query owned by the pool, the
	                    * conninfo strings cleared (params replaces them) */
	pqpool__params params;
	pqpool__logger log;
	pqpool__counters counters;
	/* connections created at or before this (coarse ms) are retired: their
	 * server stopped taking writes (role.c) */
	_Atomic int64_t retire_before_ms;
	/* A member of a pool of several hosts (router.c): one host, whose role
	 * as its connections last showed it (PQPOOL__ROLE_*, role.h), and its
	 * ban after failed connects. */
	bool member;
	_Atomic int role;
	_Atomic int fails;               /* connects failed in a row */
	_Atomic int64_t banned_until_ms; /* coarse ms; 0: not banned */
	_Atomic int64_t lag_us;          /* a standby's replay lag; -1 unknown */
} pqpool__ctx;

/* A statement to send: its text and text parameters, borrowed. */
typedef struct pqpool__qreq {
	const char *sql;
	int nparams;
	const char *const *params;
} pqpool__qreq;

/* The slot's connection to the server and what is kept with it. */
typedef struct pqpool__link {
	PGconn *pg;
	/* taken (exchanged for NULL) by whoever sends a cancel, and put back;
	 * see pqpool__take_canceller() */
	_Atomic(pqpool__canceller *) cancel;
	int fd_dup;           /* our own descriptor of its socket, so that close can shut
	                       * it down without touching the PGconn; -1 if none */
	pqpool__stmts *stmts; /* statements prepared on it */
	int64_t created_ms;   /* coarse monotonic */
	int64_t checked_ms;   /* last liveness check that passed */
	int64_t expires_ms;   /* lifetime end, with jitter; 0 = never */
	_Atomic int64_t released_ms; /* last release */
	bool broken;                 /* saw it break: close it on release */
} pqpool__link;

/* The lease (the public pqpool_conn): who holds the slot, since when. */
struct pqpool_conn {
	const char *_Atomic file; /* where it was taken */
	_Atomic int line;
	_Atomic int64_t acquired_ms; /* coarse monotonic; 0 while not leased */
	_Atomic bool warned;         /* lease_warn_ms logged for this lease */
	int last_status;             /* of the last failed call on it */
	char last_sqlstate[6];
	int64_t deadline_cap_ns; /* pqpool_run's overall deadline; 0 none */
};

/* A query sent without blocking (the public pqpool_inflight): what was sent
 * (borrowed from the caller until finished), when, its deadline. */
struct pqpool_inflight {
	pqpool__qreq req;
	int64_t t0_ns, deadline_ns;
	PGresult *last;
	bool done, preparing;
};

/* A health probe in flight (the public pqpool_probe): such a query, judged
 * as a probe when finished. */
struct pqpool_probe {
	struct pqpool_inflight q;
};

/* The slot as a pipeline (pipe.c): one-shot queries of several callers
 * sharing its connection's round trips. The entries are pipe.c's. */
struct pqpool__pentry;
typedef struct pqpool__pipe {
	pthread_mutex_t mu;
	struct pqpool__pentry *pend, *pend_tail;     /* joined, not sent yet */
	struct pqpool__pentry *flight, *flight_tail; /* sent, in order */
	struct pqpool__pentry *cur; /* the entry whose results come next */
	bool active;                /* the slot is a pipeline (it holds the lease) */
	bool closing;       /* takes no more entries: it drains, then is released */
	bool awaiting_sync; /* cur's group is read: its Sync comes next */
	bool cancel_sent;   /* a cancel request went out for the batch in flight */
	int64_t done_ns;    /* when the last group was read to its Sync */
	/* for joiners' scan without the lock */
	_Atomic bool open;       /* active and not closing */
	_Atomic int load;        /* entries joined and not yet freed */
	_Atomic int64_t sent_ns; /* when the batch in flight was sent; 0: none */
	_Atomic int stmt_us;     /* the last group's round trip per statement */
} pqpool__pipe;

typedef struct pqpool__slot {
	_Atomic int state;
	int index;
	pqpool__ctx *ctx;
	struct pqpool__slot *next; /* on a to-close list, while owned */
	pqpool__link link;
	struct pqpool_conn lease;
	union {
		struct pqpool_inflight query;
		struct pqpool_probe probe;
	} async;
	pqpool__qstats q;
	pqpool__pipe pipe;
} __attribute__((aligned(PQPOOL__CACHELINE))) pqpool__slot;

#define PQPOOL__SLOT_OF(ptr, member)                                                     \
	((pqpool__slot *)(void *)((char *)(ptr)-offsetof(pqpool__slot, member)))

static inline pqpool__slot *pqpool__slot_of_lease(pqpool_conn *c)
{
	return PQPOOL__SLOT_OF(c, lease);
}

static inline pqpool__slot *pqpool__slot_of_query(pqpool_inflight *q)
{
	return PQPOOL__SLOT_OF(q, async);
}

static inline pqpool__slot *pqpool__slot_of_probe(pqpool_probe *pr)
{
	return PQPOOL__SLOT_OF(pr, async);
}

/* Takes the slot's canceller for one request (NULL: none, or another thread
 * has it), to give back after; a pool's closer takes them for good. */
static inline pqpool__canceller *pqpool__take_canceller(pqpool__slot *s)
{
	return atomic_exchange(&s->link.cancel, NULL);
}

static inline void pqpool__give_canceller(pqpool__slot *s, pqpool__canceller *c)
{
	atomic_store(&s->link.cancel, c);
}

/* Whether s's connection was opened after ms (coarse ms; one opened in
 * that same millisecond counts as before). */
static inline bool pqpool__opened_after(const pqpool__slot *s, int64_t ms)
{
	return s->link.created_ms > ms;
}

/* ---- slot.c: the state machine, over the slots of a pool ---- */

struct pqpool;
struct pqpool__waiter;

/* Takes an idle slot (IDLE -> BUSY): the one this thread released last if
 * use_hint, else the lowest-numbered, which keeps the work on few
 * connections so that the others go idle and are reaped. */
pqpool__slot *pqpool__take_idle(struct pqpool *p, bool use_hint);

/* This thread released s: try it first next time. */
void pqpool__remember(struct pqpool *p, const pqpool__slot *s);

/* Claims free capacity (EMPTY -> OPENING) under p->mu, or NULL: at
 * pool_max, or while a recent failed open holds the pool at its size. */
pqpool__slot *pqpool__claim_empty_locked(struct pqpool *p);

/* Work decided under p->mu and done after it: waiters to wake, slots to
 * close (no I/O and no futex call under the lock). */
typedef struct pqpool__pending {
	struct pqpool__waiter *wake;
	pqpool__slot *close;
} pqpool__pending;

/* Dequeues the oldest waiter and grants it kind (enum pqpool__grant) with
 * slot s (or none). Under p->mu. */
void pqpool__grant_locked(struct pqpool *p, pqpool__pending *pd, int kind,
                          pqpool__slot *s);

/* Serves waiters, oldest first, from idle connections or free capacity;
 * once closed, wakes them all (closed) and collects the idle connections
 * for closing. Under p->mu. */
void pqpool__dispatch_locked(struct pqpool *p, pqpool__pending *pd);

/* Runs what dispatch decided: a granted waiter's own continuation when it
 * has one and the connection is fit, else its wake-up; closes what was
 * collected, which may free the pool. */
void pqpool__finish_pending(struct pqpool *p, pqpool__pending *pd);

/* Why an owned slot cannot be handed out as it is (a pqpool_close_reason:
 * past its lifetime, or found dead by the cheap check), or -1 when it can. */
int pqpool__unfit(struct pqpool *p, pqpool__slot *s, int64_t now_ms);

/* Closes an owned slot's connection and counts why; the slot stays owned. */
void pqpool__detach(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why);
/* Closes an owned slot for good (-> EMPTY). May free the pool. */
void pqpool__close_slot(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why);
/* Closes each slot of a to-close list. May free the pool. */
void pqpool__close_list(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why);

/* Makes an owned slot available: to the oldest waiter if any, else IDLE.
 * The caller gives the slot up: when the pool is closing it is closed
 * instead, which may free the pool. */
void pqpool__publish(struct pqpool *p, pqpool__slot *s);

/* How pqpool__open_into opens. */
enum {
	PQPOOL__OPEN_LEASE = 1, /* for the caller (BUSY), not published */
	/* when writers need a primary and none answers (between a primary's
	 * loss and a promotion), try again with a growing pause until the
	 * deadline instead of failing at once: for callers that may block */
	PQPOOL__OPEN_PATIENT = 2
};

/* Opens connections into owned OPENING slots; those that open become BUSY
 * (PQPOOL__OPEN_LEASE) or are published, the others are emptied.
 * Returns how many opened, or -1 out of memory (all emptied). The caller
 * must be pinned: emptying may otherwise free the pool. */
int pqpool__open_into(struct pqpool *p, pqpool__slot **slots, int n, unsigned how,
                      int64_t deadline_ns, char *err, size_t errlen);

/* An open the caller drove itself (pqpool__connect_start/_step, from an
 * event loop) into an owned OPENING slot, begun at t0_ns: pg the open
 * connection, or NULL when it failed. Counted and told as
 * pqpool__open_into does: s is BUSY with pg attached, or emptied. The
 * caller must be pinned. */
void pqpool__open_settle(struct pqpool *p, pqpool__slot *s, PGconn *pg, int64_t t0_ns);

/* Empties an owned OPENING slot whose open was given up (no connect is
 * counted). The caller must be pinned. */
void pqpool__open_abandon(struct pqpool *p, pqpool__slot *s);

/* A snapshot of the slots: counts and the recent window, and with full the
 * lifetime figures and the counters. No lock; the caller keeps p alive. */
void pqpool__snapshot(struct pqpool *p, pqpool_stats *st, bool full);

#endif
