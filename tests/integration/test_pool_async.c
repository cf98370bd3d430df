/* test_pool_async.c — queries and health probes without blocking, against a
 * real server: send, poll on the socket, finish; many in flight from one
 * thread; no free connection; past the deadline; failing queries; a
 * connection killed mid-probe. */
#include "testenv.h"
#include "slot.h" /* white-box: a probe's backend */

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
static int drive(pqpool_probe *pr, pqpool_health *h)
{
	int polls = 0;
	for (;;) {
		struct pollfd pfd = {.fd = pqpool_probe_socket(pr), .events = POLLIN};
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
	pqpool_probe *pr;
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
	pqpool_conn *c;
	pqpool_probe *pr = NULL;
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
	pqpool_probe *pr;
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
	pqpool_probe *pr;
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
	testenv_admin("SELECT pg_terminate_backend(%d)",
	              PQbackendPID(pqpool__slot_of_probe(pr)->link.pg));
	drive(pr, &h);
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_true(h.error[0] != '\0');
	/* and the blocking check replaces the dead connection */
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* Waits for a query in flight the way an event loop would, then finishes
 * it. */
static int run_one(pqpool_inflight *q, PGresult **res)
{
	while (pqpool_poll(q) == PQPOOL_EAGAIN) {
		struct pollfd pfd = {.fd = pqpool_inflight_socket(q), .events = POLLIN};
		poll(&pfd, 1, pqpool_poll_timeout_ms(q));
	}
	return pqpool_finish(q, res);
}

static void many_in_flight(bool prepare)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_inflight *q[8], *extra = NULL;
	char vals[8][16];
	const char *params[8][1];
	pqpool_stats st;
	int done = 0;
	testenv_config(&cfg);
	cfg.pool_min = 8;
	cfg.pool_max = 8;
	cfg.prepare = prepare;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 8; i++) {
			snprintf(vals[i], sizeof vals[i], "%d", round * 100 + i);
			params[i][0] = vals[i];
			assert_status(PQPOOL_OK, pqpool_send(p, "SELECT $1::int + 1000",
			                                     1, params[i], &q[i]));
		}
		/* every connection in flight: the next one must not wait */
		assert_status(PQPOOL_EAGAIN, pqpool_send(p, "SELECT 1", 0, NULL, &extra));
		assert_null(extra);
		/* one thread collects all eight, in whatever order they come */
		done = 0;
		while (done < 8) {
			struct pollfd pfd[8];
			int n = 0, map[8];
			for (int i = 0; i < 8; i++)
				if (q[i]) {
					pfd[n] = (struct pollfd){
					        pqpool_inflight_socket(q[i]), POLLIN, 0};
					map[n++] = i;
				}
			assert_true(poll(pfd, (nfds_t)n, 5000) > 0);
			for (int k = 0; k < n; k++) {
				int i = map[k];
				PGresult *r;
				char want[16];
				if (!pfd[k].revents || pqpool_poll(q[i]) != PQPOOL_OK)
					continue;
				assert_status(PQPOOL_OK, pqpool_finish(q[i], &r));
				snprintf(want, sizeof want, "%d", round * 100 + i + 1000);
				assert_string_equal(PQgetvalue(r, 0, 0), want);
				PQclear(r);
				q[i] = NULL;
				done++;
			}
		}
	}
	pqpool_stats_get(p, &st);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.total, 8);
	assert_int_equal(st.queries, 24);
	assert_int_equal(st.query_errors, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_send_many_in_flight(void **state)
{
	(void)state;
	many_in_flight(true);
	many_in_flight(false);
}

static void test_send_failures(void **state)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_inflight *q;
	pqpool_stats st;
	PGresult *r = (PGresult *)1;
	int64_t t0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	cfg.query_timeout_ms = 300;
	cfg.statement_timeout_ms = 0;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	/* a server error, with its SQLSTATE, after finish */
	assert_status(PQPOOL_OK, pqpool_send(p, "SELEC 1", 0, NULL, &q));
	assert_status(PQPOOL_EQUERY, run_one(q, &r));
	assert_null(r);
	assert_string_equal(pqpool_errcode(), "42601");
	/* past the deadline: timed out, the connection given up */
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_send(p, "SELECT pg_sleep(3)", 0, NULL, &q));
	assert_true(pqpool_poll_timeout_ms(q) > 0);
	assert_status(PQPOOL_ETIMEDOUT, run_one(q, NULL));
	assert_true(testenv_now_ms() - t0 < 1500);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.total, 0);
	assert_int_equal(st.query_errors, 2);
	/* bad arguments */
	assert_status(PQPOOL_EINVAL, pqpool_send(p, NULL, 0, NULL, &q));
	assert_null(q);
	assert_status(PQPOOL_EINVAL, pqpool_send(p, "SELECT $1", 1, NULL, &q));
	assert_status(PQPOOL_EINVAL, pqpool_finish(NULL, NULL));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_send_many_in_flight),
	        cmocka_unit_test(test_send_failures),
	        cmocka_unit_test(test_probe_healthy),
	        cmocka_unit_test(test_probe_never_waits),
	        cmocka_unit_test(test_probe_deadline),
	        cmocka_unit_test(test_probe_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
