/* internal.h — types and helpers shared by the library's files; not installed. */
#ifndef PQPOOL_INTERNAL_H
#define PQPOOL_INTERNAL_H

#include "pqpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>

#define PQPOOL__CACHELINE 64
#define PQPOOL__ERRLEN    512

/* ---- clock.c: monotonic and wall clocks ---- */
int64_t pqpool__now_ns(void);        /* CLOCK_MONOTONIC, ns */
int64_t pqpool__now_coarse_ms(void); /* CLOCK_MONOTONIC_COARSE, ms; cheap */
int64_t pqpool__wall_ms(void);       /* CLOCK_REALTIME, ms since epoch */
uint64_t pqpool__rand64(void);       /* per-thread xorshift, not crypto */
/* Formats wall ms as ISO 8601 UTC with milliseconds into out[64] ("...T14:00:00.000Z").
 */
void pqpool__iso8601(int64_t wall_ms, char out[64]);

/* ---- error.c: thread-local last error ---- */
/* Sets this thread's last error (printf-style) and returns status. The text
 * must already be free of secrets. */
int pqpool__fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with a SQLSTATE (may be NULL). */
int pqpool__fail_code(int status, const char *sqlstate, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void pqpool__ok(void); /* clears this thread's last error */
/* Copies a libpq message, trimmed of trailing newlines, into out. */
void pqpool__trim_msg(const char *msg, char *out, size_t outlen);

/* ---- config.c ---- */
/* The resolved connection parameters of a config: parallel NULL-terminated
 * keyword/value arrays for PQconnectStartParams (expand_dbname = 0), built
 * from conninfo plus the SSL overrides, statement_timeout (as
 * "options=-c statement_timeout=N") and a fallback application_name.
 * All owned by the struct. */
typedef struct pqpool__params {
	const char **keywords;
	const char **values;
	char *masked;   /* the URL with the password masked, for messages */
	void *storage_; /* backing allocation */
} pqpool__params;

int pqpool__params_build(const pqpool_config *cfg, pqpool__params *out, char *err,
                         size_t errlen);
void pqpool__params_free(pqpool__params *p);
/* Replaces any occurrence of the password of conninfo in msg by "****".
 * Used on messages from libpq that might echo part of the input. */
void pqpool__scrub(char *msg, const char *secret);

/* ---- event.c: a one-shot wake-up object for one waiter ---- */
typedef struct pqpool__event {
	_Atomic uint32_t word; /* 0 = not set, 1 = set */
} pqpool__event;
void pqpool__event_init(pqpool__event *ev);
/* Sets the event and wakes its waiter. The waiter may return and reuse the
 * memory as soon as the word is set; setting touches nothing else after. */
void pqpool__event_set(pqpool__event *ev);
/* Waits until set or until the monotonic deadline (ns). Returns 1 if set. */
int pqpool__event_wait(pqpool__event *ev, int64_t deadline_ns);

/* ---- cancel.c: cancel requests with a deadline ---- */
#include <sys/socket.h>
typedef struct pqpool__cancel_info {
	struct sockaddr_storage addr; /* the server's address */
	socklen_t addrlen;
	int pid, key; /* the backend's PID and secret key */
	bool valid;
} pqpool__cancel_info;
/* Reads what a cancel request for pg needs. False when unavailable. */
bool pqpool__cancel_info_of(PGconn *pg, pqpool__cancel_info *ci);
/* Sends a cancel request, connecting without blocking past deadline_ns.
 * Touches no PGconn: safe from any thread. 0 when sent, -1 with err. */
int pqpool__cancel_send(const pqpool__cancel_info *ci, int64_t deadline_ns, char *err,
                        size_t errlen);

/* ---- metrics: histograms and the recent window ---- */
/* Bucket index for a duration in ns (see pqpool_hist_bounds_ms). */
int pqpool__hist_bucket(int64_t ns);

#define PQPOOL__WIN_SLOTS  12 /* window buckets */
#define PQPOOL__WIN_SPAN_S 5  /* seconds per bucket: a 60 s window */

/* Per-slot query statistics, written only by the lease holder with relaxed
 * atomics and summed by pqpool_stats_get(): no shared cache line per query. */
typedef struct pqpool__qstats {
	/* acquires of this slot that had to queue or open, and their waits */
	_Atomic uint64_t slow_acquires;
	_Atomic uint64_t wait_sum_ns;
	_Atomic uint64_t wait_hist[PQPOOL_HIST_BUCKETS];
	_Atomic uint64_t queries;
	_Atomic uint64_t errors;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t hist[PQPOOL_HIST_BUCKETS];
	struct {
		_Atomic int64_t epoch; /* now_s / SPAN of this bucket */
		_Atomic uint64_t n, err, sum_ns;
	} win[PQPOOL__WIN_SLOTS];
} pqpool__qstats;

/* Statements prepared on one connection: an open-addressing table keyed by
 * the SQL text. Allocated on first use, freed with the connection. */
#define PQPOOL__STMT_SLOTS 256
#define PQPOOL__STMT_MAX   128
typedef struct pqpool__stmt {
	uint64_t hash;
	char *sql;   /* owned; NULL = free entry */
	unsigned id; /* the statement is named pqpool_<id> */
} pqpool__stmt;
typedef struct pqpool__stmts {
	int n;
	unsigned next_id;
	pqpool__stmt e[PQPOOL__STMT_SLOTS];
} pqpool__stmts;
void pqpool__stmts_free(pqpool__stmts *st);

/* Records one query outcome in a slot's statistics. */
void pqpool__qstats_add(pqpool__qstats *q, int64_t end_ns, int64_t dur_ns, bool error);

/* ---- the pool ---- */

/* Where a slot's state lives: slot->state, an atomic. Transitions:
 *   EMPTY -> OPENING        under pool->mu (claims capacity)
 *   OPENING -> BUSY         by the opener, once connected
 *   BUSY -> OPENING         by the holder, to replace a dead connection
 *   OPENING|BUSY -> EMPTY   under pool->mu, after the connection is closed
 *   IDLE -> BUSY            compare-and-swap by anyone, lock or not: an
 *                           acquirer, a waiter's granter, the reaper, close
 *   BUSY -> IDLE            store by the holder
 * Whoever moved a slot to OPENING or BUSY owns it until it moves it on.
 * pool->nopen counts slots not EMPTY and changes only under pool->mu. */
enum { SLOT_EMPTY = 0, SLOT_OPENING = 1, SLOT_IDLE = 2, SLOT_BUSY = 3 };

/* A statement to send: its text and text parameters, borrowed. A waiter of
 * pqpool_query carries one so that the releaser that grants it a connection
 * can send it at once: the waiter then sleeps once, until the answer,
 * instead of twice (for a connection, then for the answer). */
typedef struct pqpool__qreq {
	const char *sql;
	int nparams;
	const char *const *params;
} pqpool__qreq;

struct pqpool_conn {
	_Atomic int state;
	int index;
	struct pqpool *pool;
	PGconn *pg;
	pqpool__cancel_info ci;  /* to cancel its query from any thread */
	int fd_dup;              /* our own descriptor of its socket, so
	                          * that close can shut it down without
	                          * touching the PGconn; -1 if none */
	int64_t deadline_cap_ns; /* pqpool_run's overall deadline; 0 none */
	pqpool__stmts *stmts;    /* prepared statements of this connection */
	/* a non-blocking query in progress on this lease (async.c): what was
	 * sent (borrowed from the caller until finished), when, its deadline */
	pqpool__qreq aq;
	int64_t aq_t0_ns, aq_deadline_ns;
	PGresult *aq_last;
	bool aq_done, aq_preparing;
	struct pqpool_conn *next;     /* on a to-close list, while owned */
	int64_t created_ms;           /* coarse monotonic */
	int64_t checked_ms;           /* last liveness check that passed */
	int64_t expires_ms;           /* lifetime end, with jitter; 0 = never */
	_Atomic int64_t released_ms;  /* coarse monotonic, last release */
	_Atomic int64_t acquired_ms;  /* coarse monotonic, current lease */
	const char *_Atomic acq_file; /* where the current lease was taken */
	_Atomic int acq_line;
	_Atomic bool warned; /* lease_warn logged for this lease */
	bool broken;         /* saw the connection break: close it */
	int last_status;     /* of the last failed call on the lease */
	char last_sqlstate[6];
	_Atomic uint64_t acquires; /* leases of this slot, ever */
	pqpool__qstats q;
} __attribute__((aligned(PQPOOL__CACHELINE)));

enum grant_kind { GRANT_NONE = 0, GRANT_SLOT, GRANT_CAPACITY, GRANT_CLOSED, GRANT_SENT };

/* What such a waiter sleeps on (pool.c; one per thread, made on first
 * need): an epoll set with an eventfd in it; its granter arms the granted
 * connection's socket there, or writes the eventfd. */
typedef struct pqpool__tctx {
	int epfd, evfd;
} pqpool__tctx;

/* A caller waiting for a connection; lives on its stack, queued FIFO under
 * pool->mu. The granter dequeues it, fills kind/slot, then sets ev. */
typedef struct pqpool__waiter {
	struct pqpool__waiter *next;
	/* A queued waiter holds one of pool->users; its granter gives it up,
	 * since the waiter then owns a slot (or is told the pool closed). */
	_Atomic int kind; /* enum grant_kind */
	struct pqpool_conn *slot;
	pqpool__event ev; /* plain waiters sleep on this */
	/* query waiters: what to send, where they sleep, when it was sent */
	const pqpool__qreq *q;
	pqpool__tctx *ctx;
	_Atomic int signaled; /* the grant is complete */
	_Atomic int done;     /* its granter touches w no more */
	int64_t sent_ns;
} pqpool__waiter;

#define PQPOOL__CLOSED_BIT (1u << 30)

struct pqpool {
	/* read-mostly after open */
	pqpool_config cfg; /* copy; strings point into own storage */
	char *health_query;
	pqpool__params params;
	const char *secret;        /* the password, for scrubbing */
	struct pqpool_conn *slots; /* cfg.pool_max of them */
	int nslots;
	uint64_t id; /* unique per pool, for thread hints */
	int64_t started_wall_ms;
	int64_t started_mono_ms;

	/* Written rarely, read on every lease: waiters count + CLOSED_BIT.
	 * Non-zero sends acquire and release down the locked path. */
	_Atomic uint32_t contend __attribute__((aligned(PQPOOL__CACHELINE)));
	_Atomic int64_t next_upkeep_ms;
	/* When a connection was last found broken: connections older than that
	 * are checked before their next use, since whatever broke one (a server
	 * restart, a network cut) likely broke them all. */
	_Atomic int64_t broken_at_ms;
	/* After a connection failed to open, the pool does not grow past the
	 * connections it has until this time (coarse monotonic ms): callers
	 * wait for one of those instead of each asking the server for another,
	 * which a server at max_connections refuses at the cost of a process
	 * start each. See claim_empty_locked(). */
	_Atomic int64_t grow_hold_until_ms;

	pthread_mutex_t mu __attribute__((aligned(PQPOOL__CACHELINE)));
	pqpool__waiter *whead, *wtail; /* FIFO of waiters */
	int nwaiting;
	int nopen;              /* slots not EMPTY */
	bool closed;            /* under mu; mirrored in CLOSED_BIT */
	bool zombie;            /* close gave up; freed by the last one */
	bool freeing;           /* someone is freeing it */
	_Atomic int users;      /* threads inside calls that may block
	                         * without owning a slot (slow acquire,
	                         * health, run, query, maintain, stats) */
	pthread_cond_t drained; /* closed: a slot emptied, a user left */

	/* rare-path statistics */
	pthread_mutex_t stats_mu;
	_Atomic uint64_t acquire_timeouts, acquire_errors; /* no lock needed */
	uint64_t opened, connect_failures;
	uint64_t closed_by[PQPOOL_CLOSE_REASONS];
	uint64_t query_timeouts, rollbacks, retries, lease_warnings;
	pqpool_hist connect;
	char err_class[PQPOOL_ERROR_CLASSES][8];
	uint64_t err_count[PQPOOL_ERROR_CLASSES];

	/* health probe sharing */
	pthread_mutex_t health_mu;
	pthread_cond_t health_cv;
	bool health_running;
	uint64_t health_gen;
	pqpool_health health_last;
};

/* pool.c */
/* Keeps a pool allocated while the calling thread is inside a call that
 * does not own a slot the whole time (see "Lifetime" in pool.c). */
void pqpool__pin(struct pqpool *p);
void pqpool__unpin(struct pqpool *p);
void pqpool__log(struct pqpool *p, pqpool_log_level lvl, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* health.c: healthy, or degraded with the reason in why, for a probe that
 * succeeded. Pure. */
pqpool_health_status pqpool__judge_health(double response_ms, int slow_ms, int waiting,
                                          double error_rate, double window_s, char *why,
                                          size_t whylen);
/* stats.c */
/* Connection counts, waiters and the recent window only, without a lock;
 * the caller keeps p alive. */
void pqpool__stats_quick(struct pqpool *p, pqpool_stats *st);
void pqpool__count_error(struct pqpool *p, const char *sqlstate);
/* render.c */
void pqpool__hist_add(pqpool_hist *h, int64_t ns);

/* conn.c: opening connections */
/* Opens n connections in parallel, each within deadline_ns (monotonic).
 * out[i] is an open PGconn or NULL; err gets the first failure's message
 * (scrubbed). Returns how many opened. No locks held. */
int pqpool__connect_many(struct pqpool *p, int n, PGconn **out, int64_t deadline_ns,
                         char *err, size_t errlen);
/* Cheap liveness check of an idle connection: no round trip unless the
 * server sent something. Returns true when it looks usable. */
bool pqpool__conn_alive(PGconn *pg);
/* Waits for results of a sent command until deadline_ns; cancels past it.
 * Used by pqpool_exec and the release rollback. */
int pqpool__wait_result(struct pqpool_conn *c, int64_t deadline_ns, int grace_ms,
                        PGresult **res, const char *what);

/* exec.c: pqpool_exec with an explicit deadline (0 = query_timeout_ms) and
 * grace: how long a cancelled query gets to answer before the connection is
 * given up (0 = at once, for callers whose deadline is hard). */
#define PQPOOL__CANCEL_GRACE_MS 2000
int pqpool__exec(struct pqpool_conn *c, const char *sql, int nparams,
                 const char *const *params, PGresult **res, int64_t deadline_ns,
                 int grace_ms);

/* exec.c: pieces of a query's life, shared with the non-blocking probe */
int pqpool__conn_lost(struct pqpool_conn *c, const char *what, const char *sqlstate);
/* Keeps r or *last as PQexec would (the last result, an error first). */
void pqpool__keep_result(PGresult **last, PGresult *r);
/* The status of a finished command from its kept result (consumed; on
 * success handed to *res when res is not NULL). cancelled_t0: when we
 * cancelled it, the time it started, else 0. */
int pqpool__result_status(struct pqpool_conn *c, PGresult *last, int64_t cancelled_t0,
                          PGresult **res, const char *what);
/* Counts a query that started at t0 and ended with status. */
void pqpool__note_query(struct pqpool_conn *c, int64_t t0, int status);
/* Sends sql without waiting: the cached prepared statement when there is
 * one; with prepared statements on and none cached, a Prepare instead
 * (*preparing set): once it succeeds, record it with pqpool__stmt_prepared
 * and send again; else the unnamed statement. */
int pqpool__send_query(struct pqpool_conn *c, const pqpool__qreq *q, bool *preparing);
int pqpool__stmt_prepared(struct pqpool_conn *c, const char *sql);
/* Sends q's statement without waiting, as pqpool_exec would run it: the
 * cached prepared statement, or the unnamed one when prepared statements are
 * off. PQPOOL_EAGAIN when it would first have to be prepared. */
int pqpool__send_params(struct pqpool_conn *c, const pqpool__qreq *q);
/* Waits for the answer of a statement sent at t0 and counts it, as the
 * second half of pqpool_exec. */
int pqpool__finish_sent(struct pqpool_conn *c, int64_t t0, PGresult **res);
/* pool.c: acquire for q. On PQPOOL_OK, *sent_ns is non-zero when q was
 * already sent on *out at that time (finish it with pqpool__finish_sent),
 * zero when the caller must run it. */
int pqpool__acquire_query(struct pqpool *p, int64_t deadline_ns, const pqpool__qreq *q,
                          pqpool_conn **out, int64_t *sent_ns);
/* pool.c: takes an idle connection if one is free now, else PQPOOL_EAGAIN. */
int pqpool__try_acquire(struct pqpool *p, pqpool_conn **out, const char *file, int line);
/* health.c: fills h from a finished probe that started at t0. p pinned. */
void pqpool__health_result(struct pqpool *p, int rc, int64_t t0, pqpool_health *h);

/* pool.c: acquire with a deadline in ns (for the health probe). */
int pqpool__acquire_until(struct pqpool *p, int64_t deadline_ns, pqpool_conn **out,
                          const char *file, int line);

#endif /* PQPOOL_INTERNAL_H */
