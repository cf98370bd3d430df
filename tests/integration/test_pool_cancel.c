/* test_pool_cancel.c — cancel requests: which way they are sent with the libpq
 * this test runs with, and that a query past its deadline is cancelled on
 * the server (not merely abandoned by the client), both by its own caller
 * and by a pool closing past its drain time. */
#include "testenv.h"
#include "cancel.h" /* white-box: which path runs */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the backend pid is doing: its state and query, "" when it is gone. */
static const char *activity(int pid)
{
	return testenv_admin("SELECT coalesce(state, '') || ':' || query FROM "
	                     "pg_stat_activity WHERE pid = %d",
	                     pid);
}

/* Waits up to ms for the backend to leave the query it runs (state no
 * longer active); returns how long it took, or -1. */
static int64_t query_gone_within(int pid, int ms)
{
	int64_t t0 = testenv_now_ms();
	do {
		if (strncmp(activity(pid), "active:", 7) != 0)
			return testenv_now_ms() - t0;
		testenv_sleep_ms(5);
	} while (testenv_now_ms() - t0 < ms);
	return -1;
}

static void test_path(void **state)
{
	const char *m = pqpool__cancel_method();
	(void)state;
	printf("cancel requests: %s (libpq %d)\n", m, PQlibVersion());
#ifdef LIBPQ_HAS_ASYNC_CANCEL
	/* built for libpq 17+: its own non-blocking API, never the layout */
	assert_string_equal(m, "libpq");
#else
	/* built for an older libpq: the compat path, refused on a newer one */
	assert_string_equal(m, PQlibVersion() < 170000 ? "compat" : "none");
#endif
}

/* A query past DB_QUERY_TIMEOUT: the server confirms the cancel (57014),
 * the backend's query is gone at once, and the connection stays usable. */
static void test_timed_out_query_is_cancelled(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	PGresult *r = NULL;
	int64_t t0, el, gone;
	int pid;
	(void)state;
	if (strcmp(pqpool__cancel_method(), "none") == 0)
		skip();
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	cfg.query_timeout_ms = 300;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	pid = PQbackendPID(pqpool_conn_pg(c));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ETIMEDOUT,
	              pqpool_exec(c, "SELECT pg_sleep(30)", 0, NULL, &r));
	el = testenv_now_ms() - t0;
	/* the server's answer to the cancel, not the 2 s grace running out */
	assert_string_equal(pqpool_errcode(), "57014");
	assert_non_null(strstr(pqpool_errmsg(), "cancelled after"));
	assert_null(r);
	assert_true(el >= 290);
	assert_true(el < 2000);
	gone = query_gone_within(pid, 100);
	printf("cancelled after %lld ms; the backend's query gone %lld ms after\n",
	       (long long)el, (long long)gone);
	if (gone < 0)
		fail_msg("backend %d still runs its query 100 ms after the cancel: %s",
		         pid, activity(pid));
	/* the same connection answers the next query */
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT pg_backend_pid()", 0, NULL, &r));
	assert_int_equal(atoi(PQgetvalue(r, 0, 0)), pid);
	PQclear(r);
	pqpool_release(c);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.query_timeouts, 1);
	assert_int_equal(st.total, 1); /* kept */
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

struct holder {
	pqpool_conn *c;
	int status;
};

static void *run_long(void *arg)
{
	struct holder *h = arg;
	h->status = pqpool_exec(h->c, "SELECT pg_sleep(30)", 0, NULL, NULL);
	pqpool_release(h->c);
	return NULL;
}

/* A pool closing past its drain time cancels the queries of the leases
 * still out: their backends stop working for a caller that is gone. */
static void test_close_cancels_leases(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	struct holder h;
	pthread_t th;
	int64_t gone;
	int pid;
	(void)state;
	if (strcmp(pqpool__cancel_method(), "none") == 0)
		skip();
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	cfg.query_timeout_ms = 0; /* only the close ends it */
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &h.c));
	pid = PQbackendPID(pqpool_conn_pg(h.c));
	assert_int_equal(pthread_create(&th, NULL, run_long, &h), 0);
	/* until the backend runs it */
	for (int i = 0; i < 200 && strncmp(activity(pid), "active:", 7) != 0; i++)
		testenv_sleep_ms(5);
	assert_int_equal(strncmp(activity(pid), "active:SELECT pg_sleep", 22), 0);
	assert_status(PQPOOL_EBUSY, pqpool_close(p, 100));
	gone = query_gone_within(pid, 100);
	if (gone < 0)
		fail_msg("backend %d still runs its query 100 ms after close: %s", pid,
		         activity(pid));
	pthread_join(th, NULL);
	assert_int_not_equal(h.status, PQPOOL_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_path),
	        cmocka_unit_test(test_timed_out_query_is_cancelled),
	        cmocka_unit_test(test_close_cancels_leases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
