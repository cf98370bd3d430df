/* test_pool_faults.c — the pool when the server goes away: terminated
 * backends, a restart under run-with-retry, the server down and back, and
 * close with leases still out. Restarts the fixture's cluster. */
#include "testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pqpool *open_pool(pqpool_config *cfg)
{
	pqpool *p = NULL;
	assert_status(PQPOOL_OK, pqpool_open(cfg, &p));
	return p;
}

static void server_start(void)
{
	assert_int_equal(testenv_pgctl("start -w -t 60"), 0);
}

/* Idle connections killed by the server are replaced, unseen by callers. */
static void test_terminated_idle_connections_are_replaced(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_stats st;
	pqpool_conn *c[3];
	PGresult *r;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 3;
	cfg.pool_max = 3;
	p = open_pool(&cfg);
	/* only ours: sessions of earlier tests may still be exiting */
	assert_int_equal(testenv_backends_settled(3), 3);
	assert_string_equal(testenv_admin("SELECT count(pg_terminate_backend(pid)) FROM "
	                                  "pg_stat_activity WHERE usename = 'hyperpage'"),
	                    "3");
	/* idle past the check threshold (validate_after_ms = 1000) */
	testenv_sleep_ms(1100);
	/* no retry: the query must not fail in the first place */
	for (int i = 0; i < 3; i++) {
		assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 1", 0, NULL, 0, &r));
		PQclear(r);
	}
	/* all three at once, so that every dead one had to be replaced */
	for (int i = 0; i < 3; i++)
		assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c[i]));
	for (int i = 0; i < 3; i++) {
		assert_status(PQPOOL_OK, pqpool_exec(c[i], "SELECT 1", 0, NULL, NULL));
		pqpool_release(c[i]);
	}
	pqpool_stats_get(p, &st);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_BROKEN], 3);
	assert_int_equal(st.query_errors, 0);
	assert_int_equal(st.total, 3);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* A connection killed while leased breaks the query; pqpool_query retries
 * it only when told it is idempotent. */
static void test_terminated_leased_connection(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	testenv_admin("SELECT pg_terminate_backend(%d)", PQbackendPID(pqpool_conn_pg(c)));
	testenv_sleep_ms(50);
	assert_status(PQPOOL_ECONNLOST, pqpool_exec(c, "SELECT 1", 0, NULL, NULL));
	pqpool_release(c); /* closed, not returned */
	pqpool_stats_get(p, &st);
	assert_int_equal(st.total, 0);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_BROKEN], 1);
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static int restart_calls;

static int restart_then_query(pqpool_conn *c, void *arg)
{
	(void)arg;
	if (++restart_calls == 1)
		assert_int_equal(testenv_pgctl("restart -m fast -w -t 60"), 0);
	return pqpool_exec(c, "SELECT 1", 0, NULL, NULL);
}

static void test_restart_during_run_with_retry(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_stats st;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 2;
	cfg.retry_base_delay_ms = 100;
	p = open_pool(&cfg);
	restart_calls = 0;
	testenv_log_reset();
	assert_status(PQPOOL_OK, pqpool_run(p, "restart test", restart_then_query, NULL));
	assert_int_equal(restart_calls, 2);
	assert_true(testenv_log_has("database restart test attempt 1 failed"));
	pqpool_stats_get(p, &st);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.active, 0);
	/* the other pre-restart connection is dead too, and gets replaced */
	testenv_sleep_ms(1100);
	for (int i = 0; i < 4; i++)
		assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_server_down_and_back(void **state)
{
	pqpool_config cfg;
	pqpool *p, *q = NULL;
	pqpool_health h;
	pqpool_stats st;
	int64_t t0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 2;
	cfg.connection_timeout_ms = 1500;
	p = open_pool(&cfg);

	assert_int_equal(testenv_pgctl("stop -m fast -w"), 0);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_true(h.error[0] != '\0');
	assert_true(testenv_now_ms() - t0 < 1500 + 500);
	assert_true(h.response_ms > 0.0);

	/* a pool opened while the database is down opens empty ... */
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &q));
	assert_true(testenv_now_ms() - t0 < 1500 + 500);
	pqpool_stats_get(q, &st);
	assert_int_equal(st.total, 0);
	assert_status(PQPOOL_OK, pqpool_check_health(q, &h));
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(h.error, "could not connect"));
	/* ... unless asked to fail fast */
	{
		pqpool *r = NULL;
		cfg.fail_fast = true;
		assert_status(PQPOOL_ECONNECT, pqpool_open(&cfg, &r));
		assert_null(r);
		cfg.fail_fast = false;
	}

	server_start();
	/* both recover without being reopened */
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_OK, pqpool_maintain(q));
	pqpool_stats_get(q, &st);
	assert_int_equal(st.total, 2);
	assert_status(PQPOOL_OK, pqpool_check_health(q, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_OK, pqpool_close(q, 1000));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- close ---- */

struct holder {
	pqpool *p;
	int hold_ms;
	int status;
	int64_t done_ms;
};

static void *hold_then_release(void *arg)
{
	struct holder *h = arg;
	pqpool_conn *c;
	h->status = pqpool_acquire(h->p, -1, &c);
	if (h->status != PQPOOL_OK)
		return NULL;
	testenv_sleep_ms(h->hold_ms);
	pqpool_release(c);
	return NULL;
}

static void test_close_drains_leases(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pthread_t th;
	struct holder h;
	int64_t t0, el;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	p = open_pool(&cfg);
	h = (struct holder){p, 300, -99, 0};
	pthread_create(&th, NULL, hold_then_release, &h);
	testenv_sleep_ms(50);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_close(p, 3000));
	el = testenv_now_ms() - t0;
	pthread_join(th, NULL);
	assert_status(PQPOOL_OK, h.status);
	assert_true(el >= 200); /* waited for the lease */
	assert_true(el < 1500); /* and not for the whole drain time */
}

