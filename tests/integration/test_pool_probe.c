/* test_pool_probe.c — the non-blocking health probe against a real server:
 * start, poll on the socket, finish; no free connection; a probe past its
 * deadline; a failing query; a connection killed mid-probe. */
#include "testenv.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

static pqpool *open_with(const char *health_query, int max, int timeout_ms)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.pool_min = max;
	cfg.pool_max = max;
	cfg.connection_timeout_ms = timeout_ms;
	if (health_query)
		cfg.health_query = health_query;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

/* Drives a probe the way an event loop would; returns how many polls it
 * took. */
static int drive(pqpool_conn *pr, pqpool_health *h)
{
	int polls = 0;
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(pqpool_conn_pg(pr)), .events = POLLIN};
		int rc;
		poll(&pfd, 1, pqpool_probe_timeout_ms(pr));
		polls++;
		rc = pqpool_probe_poll(pr);
		if (rc == PQPOOL_OK)
			break;
		assert_status(PQPOOL_EAGAIN, rc);
		assert_true(polls < 10000);
	}
	pqpool_probe_finish(pr, h);
	return polls;
}

static void test_probe_healthy(void **state)
{
	pqpool *p = open_with(NULL, 2, 2000);
	pqpool_conn *pr;
	pqpool_health h;
	pqpool_stats before, after;
	(void)state;
	pqpool_stats_get(p, &before);
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	assert_true(pqpool_probe_timeout_ms(pr) > 1000);
	/* the lease is out while the probe runs */
	pqpool_stats_get(p, &after);
	assert_int_equal(after.active, 1);
	drive(pr, &h);
	assert_int_equal(h.status, PQPOOL_HEALTHY);
	assert_true(h.response_ms > 0);
	assert_int_equal(h.connection_count, 2);
	assert_string_equal(h.error, "");
	pqpool_stats_get(p, &after);
	assert_int_equal(after.active, 0);
	assert_int_equal(after.queries, before.queries + 1);
	/* again: the statement cache and the same connection */
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	drive(pr, &h);
	assert_int_equal(h.status, PQPOOL_HEALTHY);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_probe_never_waits(void **state)
{
	pqpool *p = open_with(NULL, 1, 2000);
	pqpool_conn *c, *pr = NULL;
	int64_t t0;
	(void)state;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_EAGAIN, pqpool_probe_start(p, &pr));
	assert_null(pr);
	assert_true(testenv_now_ms() - t0 < 50);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	{
		pqpool_health h;
		drive(pr, &h);
		assert_int_equal(h.status, PQPOOL_HEALTHY);
	}
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_probe_deadline(void **state)
{
	pqpool *p = open_with("SELECT pg_sleep(2)", 1, 300);
	pqpool_conn *pr;
	pqpool_health h;
	pqpool_stats st;
	int64_t t0 = testenv_now_ms(), el;
	(void)state;
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	drive(pr, &h);
	el = testenv_now_ms() - t0;
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(h.error, "timed out"));
	assert_true(el >= 290);
	assert_true(el < 1000);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.total, 0); /* its connection was given up */
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_BROKEN], 1);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_probe_failures(void **state)
{
	pqpool *p = open_with("SELEC 1", 1, 2000);
	pqpool_conn *pr;
	pqpool_health h;
	(void)state;
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	drive(pr, &h);
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(h.error, "syntax error"));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));

	/* the backend killed while the probe waits */
	p = open_with("SELECT pg_sleep(1)", 1, 5000);
	assert_status(PQPOOL_OK, pqpool_probe_start(p, &pr));
	testenv_admin("SELECT pg_terminate_backend(%d)", PQbackendPID(pqpool_conn_pg(pr)));
	drive(pr, &h);
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_true(h.error[0] != '\0');
	/* and the blocking check replaces the dead connection */
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_probe_healthy),
	        cmocka_unit_test(test_probe_never_waits),
	        cmocka_unit_test(test_probe_deadline),
	        cmocka_unit_test(test_probe_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
