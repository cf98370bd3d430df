/* stats.c — collecting the pool's numbers: per-slot query statistics written
 * without locks, rare-path counters, and the snapshot that sums them. */
#include "internal.h"

#include <string.h>

/* Each lease holder writes only its own slot's statistics, so a query costs
 * no shared cache line; relaxed load+store (not read-modify-write) suffices
 * for a single writer and keeps concurrent readers free of data races. */
#define BUMP(field, by)                                                                  \
	atomic_store_explicit(                                                           \
	        &(field), atomic_load_explicit(&(field), memory_order_relaxed) + (by),   \
	        memory_order_relaxed)

void pqpool__qstats_add(pqpool__qstats *q, int64_t end_ns, int64_t dur_ns, bool error)
{
	int64_t epoch = end_ns / ((int64_t)PQPOOL__WIN_SPAN_S * 1000000000);
	int b = (int)(epoch % PQPOOL__WIN_SLOTS);
	if (dur_ns < 0)
		dur_ns = 0;
	BUMP(q->queries, 1);
	if (error)
		BUMP(q->errors, 1);
	BUMP(q->sum_ns, (uint64_t)dur_ns);
	BUMP(q->hist[pqpool__hist_bucket(dur_ns)], 1);
	/* A reader may see a bucket mid-reset (new epoch, old counts or the
	 * reverse): the window is an estimate, good to a query or two. */
	if (atomic_load_explicit(&q->win[b].epoch, memory_order_relaxed) != epoch) {
		atomic_store_explicit(&q->win[b].n, 0, memory_order_relaxed);
		atomic_store_explicit(&q->win[b].err, 0, memory_order_relaxed);
		atomic_store_explicit(&q->win[b].sum_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&q->win[b].epoch, epoch, memory_order_relaxed);
	}
	BUMP(q->win[b].n, 1);
	if (error)
		BUMP(q->win[b].err, 1);
	BUMP(q->win[b].sum_ns, (uint64_t)dur_ns);
}

void pqpool__count_error(struct pqpool *p, const char *sqlstate)
{
	char cls[8] = "client";
	int i;
	if (sqlstate && strlen(sqlstate) >= 2) {
		cls[0] = sqlstate[0];
		cls[1] = sqlstate[1];
		cls[2] = '\0';
	}
	pthread_mutex_lock(&p->stats_mu);
	for (i = 0; i < PQPOOL_ERROR_CLASSES - 1; i++) {
		if (p->err_class[i][0] == '\0')
			memcpy(p->err_class[i], cls, sizeof cls);
		if (strcmp(p->err_class[i], cls) == 0)
			break;
	}
	if (i == PQPOOL_ERROR_CLASSES - 1) /* the last entry collects the rest */
		memcpy(p->err_class[i], "other", 6);
	p->err_count[i]++;
	pthread_mutex_unlock(&p->stats_mu);
}

/* One pass over the slots: connection counts and the recent window, and,
 * when full, the lifetime counters and distributions. No lock: each slot's
 * figures are written by its holder only. The caller keeps p alive. */
