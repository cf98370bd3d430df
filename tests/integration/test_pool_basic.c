/* test_pool_basic.c — the pool against a real PostgreSQL: the spec's tests,
 * exhaustion, reaping, clean release, timeouts, retry classification, health. */
#include "testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pqpool *open_pool(pqpool_config *cfg)
{
	pqpool *p = NULL;
	assert_status(PQPOOL_OK, pqpool_open(cfg, &p));
	assert_non_null(p);
	return p;
}

/* The specification's "Database Connection Manager" tests. */
static void test_spec_lifecycle(void **state)
{
	pqpool_config cfg;
	pqpool_health h;
	pqpool_stats st;
	pqpool_conn *c;
	pqpool *p;
	PGresult *r;
	(void)state;
	testenv_config(&cfg);
	assert_int_equal(testenv_backends_settled(0), 0); /* nothing left from before */
	p = open_pool(&cfg);

	/* warmed to DB_POOL_MIN on open */
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.total, 5);
	assert_int_equal(st.idle, 5);
	assert_int_equal(testenv_backends_settled(5), 5);

	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_HEALTHY);
	assert_true(h.response_ms > 0.0);
	assert_true(h.response_ms < 1000.0);
	assert_int_equal(h.connection_count, 5);
	assert_string_equal(h.error, "");
	assert_true(h.checked_at_ms > 1700000000000LL);

	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_non_null(pqpool_conn_pg(c));
	r = PQexec(pqpool_conn_pg(c), "SELECT current_user");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "hyperpage");
	PQclear(r);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.active, 1);
	assert_int_equal(st.idle, 4);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.active, 0);
	assert_int_equal(st.total, st.active + st.idle);

	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
	/* everything closed on the server side too */
	assert_int_equal(testenv_backends_settled(0), 0);
}

static void test_query_params(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	PGresult *r = NULL;
	const char *params[] = {"7", NULL, "it's"};
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 0;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK,
	              pqpool_query(p, "SELECT $1::int * 6, $2::text IS NULL, $3::text", 3,
	                           params, 0, &r));
	assert_string_equal(PQgetvalue(r, 0, 0), "42");
	assert_string_equal(PQgetvalue(r, 0, 1), "t");
	assert_string_equal(PQgetvalue(r, 0, 2), "it's");
	PQclear(r);
	/* the spec's performance query */
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT $1 as test, NOW() as timestamp",
	                                      1, params, PQPOOL_IDEMPOTENT, &r));
	assert_string_equal(PQgetvalue(r, 0, 0), "7");
	PQclear(r);
	assert_status(PQPOOL_EINVAL, pqpool_query(p, "SELECT $1", 1, NULL, 0, &r));
	assert_null(r);
	assert_status(PQPOOL_EINVAL, pqpool_query(p, "", 0, NULL, 0, &r));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- exhaustion ---- */

struct waiter_arg {
	pqpool *p;
	int timeout_ms;
	int status;
	int64_t elapsed_ms;
	char msg[512];
};

static void *waiter(void *arg)
{
	struct waiter_arg *w = arg;
	pqpool_conn *c = NULL;
	int64_t t0 = testenv_now_ms();
	w->status = pqpool_acquire(w->p, w->timeout_ms, &c);
	w->elapsed_ms = testenv_now_ms() - t0;
	snprintf(w->msg, sizeof w->msg, "%s", pqpool_errmsg());
	if (c)
		pqpool_release(c);
	return NULL;
}

