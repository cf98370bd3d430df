/* writers.c — inserting threads for the fault tests. */
#include "writers.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ledger.h"
#include "testenv.h"

#define MAXW 64

static struct {
	pqpool *pool;
	char sql[128];
	pthread_t th[MAXW];
	int n, t0;
	atomic_bool stop;
	_Atomic int64_t mark_ms, first_ok_ms, first_lost_ms, last_lost_ms;
	_Atomic long ok, lost, lost_again, refused, other;
	pthread_mutex_t mu;
	char first_other[400];
} w = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	long lost = 0;
	for (int n = 0; !atomic_load(&w.stop); n++) {
		char a[16], b[16];
		const char *params[] = {a, b};
		int rc;
		snprintf(a, sizeof a, "%d", t);
		snprintf(b, sizeof b, "%d", n);
		rc = pqpool_query(w.pool, w.sql, 2, params, 0, NULL);
		if (rc == PQPOOL_OK) {
			int64_t now = testenv_now_ms(), m = atomic_load(&w.mark_ms),
			        none = 0;
			ledger_ack(t, n);
			atomic_fetch_add(&w.ok, 1);
			if (m && now >= m)
				atomic_compare_exchange_strong(&w.first_ok_ms, &none,
				                               now);
		} else if (rc == PQPOOL_ECONNLOST) {
			int64_t now = testenv_now_ms(), none = 0,
			        last = atomic_load(&w.last_lost_ms);
			atomic_compare_exchange_strong(&w.first_lost_ms, &none, now);
			while (last < now &&
			       !atomic_compare_exchange_weak(&w.last_lost_ms, &last, now))
				;
			atomic_fetch_add(&w.lost, 1);
			if (lost++ > 0)
				atomic_fetch_add(&w.lost_again, 1);
		} else {
			if (strcmp(pqpool_errcode(), "25006") == 0)
				atomic_fetch_add(&w.refused, 1);
			if (atomic_fetch_add(&w.other, 1) == 0) {
				pthread_mutex_lock(&w.mu);
				snprintf(w.first_other, sizeof w.first_other,
				         "%s (%s): %s", pqpool_status_text(rc),
				         pqpool_errcode(), pqpool_errmsg());
				pthread_mutex_unlock(&w.mu);
			}
		}
	}
	return NULL;
}

void writers_start(pqpool *pool, const char *table, int n, int t0)
{
	assert_true(n <= MAXW);
	w.pool = pool;
	w.n = n;
	w.t0 = t0;
	snprintf(w.sql, sizeof w.sql, "INSERT INTO %s VALUES ($1, $2)", table);
	atomic_store(&w.stop, false);
	atomic_store(&w.mark_ms, 0);
	atomic_store(&w.first_ok_ms, 0);
	atomic_store(&w.first_lost_ms, 0);
	atomic_store(&w.last_lost_ms, 0);
	atomic_store(&w.ok, 0);
	atomic_store(&w.lost, 0);
	atomic_store(&w.lost_again, 0);
	atomic_store(&w.refused, 0);
	atomic_store(&w.other, 0);
	w.first_other[0] = '\0';
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&w.th[i], NULL, writer,
		                                (void *)(intptr_t)(t0 + i)),
		                 0);
}

void writers_mark(void)
{
	atomic_store(&w.mark_ms, testenv_now_ms());
}

int64_t writers_marked_ms(void)
{
	return atomic_load(&w.mark_ms);
}

writers_result writers_stop(void)
{
	writers_result r;
	atomic_store(&w.stop, true);
	for (int i = 0; i < w.n; i++)
		pthread_join(w.th[i], NULL);
	w.n = 0; /* stopping again is a no-op */
	r.ok = atomic_load(&w.ok);
	r.lost = atomic_load(&w.lost);
	r.lost_again = atomic_load(&w.lost_again);
	r.first_lost_ms = atomic_load(&w.first_lost_ms);
	r.last_lost_ms = atomic_load(&w.last_lost_ms);
	r.refused = atomic_load(&w.refused);
	r.other = atomic_load(&w.other);
	r.failed = r.lost + r.other;
	r.first_ok_after_ms = atomic_load(&w.first_ok_ms);
	snprintf(r.first_other, sizeof r.first_other, "%s", w.first_other);
	return r;
}
