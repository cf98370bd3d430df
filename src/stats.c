/* stats.c — the pool's numbers: per-slot figures written without locks,
 * rare-path counters under a lock, the snapshot that sums them, and the
 * specification's pool status derived from a snapshot. Knows nothing of the
 * pool or its slots: the pool walks its slots and hands each one's figures
 * here. */
#include "stats.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "hist.h"

/* Each lease holder writes only its own slot's statistics, so a query costs
 * no shared cache line; relaxed load+store (not read-modify-write) suffices
 * for a single writer and keeps concurrent readers free of data races. */
#define BUMP(field, by)                                                                  \
	atomic_store_explicit(                                                           \
	        &(field), atomic_load_explicit(&(field), memory_order_relaxed) + (by),   \
	        memory_order_relaxed)
#define LOAD(field) atomic_load_explicit(&(field), memory_order_relaxed)

void pqpool__qstats_wait(pqpool__qstats *q, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	BUMP(q->slow_acquires, 1);
	BUMP(q->wait_sum_ns, (uint64_t)ns);
	BUMP(q->wait_hist[pqpool__hist_bucket(ns)], 1);
}

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
	if (LOAD(q->win[b].epoch) != epoch) {
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

void pqpool__qstats_depth(pqpool__qstats *q, int depth)
{
	if (depth < 1)
		depth = 1;
	BUMP(q->depth_sum, (uint64_t)depth);
	BUMP(q->depth_hist[pqpool__depth_bucket(depth)], 1);
}

void pqpool__qstats_hol(pqpool__qstats *q, int64_t ns, int n)
{
	if (ns < 0)
		ns = 0;
	if (n < 1)
		return;
	BUMP(q->hol_sum_ns, (uint64_t)ns * (uint64_t)n);
	BUMP(q->hol_hist[pqpool__hist_bucket(ns)], (uint64_t)n);
}

/* ---- rare-path counters ---- */

void pqpool__counters_init(pqpool__counters *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
}

void pqpool__counters_destroy(pqpool__counters *c)
{
	pthread_mutex_destroy(&c->mu);
}

void pqpool__count_failure(pqpool__counters *c, int status, const char *sqlstate)
{
	char cls[8] = "client";
	int i;
	if (sqlstate && strlen(sqlstate) >= 2) {
		cls[0] = sqlstate[0];
		cls[1] = sqlstate[1];
		cls[2] = '\0';
	}
	pthread_mutex_lock(&c->mu);
	if (status == PQPOOL_ETIMEDOUT)
		c->query_timeouts++;
	for (i = 0; i < PQPOOL_ERROR_CLASSES - 1; i++) {
		if (c->err_class[i][0] == '\0')
			memcpy(c->err_class[i], cls, sizeof cls);
		if (strcmp(c->err_class[i], cls) == 0)
			break;
	}
	if (i == PQPOOL_ERROR_CLASSES - 1) /* the last entry collects the rest */
		memcpy(c->err_class[i], "other", 6);
	c->err_count[i]++;
	pthread_mutex_unlock(&c->mu);
}

void pqpool__count_closed(pqpool__counters *c, pqpool_close_reason why)
{
	pthread_mutex_lock(&c->mu);
	c->closed_by[why]++;
	pthread_mutex_unlock(&c->mu);
}

void pqpool__count_connect(pqpool__counters *c, int64_t ns)
{
	pthread_mutex_lock(&c->mu);
	if (ns >= 0)
		pqpool__hist_add(&c->connect, ns);
	else
		c->connect_failures++;
	pthread_mutex_unlock(&c->mu);
}

void pqpool__count_opened(pqpool__counters *c)
{
	pthread_mutex_lock(&c->mu);
	c->opened++;
	pthread_mutex_unlock(&c->mu);
}

void pqpool__count(pqpool__counters *c, enum pqpool__counter which, uint64_t n)
{
	pthread_mutex_lock(&c->mu);
	switch (which) {
	case PQPOOL__ROLLBACKS:
		c->rollbacks += n;
		break;
	case PQPOOL__RETRIES:
		c->retries += n;
		break;
	case PQPOOL__LEASE_WARNINGS:
		c->lease_warnings += n;
		break;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- the snapshot ---- */

void pqpool__tally_begin(pqpool__tally *t, pqpool_stats *st, bool full)
{
	memset(t, 0, sizeof *t);
	memset(st, 0, sizeof *st);
	t->st = st;
	t->full = full;
	t->epoch = pqc_now_ns() / ((int64_t)PQPOOL__WIN_SPAN_S * 1000000000);
}

void pqpool__tally_slot(pqpool__tally *t, const pqpool__qstats *q, enum pqpool__use use)
{
	pqpool_stats *st = t->st;
	int64_t last;
	if (use == PQPOOL__USE_IDLE)
		st->idle++;
	else if (use == PQPOOL__USE_USED)
		st->active++;
	for (int w = 0; w < PQPOOL__WIN_SLOTS; w++) {
		int64_t e = LOAD(q->win[w].epoch);
		/* the current bucket and the WIN_SLOTS-1 before it */
		if (e <= t->epoch - PQPOOL__WIN_SLOTS || e > t->epoch)
			continue;
		st->window_queries += LOAD(q->win[w].n);
		t->win_err += LOAD(q->win[w].err);
		t->win_sum_ns += LOAD(q->win[w].sum_ns);
	}
	if (!t->full)
		return;
	last = LOAD(q->last_use_ms);
	if (last > t->last_use_ms)
		t->last_use_ms = last;
	st->acquires += LOAD(q->acquires);
	t->slow += LOAD(q->slow_acquires);
	t->wait_ns += LOAD(q->wait_sum_ns);
	st->queries += LOAD(q->queries);
	st->query_errors += LOAD(q->errors);
	t->qsum_ns += LOAD(q->sum_ns);
	for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++) {
		st->wait.buckets[b] += LOAD(q->wait_hist[b]);
		st->query.buckets[b] += LOAD(q->hist[b]);
		st->pipeline_wait.buckets[b] += LOAD(q->hol_hist[b]);
	}
	st->pipeline_depth.sum += LOAD(q->depth_sum);
	for (int b = 0; b < PQPOOL_DEPTH_BUCKETS; b++)
		st->pipeline_depth.buckets[b] += LOAD(q->depth_hist[b]);
	t->hol_ns += LOAD(q->hol_sum_ns);
}

void pqpool__tally_end(pqpool__tally *t, const pqpool__pool_facts *f)
{
	pqpool_stats *st = t->st;
	pqpool__counters *c = f->counters;
	st->total = st->active + st->idle;
	st->max = f->max;
	st->min = f->min;
	st->waiting = f->waiting;
	st->closed = f->closed;
	st->utilization = st->max > 0 ? (double)st->active * 100.0 / st->max : 0;
	st->window_s = PQPOOL__WIN_SLOTS * PQPOOL__WIN_SPAN_S;
	if (st->window_queries > 0) {
		st->avg_response_ms =
		        (double)t->win_sum_ns / 1e6 / (double)st->window_queries;
		st->error_rate = (double)t->win_err * 100.0 / (double)st->window_queries;
	}
	if (!t->full)
		return;
	for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++) {
		st->query.count += st->query.buckets[b];
		st->pipeline_wait.count += st->pipeline_wait.buckets[b];
	}
	st->query.sum_ms = (double)t->qsum_ns / 1e6;
	st->pipeline_wait.sum_ms = (double)t->hol_ns / 1e6;
	for (int b = 0; b < PQPOOL_DEPTH_BUCKETS; b++)
		st->pipeline_depth.count += st->pipeline_depth.buckets[b];
	/* Acquires that took the lock-free path waited for nothing: they are
	 * the zero bucket of the wait distribution. */
	st->wait.count = t->slow;
	st->wait.sum_ms = (double)t->wait_ns / 1e6;
	if (st->acquires > t->slow) {
		st->wait.buckets[0] += st->acquires - t->slow;
		st->wait.count = st->acquires;
	}
	st->started_ms = f->started_wall_ms;
	st->last_activity_ms =
	        t->last_use_ms > 0
	                ? f->started_wall_ms + (t->last_use_ms - f->started_mono_ms)
	                : f->started_wall_ms;
	if (!c)
		return;
	st->acquire_timeouts = atomic_load(&c->acquire_timeouts);
	st->acquire_errors = atomic_load(&c->acquire_errors);
	pthread_mutex_lock(&c->mu);
	st->opened = c->opened;
	st->connect_failures = c->connect_failures;
	memcpy(st->closed_by, c->closed_by, sizeof st->closed_by);
	st->query_timeouts = c->query_timeouts;
	st->rollbacks = c->rollbacks;
	st->retries = c->retries;
	st->lease_warnings = c->lease_warnings;
	memcpy(st->error_class, c->err_class, sizeof st->error_class);
	memcpy(st->errors_by_class, c->err_count, sizeof st->errors_by_class);
	st->connect = c->connect;
	pthread_mutex_unlock(&c->mu);
}

static void hist_add(pqpool_hist *into, const pqpool_hist *from)
{
	into->count += from->count;
	into->sum_ms += from->sum_ms;
	for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++)
		into->buckets[b] += from->buckets[b];
}