static void test_exhaustion_times_out(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *held[3];
	pqpool_stats st;
	pthread_t th[2];
	struct waiter_arg wa[2];
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 3;
	cfg.pool_min = 0;
	cfg.connection_timeout_ms = 600;
	p = open_pool(&cfg);
	for (int i = 0; i < 3; i++)
		assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &held[i]));
	for (int i = 0; i < 2; i++) {
		memset(&wa[i], 0, sizeof wa[i]);
		wa[i].p = p;
		wa[i].timeout_ms = -1; /* the pool's DB_CONNECTION_TIMEOUT */
		pthread_create(&th[i], NULL, waiter, &wa[i]);
	}
	/* while they wait, the pool says so */
	for (int i = 0; i < 100; i++) {
		pqpool_stats_get(p, &st);
		if (st.waiting == 2)
			break;
		testenv_sleep_ms(5);
	}
	assert_int_equal(st.waiting, 2);
	assert_int_equal(st.active, 3);
	assert_int_equal(st.total, 3);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_status(PQPOOL_ETIMEDOUT, wa[i].status);
		/* no earlier than the timeout, well before twice it */
		assert_true(wa[i].elapsed_ms >= 600);
		assert_true(wa[i].elapsed_ms < 1200);
		assert_non_null(strstr(wa[i].msg, "timed out"));
	}
	pqpool_stats_get(p, &st);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(st.acquire_timeouts, 2);
	for (int i = 0; i < 3; i++)
		pqpool_release(held[i]);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* A release hands the connection to the oldest waiter. */
struct fifo_arg {
	pqpool *p;
	int id;
	int *order;
	int *norder;
	pthread_mutex_t *mu;
};

static void *fifo_waiter(void *arg)
{
	struct fifo_arg *f = arg;
	pqpool_conn *c;
	if (pqpool_acquire(f->p, 5000, &c) != PQPOOL_OK)
		return NULL;
	pthread_mutex_lock(f->mu);
	f->order[(*f->norder)++] = f->id;
	pthread_mutex_unlock(f->mu);
	testenv_sleep_ms(10);
	pqpool_release(c);
	return NULL;
}

