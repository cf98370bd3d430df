/* test_fault_exhaust.c — every connection held by a slow query: acquires
 * and queries from other threads end at DB_CONNECTION_TIMEOUT with
 * PQPOOL_ETIMEDOUT and a message that says so, pqpool_query does not retry
 * them (it would only add load), and the pool is whole again afterwards. */
#include "testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLDERS    3
#define CONTENDERS 6
#define TIMEOUT_MS 500

static pqpool *pool;

static void *holder(void *arg)
{
	pqpool_conn *c;
	(void)arg;
	if (pqpool_acquire(pool, -1, &c) != PQPOOL_OK)
		return (void *)1;
	pqpool_exec(c, "SELECT pg_sleep(2.5)", 0, NULL, NULL);
	pqpool_release(c);
	return NULL;
}

typedef struct result {
	int acquire_rc, query_rc;
	int64_t acquire_ms, query_ms;
	char acquire_msg[512], query_msg[512];
} result;

static void *contender(void *arg)
{
	result *r = arg;
	pqpool_conn *c = NULL;
	int64_t t0 = testenv_now_ms();
	r->acquire_rc = pqpool_acquire(pool, -1, &c);
	r->acquire_ms = testenv_now_ms() - t0;
	snprintf(r->acquire_msg, sizeof r->acquire_msg, "%s", pqpool_errmsg());
	if (c)
		pqpool_release(c);
	t0 = testenv_now_ms();
	r->query_rc = pqpool_query(pool, "SELECT 1", 0, NULL, PQPOOL_IDEMPOTENT, NULL);
	r->query_ms = testenv_now_ms() - t0;
	snprintf(r->query_msg, sizeof r->query_msg, "%s", pqpool_errmsg());
	return NULL;
}

static void test_exhausted_by_slow_queries(void **state)
{
	pqpool_config cfg;
	pqpool_stats st;
	pthread_t h[HOLDERS], t[CONTENDERS];
	result res[CONTENDERS];
	int64_t longest = 0;
	int clean = 0;
	pqpool_conn *c;
	(void)state;

	testenv_config(&cfg);
	cfg.pool_min = HOLDERS;
	cfg.pool_max = HOLDERS;
	cfg.connection_timeout_ms = TIMEOUT_MS;
	cfg.retry_base_delay_ms = 100;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &pool));
	for (int i = 0; i < HOLDERS; i++)
		assert_int_equal(pthread_create(&h[i], NULL, holder, NULL), 0);
	for (int i = 0; i < 100; i++) {
		pqpool_stats_get(pool, &st);
		if (st.active == HOLDERS)
			break;
		testenv_sleep_ms(10);
	}
	assert_int_equal(st.active, HOLDERS);

	memset(res, 0, sizeof res);
	for (int i = 0; i < CONTENDERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, contender, &res[i]), 0);
	for (int i = 0; i < CONTENDERS; i++)
		pthread_join(t[i], NULL);

	for (int i = 0; i < CONTENDERS; i++) {
		result *r = &res[i];
		assert_status(PQPOOL_ETIMEDOUT, r->acquire_rc);
		assert_non_null(strstr(r->acquire_msg, "timed out after"));
		assert_non_null(strstr(r->acquire_msg, "waiting for a connection"));
		assert_status(PQPOOL_ETIMEDOUT, r->query_rc);
		assert_non_null(strstr(r->query_msg, "timed out"));
		/* one attempt: an exhausted pool is not retried */
		assert_non_null(strstr(r->query_msg, "after 1 attempt:"));
		/* at the deadline, not before, not much after (a busy machine) */
		assert_true(r->acquire_ms >= TIMEOUT_MS - 20);
		assert_true(r->acquire_ms < TIMEOUT_MS + 700);
		assert_true(r->query_ms >= TIMEOUT_MS - 20);
		assert_true(r->query_ms < TIMEOUT_MS + 700);
		longest = r->acquire_ms > longest ? r->acquire_ms : longest;
		longest = r->query_ms > longest ? r->query_ms : longest;
		clean += 2;
	}
	for (int i = 0; i < HOLDERS; i++) {
		void *rv;
		pthread_join(h[i], &rv);
		assert_null(rv);
	}
	/* whole again */
	assert_status(PQPOOL_OK, pqpool_acquire(pool, -1, &c));
	pqpool_release(c);
	pqpool_stats_get(pool, &st);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_true(st.acquire_timeouts >= 2 * CONTENDERS);
	assert_int_equal(st.retries, 0);
	printf("FAULT exhaust-library: sent=%d ok=0 failed=%d outage_ms=0 recovery_ms=0 "
	       "clean_timeouts=%d longest_ms=%lld timeout_ms=%d\n",
	       2 * CONTENDERS, 2 * CONTENDERS, clean, (long long)longest, TIMEOUT_MS);
	if (getenv("PQPOOL_FAULTS_SUMMARY")) {
		FILE *f = fopen(getenv("PQPOOL_FAULTS_SUMMARY"), "a");
		if (f) {
			fprintf(f,
			        "FAULT exhaust-library: sent=%d ok=0 failed=%d "
			        "outage_ms=0 "
			        "recovery_ms=0 clean_timeouts=%d longest_ms=%lld "
			        "timeout_ms=%d\n",
			        2 * CONTENDERS, 2 * CONTENDERS, clean, (long long)longest,
			        TIMEOUT_MS);
			fclose(f);
		}
	}
	assert_status(PQPOOL_OK, pqpool_close(pool, 2000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exhausted_by_slow_queries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