static void *acquire_expect_closed(void *arg)
{
	struct holder *h = arg;
	pqpool_conn *c = NULL;
	h->status = pqpool_acquire(h->p, 10000, &c);
	h->done_ms = testenv_now_ms();
	if (c)
		pqpool_release(c);
	return NULL;
}

struct stuck {
	pqpool *p;
	int exec_status;
	int64_t exec_ms;
};

static void *stuck_in_query(void *arg)
{
	struct stuck *s = arg;
	pqpool_conn *c;
	int64_t t0;
	if (pqpool_acquire(s->p, -1, &c) != PQPOOL_OK)
		return NULL;
	t0 = testenv_now_ms();
	s->exec_status = pqpool_exec(c, "SELECT pg_sleep(20)", 0, NULL, NULL);
	s->exec_ms = testenv_now_ms() - t0;
	pqpool_release(c); /* frees the closed pool: the last lease */
	return NULL;
}

static void test_close_gives_up_after_drain_timeout(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pthread_t th, tw;
	struct stuck s = {0};
	struct holder w;
	int64_t t0, el;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	p = open_pool(&cfg);
	s.p = p;
	pthread_create(&th, NULL, stuck_in_query, &s);
	testenv_sleep_ms(100);
	/* a waiter behind the stuck lease */
	w = (struct holder){p, 0, -99, 0};
	pthread_create(&tw, NULL, acquire_expect_closed, &w);
	testenv_sleep_ms(100);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_EBUSY, pqpool_close(p, 400));
	el = testenv_now_ms() - t0;
	assert_true(el >= 400);
	assert_true(el < 1500);
	pthread_join(tw, NULL);
	assert_status(PQPOOL_ECLOSED, w.status);
	assert_true(w.done_ms - t0 < 300); /* woken at once, not at its timeout */
	pthread_join(th, NULL);
	/* the stuck query was cut short, not left to run 20 s */
	assert_int_not_equal(s.exec_status, PQPOOL_OK);
	assert_true(s.exec_ms < 5000);
	/* and the server is not still sleeping for us */
	for (int i = 0; i < 100; i++) {
		if (atoi(testenv_admin(
		            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
		            "'SELECT pg_sleep(20)%%' AND pid <> pg_backend_pid()")) == 0)
			break;
		testenv_sleep_ms(20);
	}
	assert_string_equal(
	        testenv_admin("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
	                      "'SELECT pg_sleep(20)%%' AND pid <> pg_backend_pid()"),
	        "0");
}

struct closer {
	pqpool *p;
	int drain_ms;
	int status;
};

static void *close_thread(void *arg)
{
	struct closer *cl = arg;
	cl->status = pqpool_close(cl->p, cl->drain_ms);
	return NULL;
}

/* While a close drains, new acquires fail at once with a clear status. */
static void test_acquire_while_closing(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c, *c2 = NULL;
	pthread_t th;
	struct closer cl;
	int64_t t0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 2;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	cl = (struct closer){p, 5000, -99};
	pthread_create(&th, NULL, close_thread, &cl);
	testenv_sleep_ms(100);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ECLOSED, pqpool_acquire(p, 3000, &c2));
	assert_null(c2);
	assert_true(testenv_now_ms() - t0 < 100);
	assert_non_null(strstr(pqpool_errmsg(), "pool closed"));
	/* the lease still works until given back */
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT 1", 0, NULL, NULL));
	pqpool_release(c);
	pthread_join(th, NULL);
	assert_status(PQPOOL_OK, cl.status);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_terminated_idle_connections_are_replaced),
	        cmocka_unit_test(test_terminated_leased_connection),
	        cmocka_unit_test(test_restart_during_run_with_retry),
	        cmocka_unit_test(test_server_down_and_back),
	        cmocka_unit_test(test_close_drains_leases),
	        cmocka_unit_test(test_close_gives_up_after_drain_timeout),
	        cmocka_unit_test(test_acquire_while_closing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
