/* test_pool_close.c — closing a pool while other threads are inside it:
 * connecting to a database that hangs, retrying, probing health. Under the
 * sanitizer build these catch any use of the pool after it is freed. Also
 * the retry loop's bounds on connect failures. */
#include "testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char blackhole_url[256];

static pqpool *open_blackhole(pqpool_config *cfg, int *fd)
{
	pqpool *p = NULL;
	int port;
	*fd = testenv_blackhole(&port);
	snprintf(blackhole_url, sizeof blackhole_url,
	         "host=127.0.0.1 port=%d user=x dbname=x password=pw-blackhole "
	         "sslmode=disable",
	         port);
	pqpool_config_init(cfg);
	cfg->conninfo = blackhole_url;
	cfg->log_fn = testenv_log;
	cfg->pool_min = 0;
	cfg->pool_max = 2;
	cfg->connection_timeout_ms = 400;
	cfg->retry_base_delay_ms = 10;
	assert_status(PQPOOL_OK, pqpool_open(cfg, &p));
	return p;
}

struct job {
	pqpool *p;
	int kind; /* 0 acquire, 1 run, 2 query, 3 health */
	int status;
	pqpool_health h;
	int64_t ms;
	char msg[512];
};

static int sleepy(pqpool_conn *c, void *arg)
{
	(void)arg;
	return pqpool_exec(c, "SELECT pg_sleep(3)", 0, NULL, NULL);
}

static void *do_job(void *arg)
{
	struct job *j = arg;
	int64_t t0 = testenv_now_ms();
	pqpool_conn *c = NULL;
	switch (j->kind) {
	case 0:
		j->status = pqpool_acquire(j->p, -1, &c);
		if (c)
			pqpool_release(c);
		break;
	case 1:
		j->status = pqpool_run(j->p, "job", sleepy, NULL);
		break;
	case 2:
		j->status = pqpool_query(j->p, "SELECT pg_sleep(3)", 0, NULL,
		                         PQPOOL_IDEMPOTENT, NULL);
		break;
	default:
		j->status = pqpool_check_health(j->p, &j->h);
	}
	snprintf(j->msg, sizeof j->msg, "%s", pqpool_errmsg());
	j->ms = testenv_now_ms() - t0;
	return NULL;
}

/* close gives up at once while an acquire is still connecting */
static void test_close_while_connecting(void **state)
{
	pqpool_config cfg;
	int fd;
	pqpool *p = open_blackhole(&cfg, &fd);
	struct job j = {p, 0, -99, {0}, 0, ""};
	pthread_t th;
	(void)state;
	pthread_create(&th, NULL, do_job, &j);
	testenv_sleep_ms(100);
	assert_status(PQPOOL_EBUSY, pqpool_close(p, 0));
	pthread_join(th, NULL);
	assert_int_not_equal(j.status, PQPOOL_OK);
	assert_true(j.ms < 1000);
	close(fd);
}

/* close gives up while a retry loop, a one-shot query or shared health
 * probes are running slow queries: they end promptly, and the pool is freed
 * by the last of them */
static void run_close_during(int kind, int nthreads)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	struct job j[4];
	pthread_t th[4];
	int64_t t0;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 2;
	cfg.retry_base_delay_ms = 10;
	cfg.health_query = "SELECT pg_sleep(3)";
	cfg.connection_timeout_ms = 5000;
	cfg.query_timeout_ms = 0;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct job){p, kind, -99, {0}, 0, ""};
		pthread_create(&th[i], NULL, do_job, &j[i]);
	}
	testenv_sleep_ms(300);
	t0 = testenv_now_ms();
	assert_status(PQPOOL_EBUSY, pqpool_close(p, 200));
	assert_true(testenv_now_ms() - t0 < 1500);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (kind == 3) {
			assert_int_equal(j[i].h.status, PQPOOL_UNHEALTHY);
		} else {
			assert_int_not_equal(j[i].status, PQPOOL_OK);
			assert_non_null(strstr(j[i].msg, "database "));
		}
		/* cut short by the close, not left to run 3 s */
		assert_true(j[i].ms < 2500);
	}
}

static void test_close_during_run(void **state)
{
	(void)state;
	run_close_during(1, 1);
}

static void test_close_during_query(void **state)
{
	(void)state;
	run_close_during(2, 1);
}

static void test_close_during_shared_health(void **state)
{
	(void)state;
	run_close_during(3, 4);
}

/* a connect that times out is a failure to connect: retried */
static void test_connect_timeout_is_retried(void **state)
{
	pqpool_config cfg;
	int fd;
	pqpool *p = open_blackhole(&cfg, &fd);
	pqpool_stats st;
	int64_t t0 = testenv_now_ms(), el;
	(void)state;
	assert_status(PQPOOL_ECONNECT, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	el = testenv_now_ms() - t0;
	assert_non_null(strstr(pqpool_errmsg(), "failed after 3 attempts"));
	assert_non_null(strstr(pqpool_errmsg(), "DB_CONNECTION_TIMEOUT"));
	assert_null(strstr(pqpool_errmsg(), "pw-blackhole"));
	assert_true(el >= 3 * 400);
	assert_true(el < 3 * 400 + 1000);
	pqpool_stats_get(p, &st);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.acquire_errors, 3);
	assert_int_equal(st.acquire_timeouts, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 0));
	close(fd);
}

/* DB_RETRY_DEADLINE bounds the loop, attempts included */
static void test_retry_deadline_bounds_attempts(void **state)
{
	pqpool_config cfg;
	int fd;
	pqpool *p;
	int64_t t0, el;
	(void)state;
	p = open_blackhole(&cfg, &fd);
	assert_status(PQPOOL_OK, pqpool_close(p, 0));
	cfg.retry_deadline_ms = 600;
	cfg.retry_attempts = 10;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ECONNECT, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	el = testenv_now_ms() - t0;
	assert_true(el >= 550);
	assert_true(el < 1100);
	assert_null(strstr(pqpool_errmsg(), "after 10 attempts"));
	assert_status(PQPOOL_OK, pqpool_close(p, 0));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_close_while_connecting),
	        cmocka_unit_test(test_close_during_run),
	        cmocka_unit_test(test_close_during_query),
	        cmocka_unit_test(test_close_during_shared_health),
	        cmocka_unit_test(test_connect_timeout_is_retried),
	        cmocka_unit_test(test_retry_deadline_bounds_attempts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