static void scan(struct pqpool *p, pqpool_stats *st, bool full, uint64_t *slow,
                 uint64_t *wait_ns, int64_t *last_mono)
{
	int64_t now_ns = pqpool__now_ns();
	int64_t cur_epoch = now_ns / ((int64_t)PQPOOL__WIN_SPAN_S * 1000000000);
	uint64_t win_sum_ns = 0, win_err = 0, qsum_ns = 0;
	uint32_t contend;

	for (int i = 0; i < p->nslots; i++) {
		struct pqpool_conn *s = &p->slots[i];
		pqpool__qstats *q = &s->q;
		int state = atomic_load_explicit(&s->state, memory_order_relaxed);
		if (state == SLOT_IDLE)
			st->idle++;
		else if (state != SLOT_EMPTY)
			st->active++;
		for (int w = 0; w < PQPOOL__WIN_SLOTS; w++) {
			int64_t e = atomic_load_explicit(&q->win[w].epoch,
			                                 memory_order_relaxed);
			/* the current bucket and the WIN_SLOTS-1 before it */
			if (e <= cur_epoch - PQPOOL__WIN_SLOTS || e > cur_epoch)
				continue;
			st->window_queries +=
			        atomic_load_explicit(&q->win[w].n, memory_order_relaxed);
			win_err += atomic_load_explicit(&q->win[w].err,
			                                memory_order_relaxed);
			win_sum_ns += atomic_load_explicit(&q->win[w].sum_ns,
			                                   memory_order_relaxed);
		}
		if (!full)
			continue;
		int64_t rel = atomic_load_explicit(&s->released_ms, memory_order_relaxed);
		int64_t acq = atomic_load_explicit(&s->acquired_ms, memory_order_relaxed);
		if (rel > *last_mono)
			*last_mono = rel;
		if (acq > *last_mono)
			*last_mono = acq;
		st->acquires += atomic_load_explicit(&s->acquires, memory_order_relaxed);
		*slow += atomic_load_explicit(&q->slow_acquires, memory_order_relaxed);
		*wait_ns += atomic_load_explicit(&q->wait_sum_ns, memory_order_relaxed);
		for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++)
			st->wait.buckets[b] += atomic_load_explicit(&q->wait_hist[b],
			                                            memory_order_relaxed);
		st->queries += atomic_load_explicit(&q->queries, memory_order_relaxed);
		st->query_errors +=
		        atomic_load_explicit(&q->errors, memory_order_relaxed);
		qsum_ns += atomic_load_explicit(&q->sum_ns, memory_order_relaxed);
		for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++)
			st->query.buckets[b] +=
			        atomic_load_explicit(&q->hist[b], memory_order_relaxed);
	}
	st->total = st->active + st->idle;
	st->max = p->nslots;
	st->min = p->cfg.pool_min;
	st->utilization = st->max > 0 ? (double)st->active * 100.0 / st->max : 0;
	for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++)
		st->query.count += st->query.buckets[b];
	st->query.sum_ms = (double)qsum_ns / 1e6;
	st->window_s = PQPOOL__WIN_SLOTS * PQPOOL__WIN_SPAN_S;
	if (st->window_queries > 0) {
		st->avg_response_ms =
		        (double)win_sum_ns / 1e6 / (double)st->window_queries;
		st->error_rate = (double)win_err * 100.0 / (double)st->window_queries;
	}
	/* `contend` is the waiters count plus the closed bit, kept with them
	 * under the lock: reading it needs none */
	contend = atomic_load(&p->contend);
	st->waiting = (int)(contend & ~PQPOOL__CLOSED_BIT);
	st->closed = (contend & PQPOOL__CLOSED_BIT) != 0;
}

void pqpool__stats_quick(struct pqpool *p, pqpool_stats *st)
{
	memset(st, 0, sizeof *st);
	scan(p, st, false, NULL, NULL, NULL);
}

int pqpool_stats_get(pqpool *p, pqpool_stats *st)
{
	int64_t last_mono = 0;
	uint64_t slow = 0, wait_ns = 0;

	if (!p || !st)
		return pqpool__fail(PQPOOL_EINVAL, "stats: NULL pool or out");
	pqpool__pin(p);
	memset(st, 0, sizeof *st);
	scan(p, st, true, &slow, &wait_ns, &last_mono);

	pthread_mutex_lock(&p->stats_mu);
	st->acquire_timeouts = atomic_load(&p->acquire_timeouts);
	st->acquire_errors = atomic_load(&p->acquire_errors);
	st->opened = p->opened;
	st->connect_failures = p->connect_failures;
	memcpy(st->closed_by, p->closed_by, sizeof st->closed_by);
	st->query_timeouts = p->query_timeouts;
	st->rollbacks = p->rollbacks;
	st->retries = p->retries;
	st->lease_warnings = p->lease_warnings;
	memcpy(st->error_class, p->err_class, sizeof st->error_class);
	memcpy(st->errors_by_class, p->err_count, sizeof st->errors_by_class);
	/* Acquires that took the lock-free path waited for nothing: they are
	 * the zero bucket of the wait distribution. */
	st->wait.count = slow;
	st->wait.sum_ms = (double)wait_ns / 1e6;
	if (st->acquires > slow) {
		st->wait.buckets[0] += st->acquires - slow;
		st->wait.count = st->acquires;
	}
	st->connect = p->connect;
	pthread_mutex_unlock(&p->stats_mu);

	st->started_ms = p->started_wall_ms;
	st->last_activity_ms =
	        last_mono > 0 ? p->started_wall_ms + (last_mono - p->started_mono_ms)
	                      : p->started_wall_ms;
	pqpool__unpin(p);
	pqpool__ok();
	return PQPOOL_OK;
}