static void test_fifo_waiters(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	pthread_t th[4];
	struct fifo_arg fa[4];
	int order[4], norder = 0;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 1;
	cfg.pool_min = 1;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	for (int i = 0; i < 4; i++) {
		fa[i] = (struct fifo_arg){p, i, order, &norder, &mu};
		pthread_create(&th[i], NULL, fifo_waiter, &fa[i]);
		/* wait until this one is queued before starting the next */
		for (int k = 0; k < 200; k++) {
			pqpool_stats_get(p, &st);
			if (st.waiting == i + 1)
				break;
			testenv_sleep_ms(2);
		}
		assert_int_equal(st.waiting, i + 1);
	}
	pqpool_release(c);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(norder, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(order[i], i);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- idle reaping and lifetime ---- */

static void test_idle_reaping_to_min(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c[6];
	pqpool_stats st;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 6;
	cfg.pool_min = 2;
	cfg.idle_timeout_ms = 300;
	p = open_pool(&cfg);
	for (int i = 0; i < 6; i++)
		assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c[i]));
	for (int i = 0; i < 6; i++)
		pqpool_release(c[i]);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.total, 6);
	testenv_sleep_ms(450);
	/* lazily: the next release runs the upkeep */
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c[0]));
	pqpool_release(c[0]);
	pqpool_stats_get(p, &st);
	/* never below the minimum; the connection just used is fresh */
	assert_int_equal(st.total, 2);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_IDLE], 4);
	testenv_sleep_ms(450);
	assert_status(PQPOOL_OK, pqpool_maintain(p));
	pqpool_stats_get(p, &st);
	assert_int_equal(st.total, 2);
	assert_int_equal(testenv_backends_settled(2), 2);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_max_lifetime(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	char pid1[32];
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 2;
	cfg.pool_min = 1;
	cfg.max_lifetime_ms = 300;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	snprintf(pid1, sizeof pid1, "%d", PQbackendPID(pqpool_conn_pg(c)));
	pqpool_release(c);
	testenv_sleep_ms(350);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	{
		char pid2[32];
		snprintf(pid2, sizeof pid2, "%d", PQbackendPID(pqpool_conn_pg(c)));
		assert_string_not_equal(pid1, pid2);
	}
	pqpool_release(c);
	pqpool_stats_get(p, &st);
	assert_true(st.closed_by[PQPOOL_CLOSE_LIFETIME] >= 1);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- release hygiene ---- */

static void test_release_in_transaction_is_clean(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	PGresult *r;
	int pid;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_max = 1;
	cfg.pool_min = 1;
	p = open_pool(&cfg);

	/* an open transaction is rolled back */
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	pid = PQbackendPID(pqpool_conn_pg(c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "BEGIN", 0, NULL, NULL));
	assert_status(PQPOOL_OK,
	              pqpool_exec(c, "CREATE TEMP TABLE leak(x int)", 0, NULL, NULL));
	assert_int_equal(PQtransactionStatus(pqpool_conn_pg(c)), PQTRANS_INTRANS);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_equal(PQbackendPID(pqpool_conn_pg(c)),
	                 pid); /* same connection, kept */
	assert_int_equal(PQtransactionStatus(pqpool_conn_pg(c)), PQTRANS_IDLE);
	assert_status(PQPOOL_OK,
	              pqpool_exec(c, "SELECT to_regclass('pg_temp.leak') IS NULL", 0,
	                          NULL, &r));
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);

	/* a failed transaction too */
	assert_status(PQPOOL_OK, pqpool_exec(c, "BEGIN", 0, NULL, NULL));
	assert_status(PQPOOL_EQUERY, pqpool_exec(c, "SELECT 1/0", 0, NULL, NULL));
	assert_string_equal(pqpool_errcode(), "22012");
	assert_int_equal(PQtransactionStatus(pqpool_conn_pg(c)), PQTRANS_INERROR);
	pqpool_release(c);
	/* the caller's error survives the rollback in release */
	assert_string_equal(pqpool_errcode(), "22012");
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_equal(PQbackendPID(pqpool_conn_pg(c)), pid);
	assert_int_equal(PQtransactionStatus(pqpool_conn_pg(c)), PQTRANS_IDLE);

	/* a command still in progress cannot be kept: discarded and counted */
	assert_true(PQsendQuery(pqpool_conn_pg(c), "SELECT pg_sleep(0.05)"));
	pqpool_release(c);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.rollbacks, 2);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_UNCLEAN], 1);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_not_equal(PQbackendPID(pqpool_conn_pg(c)), pid);
	pqpool_discard(c);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_DISCARDED], 1);
	assert_int_equal(st.total, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- timeouts ---- */

static void test_statement_timeout(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	PGresult *r;
	int64_t t0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 0;
	cfg.statement_timeout_ms = 250;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SHOW statement_timeout", 0, NULL, &r));
	assert_string_equal(PQgetvalue(r, 0, 0), "250ms");
	PQclear(r);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_EQUERY, pqpool_exec(c, "SELECT pg_sleep(3)", 0, NULL, NULL));
	assert_string_equal(pqpool_errcode(), "57014");
	assert_true(testenv_now_ms() - t0 < 2000);
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT 1", 0, NULL, NULL));
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_query_timeout_cancels(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	int64_t t0, el;
	int pid;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 0;
	cfg.statement_timeout_ms = 0;
	cfg.query_timeout_ms = 300;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	pid = PQbackendPID(pqpool_conn_pg(c));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ETIMEDOUT,
	              pqpool_exec(c, "SELECT pg_sleep(5)", 0, NULL, NULL));
	el = testenv_now_ms() - t0;
	assert_true(el >= 300);
	assert_true(el < 2000);
	assert_non_null(strstr(pqpool_errmsg(), "DB_QUERY_TIMEOUT"));
	/* the server really stopped: the backend is idle and the lease usable */
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT 1", 0, NULL, NULL));
	assert_string_equal(
	        testenv_admin("SELECT state FROM pg_stat_activity WHERE pid = %d", pid),
	        "idle");
	pqpool_release(c);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.query_timeouts, 1);
	assert_int_equal(st.total, 1); /* kept: the cancel left it clean */
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- retry ---- */