/* An error class's entry in st, made when there is room; NULL when full. */
static uint64_t *class_slot(pqpool_stats *st, const char *name)
{
	for (int i = 0; i < PQPOOL_ERROR_CLASSES; i++) {
		if (strcmp(st->error_class[i], name) == 0)
			return &st->errors_by_class[i];
		if (!st->error_class[i][0]) {
			snprintf(st->error_class[i], sizeof st->error_class[i], "%s",
			         name);
			return &st->errors_by_class[i];
		}
	}
	return NULL;
}

void pqpool__stats_add(pqpool_stats *into, const pqpool_stats *from)
{
	uint64_t wq = into->window_queries + from->window_queries;
	if (wq > 0) {
		into->avg_response_ms =
		        (into->avg_response_ms * (double)into->window_queries +
		         from->avg_response_ms * (double)from->window_queries) /
		        (double)wq;
		into->error_rate = (into->error_rate * (double)into->window_queries +
		                    from->error_rate * (double)from->window_queries) /
		                   (double)wq;
	}
	into->window_queries = wq;
	into->window_s = from->window_s;
	into->total += from->total;
	into->active += from->active;
	into->idle += from->idle;
	into->waiting += from->waiting;
	into->max += from->max;
	into->min += from->min;
	into->utilization = into->max > 0 ? (double)into->active * 100.0 / into->max : 0;
	into->acquires += from->acquires;
	into->acquire_timeouts += from->acquire_timeouts;
	into->acquire_errors += from->acquire_errors;
	into->opened += from->opened;
	into->connect_failures += from->connect_failures;
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++)
		into->closed_by[r] += from->closed_by[r];
	into->queries += from->queries;
	into->query_errors += from->query_errors;
	into->query_timeouts += from->query_timeouts;
	into->rollbacks += from->rollbacks;
	into->retries += from->retries;
	into->lease_warnings += from->lease_warnings;
	for (int i = 0; i < PQPOOL_ERROR_CLASSES && from->error_class[i][0]; i++) {
		uint64_t *n = class_slot(into, from->error_class[i]);
		if (n)
			*n += from->errors_by_class[i];
	}
	hist_add(&into->wait, &from->wait);
	hist_add(&into->query, &from->query);
	hist_add(&into->connect, &from->connect);
	hist_add(&into->pipeline_wait, &from->pipeline_wait);
	into->pipeline_depth.count += from->pipeline_depth.count;
	into->pipeline_depth.sum += from->pipeline_depth.sum;
	for (int b = 0; b < PQPOOL_DEPTH_BUCKETS; b++)
		into->pipeline_depth.buckets[b] += from->pipeline_depth.buckets[b];
	if (from->last_activity_ms > into->last_activity_ms)
		into->last_activity_ms = from->last_activity_ms;
}

