/* test_pool_stress.c — many threads, thousands of leases each, against a real
 * server: afterwards every counter adds up and nothing is left behind. */
#include "testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 64
#define LEASES  2000

struct worker {
	pqpool *p;
	int id;
	int ok, queries, discards, failures;
	int64_t max_wait_ms;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < LEASES; i++) {
		pqpool_conn *c;
		int64_t t0 = testenv_now_ms(), waited;
		int rc = pqpool_acquire(w->p, 10000, &c);
		waited = testenv_now_ms() - t0;
		if (waited > w->max_wait_ms)
			w->max_wait_ms = waited;
		if (rc != PQPOOL_OK) {
			w->failures++;
			continue;
		}
		w->ok++;
		/* the connection really is ours: a query now and then */
		if ((i + w->id) % 50 == 0) {
			if (pqpool_exec(c, "SELECT 1", 0, NULL, NULL) == PQPOOL_OK)
				w->queries++;
			else
				w->failures++;
		}
		if ((i + w->id) % 997 == 0) {
			pqpool_discard(c);
			w->discards++;
		} else {
			pqpool_release(c);
		}
	}
	return NULL;
}

static void test_stress_counters_add_up(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_stats st;
	pthread_t th[THREADS];
	struct worker w[THREADS];
	uint64_t ok = 0, queries = 0, discards = 0, closed = 0;
	int64_t max_wait = 0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 20;
	cfg.pool_min = 5;
	p = NULL;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].p = p;
		w[i].id = i;
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
		ok += (uint64_t)w[i].ok;
		queries += (uint64_t)w[i].queries;
		discards += (uint64_t)w[i].discards;
		if (w[i].max_wait_ms > max_wait)
			max_wait = w[i].max_wait_ms;
	}
	assert_int_equal(ok, (uint64_t)THREADS * LEASES);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.acquires, ok);
	assert_int_equal(st.queries, queries);
	assert_int_equal(st.query_errors, 0);
	assert_int_equal(st.acquire_timeouts, 0);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_DISCARDED], discards);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_true(st.total <= 20);
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++)
		closed += st.closed_by[r];
	/* every connection opened is either still open or was closed once */
	assert_int_equal(st.opened, closed + (uint64_t)st.total);
	assert_int_equal(st.wait.count, st.acquires);
	/* the server agrees on how many connections are open */
	assert_int_equal(testenv_backends_settled(st.total), st.total);
	print_message("stress: %d threads x %d leases, %llu queries, max wait %lld ms, "
	              "wait p50 %.3f p99 %.3f ms\n",
	              THREADS, LEASES, (unsigned long long)queries, (long long)max_wait,
	              pqpool_hist_quantile(&st.wait, 0.5),
	              pqpool_hist_quantile(&st.wait, 0.99));
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* One-shot queries from more threads than connections: a waiting caller's
 * query is sent by whoever frees a connection, and each caller must get its
 * own answer back. */
struct qworker {
	pqpool *p;
	int id, n, wrong, failed;
	pthread_t th;
};

static void *query_work(void *arg)
{
	struct qworker *w = arg;
	for (int i = 0; i < w->n; i++) {
		char v[32], want[32];
		const char *params[] = {v};
		PGresult *r = NULL;
		snprintf(v, sizeof v, "%d", w->id * 100000 + i);
		snprintf(want, sizeof want, "%d", (w->id * 100000 + i) * 2);
		if (pqpool_query(w->p, "SELECT $1::int * 2", 1, params, PQPOOL_IDEMPOTENT,
		                 &r) != PQPOOL_OK) {
			w->failed++;
			continue;
		}
		if (strcmp(PQgetvalue(r, 0, 0), want) != 0)
			w->wrong++;
		PQclear(r);
	}
	return NULL;
}

static void run_queries(bool prepare)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_stats st;
	struct qworker w[48];
	testenv_config(&cfg);
	cfg.pool_max = 6;
	cfg.pool_min = 6;
	cfg.prepare = prepare;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int i = 0; i < 48; i++) {
		w[i] = (struct qworker){p, i, 400, 0, 0, 0};
		pthread_create(&w[i].th, NULL, query_work, &w[i]);
	}
	for (int i = 0; i < 48; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].failed, 0);
		assert_int_equal(w[i].wrong, 0);
	}
	pqpool_stats_get(p, &st);
	/* 6 statements prepared at most (one per connection), the rest
	 * executions; every query counted once */
	assert_true(st.queries >= 48 * 400);
	assert_true(st.queries <= 48 * 400 + 6);
	assert_int_equal(st.query_errors, 0);
	assert_int_equal(st.active, 0);
	assert_true(st.wait.count >= 48 * 400);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

static void test_one_shot_queries_under_contention(void **state)
{
	(void)state;
	run_queries(true);
	run_queries(false);
}

/* A one-shot query that waits for a connection gives up at the timeout,
 * and the thread's wait set works for the next one. */
static void test_query_waiter_timeout(void **state)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_conn *held;
	PGresult *r = NULL;
	int64_t t0, el;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 1;
	cfg.pool_min = 1;
	cfg.connection_timeout_ms = 300;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK,
	              pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL)); /* prepared */
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &held));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ETIMEDOUT, pqpool_query(p, "SELECT 1", 0, NULL, 0, &r));
	el = testenv_now_ms() - t0;
	assert_null(r);
	assert_true(el >= 300);
	assert_true(el < 900);
	assert_non_null(strstr(pqpool_errmsg(), "failed after 1 attempt"));
	pqpool_release(held);
	for (int i = 0; i < 5; i++) {
		assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 2", 0, NULL, 0, &r));
		assert_string_equal(PQgetvalue(r, 0, 0), "2");
		PQclear(r);
	}
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stress_counters_add_up),
	        cmocka_unit_test(test_one_shot_queries_under_contention),
	        cmocka_unit_test(test_query_waiter_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