static int calls;

static int syntax_error(pqpool_conn *c, void *arg)
{
	(void)arg;
	calls++;
	return pqpool_exec(c, "SELEC 1", 0, NULL, NULL);
}

static int serialization_then_ok(pqpool_conn *c, void *arg)
{
	(void)arg;
	if (++calls < 3)
		return pqpool_exec(c,
		                   "DO $$BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE "
		                   "= '40001'; END$$",
		                   0, NULL, NULL);
	return pqpool_exec(c, "SELECT 1", 0, NULL, NULL);
}

static void test_retry_classification(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_stats st;
	int64_t t0;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 0;
	cfg.retry_base_delay_ms = 50;
	p = open_pool(&cfg);

	/* a non-retryable error is returned after one attempt */
	calls = 0;
	t0 = testenv_now_ms();
	assert_status(PQPOOL_EQUERY, pqpool_run(p, "migration", syntax_error, NULL));
	assert_int_equal(calls, 1);
	assert_true(testenv_now_ms() - t0 < 500);
	assert_string_equal(pqpool_errcode(), "42601");
	assert_non_null(
	        strstr(pqpool_errmsg(), "database migration failed after 1 attempt: "));
	assert_non_null(strstr(pqpool_errmsg(), "syntax error"));

	assert_status(PQPOOL_EQUERY,
	              pqpool_query(p, "SELEC 1", 0, NULL, PQPOOL_IDEMPOTENT, NULL));
	assert_non_null(
	        strstr(pqpool_errmsg(), "database query failed after 1 attempt: "));
	pqpool_stats_get(p, &st);
	assert_int_equal(st.retries, 0);

	/* serialization failures are retried, with backoff, up to success */
	calls = 0;
	assert_status(PQPOOL_OK, pqpool_run(p, "transfer", serialization_then_ok, NULL));
	assert_int_equal(calls, 3);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.retries, 2);

	/* ... and up to DB_RETRY_ATTEMPTS, with the spec's final message */
	calls = -10;
	assert_status(PQPOOL_EQUERY,
	              pqpool_run(p, "transfer", serialization_then_ok, NULL));
	assert_int_equal(calls, -7);
	assert_non_null(
	        strstr(pqpool_errmsg(), "database transfer failed after 3 attempts: "));
	assert_string_equal(pqpool_errcode(), "40001");

	/* without PQPOOL_IDEMPOTENT a sent statement is not run again */
	calls = 0;
	assert_status(
	        PQPOOL_EQUERY,
	        pqpool_query(
	                p,
	                "DO $$BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END$$",
	                0, NULL, 0, NULL));
	assert_non_null(strstr(pqpool_errmsg(), "after 1 attempt"));
	assert_status(
	        PQPOOL_EQUERY,
	        pqpool_query(
	                p,
	                "DO $$BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END$$",
	                0, NULL, PQPOOL_IDEMPOTENT, NULL));
	assert_non_null(strstr(pqpool_errmsg(), "after 3 attempts"));

	pqpool_stats_get(p, &st);
	assert_true(st.query_errors >= 9);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- health ---- */

struct health_arg {
	pqpool *p;
	pqpool_health h;
};

static void *health_thread(void *arg)
{
	struct health_arg *a = arg;
	pqpool_check_health(a->p, &a->h);
	return NULL;
}

