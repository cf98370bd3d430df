/* stats.h — the pool's numbers: per-slot figures written without locks, the
 * rare-path counters, the snapshot summed from them, the pool-status policy. */
#ifndef PQPOOL_STATS_H
#define PQPOOL_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pqpool.h"

#define PQPOOL__WIN_SLOTS  12 /* window buckets */
#define PQPOOL__WIN_SPAN_S 5  /* seconds per bucket: a 60 s window */

/* One slot's figures, written only by whoever holds the slot, with relaxed
 * load + store (a single writer needs no read-modify-write) and summed by
 * the snapshot: a query touches no cache line shared with other callers. */
typedef struct pqpool__qstats {
	_Atomic uint64_t acquires;      /* leases of this slot, ever */
	_Atomic int64_t last_use_ms;    /* coarse monotonic, last lease or release */
	_Atomic uint64_t slow_acquires; /* acquires that queued or opened */
	_Atomic uint64_t wait_sum_ns;   /* and their waits */
	_Atomic uint64_t wait_hist[PQPOOL_HIST_BUCKETS];
	_Atomic uint64_t queries;
	_Atomic uint64_t errors;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t hist[PQPOOL_HIST_BUCKETS];
	/* pipelining: depth at each Sync, wait behind earlier groups */
	_Atomic uint64_t depth_sum;
	_Atomic uint64_t depth_hist[PQPOOL_DEPTH_BUCKETS];
	_Atomic uint64_t hol_sum_ns;
	_Atomic uint64_t hol_hist[PQPOOL_HIST_BUCKETS];
	struct {
		_Atomic int64_t epoch; /* now_s / SPAN of this bucket */
		_Atomic uint64_t n, err, sum_ns;
	} win[PQPOOL__WIN_SLOTS];
} pqpool__qstats;

/* A lease begins (now: coarse monotonic ms). */
static inline void pqpool__qstats_lease(pqpool__qstats *q, int64_t now_ms)
{
	/* one writer (the slot's owner): a load and a store, no atomic RMW;
	 * inline, for it is on every acquire */
	atomic_store_explicit(&q->acquires,
	                      atomic_load_explicit(&q->acquires, memory_order_relaxed) +
	                              1,
	                      memory_order_relaxed);
	atomic_store_explicit(&q->last_use_ms, now_ms, memory_order_relaxed);
}
/* A lease ends. */
static inline void pqpool__qstats_release(pqpool__qstats *q, int64_t now_ms)
{
	atomic_store_explicit(&q->last_use_ms, now_ms, memory_order_relaxed);
}
/* An acquire that queued or opened a connection waited ns. */
void pqpool__qstats_wait(pqpool__qstats *q, int64_t ns);
/* A query ended at end_ns (monotonic) after dur_ns, failed or not. */
void pqpool__qstats_add(pqpool__qstats *q, int64_t end_ns, int64_t dur_ns, bool error);

/* A group was sent with depth statements in flight on the connection
 * (its own included). By the connection's sender. */
void pqpool__qstats_depth(pqpool__qstats *q, int depth);
/* n statements of a group waited ns behind the groups before it. By the
 * connection's reader. */
void pqpool__qstats_hol(pqpool__qstats *q, int64_t ns, int n);

/* The counters of rare events, under their own lock (or atomic). */
typedef struct pqpool__counters {
	_Atomic uint64_t acquire_timeouts, acquire_errors;
	pthread_mutex_t mu;
	uint64_t opened, connect_failures;
	uint64_t closed_by[PQPOOL_CLOSE_REASONS];
	uint64_t query_timeouts, rollbacks, retries, lease_warnings;
	pqpool_hist connect;
	char err_class[PQPOOL_ERROR_CLASSES][8];
	uint64_t err_count[PQPOOL_ERROR_CLASSES];
} pqpool__counters;

void pqpool__counters_init(pqpool__counters *c);
void pqpool__counters_destroy(pqpool__counters *c);
/* A failure with this SQLSTATE (NULL: a client-side one) and, for
 * PQPOOL_ETIMEDOUT, a query timeout. */
void pqpool__count_failure(pqpool__counters *c, int status, const char *sqlstate);
void pqpool__count_closed(pqpool__counters *c, pqpool_close_reason why);
/* A connect that took ns, or failed (ns < 0). */
void pqpool__count_connect(pqpool__counters *c, int64_t ns);
void pqpool__count_opened(pqpool__counters *c);

enum pqpool__counter { PQPOOL__ROLLBACKS, PQPOOL__RETRIES, PQPOOL__LEASE_WARNINGS };
void pqpool__count(pqpool__counters *c, enum pqpool__counter which, uint64_t n);

/* How a snapshot sees a slot. */
enum pqpool__use { PQPOOL__USE_NONE, PQPOOL__USE_USED, PQPOOL__USE_IDLE };

/* A snapshot being summed: begin, one call per slot, end. */
typedef struct pqpool__tally {
	pqpool_stats *st;
	bool full; /* lifetime figures too, not only counts and the window */
	int64_t epoch;
	uint64_t win_sum_ns, win_err, qsum_ns, slow, wait_ns, hol_ns;
	int64_t last_use_ms;
} pqpool__tally;

void pqpool__tally_begin(pqpool__tally *t, pqpool_stats *st, bool full);
void pqpool__tally_slot(pqpool__tally *t, const pqpool__qstats *q, enum pqpool__use use);

/* What the pool itself says of its state, for the end of a snapshot. */
typedef struct pqpool__pool_facts {
	int max, min, waiting;
	bool closed;
	int64_t started_wall_ms, started_mono_ms;
	pqpool__counters *counters; /* NULL: a quick snapshot */
} pqpool__pool_facts;

void pqpool__tally_end(pqpool__tally *t, const pqpool__pool_facts *f);

/* Adds from's figures to into's (a pool of several hosts is the sum of its
 * members): counts summed, window averages weighted by their queries, the
 * later last activity; into's state (closed, started) stays. */
void pqpool__stats_add(pqpool_stats *into, const pqpool_stats *from);

/* Error class i of a snapshot, safe as a JSON key and a Prometheus label
 * value, and its count including later entries of the same name; false for
 * an unused entry or one an earlier entry already reported. */
bool pqpool__error_class(const pqpool_stats *st, int i, char name[8], uint64_t *total);

#endif