/* ---- texts and the specification's pool status ---- */

const char *pqpool_role_text(pqpool_role role)
{
	switch (role) {
	case PQPOOL_ROLE_PRIMARY:
		return "primary";
	case PQPOOL_ROLE_STANDBY:
		return "standby";
	case PQPOOL_ROLE_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *pqpool_host_state_text(pqpool_host_state state)
{
	switch (state) {
	case PQPOOL_HOST_UP:
		return "up";
	case PQPOOL_HOST_BANNED:
		return "banned";
	case PQPOOL_HOST_DOWN:
		return "down";
	}
	return "unknown";
}

const char *pqpool_health_text(pqpool_health_status status)
{
	switch (status) {
	case PQPOOL_HEALTHY:
		return "healthy";
	case PQPOOL_DEGRADED:
		return "degraded";
	case PQPOOL_UNHEALTHY:
		return "unhealthy";
	}
	return "unknown";
}

static const char *const close_reason_names[PQPOOL_CLOSE_REASONS] = {
        [PQPOOL_CLOSE_IDLE] = "idle",
        [PQPOOL_CLOSE_LIFETIME] = "lifetime",
        [PQPOOL_CLOSE_BROKEN] = "broken",
        [PQPOOL_CLOSE_UNCLEAN] = "unclean",
        [PQPOOL_CLOSE_DISCARDED] = "discarded",
        [PQPOOL_CLOSE_POOL_CLOSED] = "pool_closed",
        [PQPOOL_CLOSE_READ_ONLY] = "read_only",
};

const char *pqpool_close_reason_text(pqpool_close_reason r)
{
	if ((int)r < 0 || r >= PQPOOL_CLOSE_REASONS)
		return "unknown";
	return close_reason_names[r];
}

void pqpool_pool_status_of(const pqpool_stats *st, pqpool_pool_status *out)
{
	static const pqpool_stats zero;
	if (out == NULL)
		return;
	if (st == NULL)
		st = &zero;
	double u = st->utilization;
	memset(out, 0, sizeof *out);
	/* Thresholds and texts exactly as the specification's getPoolStatus(). */
	if (u > 80)
		out->utilization = "critical";
	else if (u > 60)
		out->utilization = "high";
	else if (u > 40)
		out->utilization = "medium";
	else
		out->utilization = "low";
	if (st->waiting > 0)
		out->recommendations[out->n_recommendations++] =
		        "Consider increasing pool size";
	if (u > 80)
		out->recommendations[out->n_recommendations++] =
		        "Pool utilization is critically high";
	out->healthy = st->error_rate < 5;
}

/* An error class name safe as a JSON key and a Prometheus label value:
 * SQLSTATE classes are ASCII, so anything else is replaced rather than
 * trusted. Returns false for an unused slot. */
static bool class_name(const pqpool_stats *st, int i, char out[8])
{
	size_t n = strnlen(st->error_class[i], sizeof st->error_class[i]);
	if (n == 0)
		return false;
	if (n > 7)
		n = 7;
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)st->error_class[i][k];
		out[k] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
	}
	out[n] = '\0';
	return true;
}

/* The count of class i including later slots with the same name, or false
 * when an earlier slot already had it (so each class is reported once). */
bool pqpool__error_class(const pqpool_stats *st, int i, char name[8], uint64_t *total)
{
	char other[8];
	if (!class_name(st, i, name))
		return false;
	for (int j = 0; j < i; j++)
		if (class_name(st, j, other) && strcmp(other, name) == 0)
			return false;
	*total = st->errors_by_class[i];
	for (int j = i + 1; j < PQPOOL_ERROR_CLASSES; j++)
		if (class_name(st, j, other) && strcmp(other, name) == 0)
			*total += st->errors_by_class[j];
	return true;
}