static uint64_t burst(pqpool *p, int n)
{
	pthread_t th[32];
	struct health_arg a[32];
	pqpool_stats before, after;
	pqpool_stats_get(p, &before);
	for (int i = 0; i < n; i++) {
		a[i].p = p;
		pthread_create(&th[i], NULL, health_thread, &a[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		assert_int_not_equal(a[i].h.status, PQPOOL_UNHEALTHY);
		assert_true(a[i].h.response_ms >= 150.0);
	}
	pqpool_stats_get(p, &after);
	return after.queries - before.queries;
}

static void test_health_shared_and_degraded(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_health h;
	uint64_t q;
	(void)state;
	testenv_config(&cfg);
	cfg.health_query = "SELECT pg_sleep(0.2)";
	cfg.health_slow_ms = 100;
	p = open_pool(&cfg);
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_DEGRADED);
	assert_non_null(strstr(h.error, "slow"));
	/* 24 concurrent checks share probes in flight */
	q = burst(p, 24);
	assert_true(q >= 1);
	assert_true(q <= 4);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));

	cfg.health_share = false;
	cfg.pool_max = 30;
	p = open_pool(&cfg);
	q = burst(p, 24);
	assert_int_equal(q, 24);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* pqpool_check_health_within: the caller's bound holds whether it joins a
 * probe in flight or runs its own. */
static void test_health_within(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_health h;
	pthread_t th;
	struct health_arg a;
	int64_t t0, ms;
	(void)state;
	testenv_config(&cfg);
	cfg.health_query = "SELECT pg_sleep(0.6)";
	cfg.connection_timeout_ms = 3000;
	p = open_pool(&cfg);

	/* joins the 600 ms probe another thread started: gives up at 150 ms */
	a.p = p;
	pthread_create(&th, NULL, health_thread, &a);
	testenv_sleep_ms(100);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_check_health_within(p, 150, &h));
	ms = testenv_now_ms() - t0;
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(h.error,
	                       "timed out after 150 ms waiting for the probe in flight"));
	assert_in_range(ms, 140, 450);
	pthread_join(th, NULL);
	/* the probe it gave up on was not cut short for the others */
	assert_int_not_equal(a.h.status, PQPOOL_UNHEALTHY);

	/* its own probe ends at its bound, not at connection_timeout_ms */
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK, pqpool_check_health_within(p, 200, &h));
	ms = testenv_now_ms() - t0;
	assert_int_equal(h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(h.error, "timed out"));
	assert_in_range(ms, 190, 900);

	/* 0 and a bound past the pool's mean the pool's: the probe answers */
	assert_status(PQPOOL_OK, pqpool_check_health_within(p, 0, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_OK, pqpool_check_health_within(p, 1000000, &h));
	assert_int_not_equal(h.status, PQPOOL_UNHEALTHY);
	assert_status(PQPOOL_EINVAL, pqpool_check_health_within(NULL, 100, &h));
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* ---- lease warnings ---- */

static void test_lease_warning_once(void **state)
{
	pqpool_config cfg;
	pqpool *p;
	pqpool_conn *c;
	pqpool_stats st;
	char where[64];
	int line;
	(void)state;
	testenv_config(&cfg);
	cfg.pool_min = 0;
	cfg.lease_warn_ms = 100;
	p = open_pool(&cfg);
	testenv_log_reset();
	line = __LINE__ + 1;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	testenv_sleep_ms(150);
	pqpool_maintain(p);
	testenv_sleep_ms(150);
	pqpool_maintain(p);
	snprintf(where, sizeof where, "test_pool_basic.c:%d", line);
	assert_int_equal(testenv_log_count(where), 1);
	pqpool_release(c);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.lease_warnings, 1);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_spec_lifecycle),
	        cmocka_unit_test(test_query_params),
	        cmocka_unit_test(test_exhaustion_times_out),
	        cmocka_unit_test(test_fifo_waiters),
	        cmocka_unit_test(test_idle_reaping_to_min),
	        cmocka_unit_test(test_max_lifetime),
	        cmocka_unit_test(test_release_in_transaction_is_clean),
	        cmocka_unit_test(test_statement_timeout),
	        cmocka_unit_test(test_query_timeout_cancels),
	        cmocka_unit_test(test_retry_classification),
	        cmocka_unit_test(test_health_shared_and_degraded),
	        cmocka_unit_test(test_health_within),
	        cmocka_unit_test(test_lease_warning_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
