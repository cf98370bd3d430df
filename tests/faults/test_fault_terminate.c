/* test_fault_terminate.c — every connection of a pool terminated by the
 * server, again and again, while threads query through it: read-only work
 * run with retry (pqpool_query with PQPOOL_IDEMPOTENT, pqpool_run, the
 * health check) never sees an error, since the database itself never stops
 * answering. Prints the suite's one-line summary. */
#include "testenv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_THREADS 4
#define RUN_MS        8000
/* Waves of terminations farther apart than the retry schedule's span (at
 * most 100 + 200 ms of backoff with the base delay below, plus a connect):
 * every wave must be absorbed by the retries. Waves that came faster than
 * a call's whole retry budget would exhaust any finite one: at 150 ms, 1
 * call in about 100,000 lost all three attempts. */
#define KILL_EVERY_MS 500

static pqpool *pool;
static atomic_bool stop;
static _Atomic long n_ok, n_failed, n_killed, n_rounds;
static char first_error[512];
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_failure(const char *what, int rc)
{
	atomic_fetch_add(&n_failed, 1);
	pthread_mutex_lock(&err_mu);
	if (!first_error[0])
		snprintf(first_error, sizeof first_error, "%s: %s: %s", what,
		         pqpool_status_text(rc), pqpool_errmsg());
	pthread_mutex_unlock(&err_mu);
}

static void *querier(void *arg)
{
	long i = 0;
	(void)arg;
	while (!atomic_load(&stop)) {
		char v[24];
		const char *params[] = {v};
		PGresult *res = NULL;
		int rc;
		snprintf(v, sizeof v, "%ld", i++);
		rc = pqpool_query(pool, "SELECT $1::int + 1", 1, params,
		                  PQPOOL_IDEMPOTENT, &res);
		if (rc == PQPOOL_OK && PQntuples(res) == 1 &&
		    atol(PQgetvalue(res, 0, 0)) == i)
			atomic_fetch_add(&n_ok, 1);
		else
			note_failure("pqpool_query", rc);
		PQclear(res);
	}
	return NULL;
}

/* A read-only unit of work: a transaction with two statements. */
static int read_only_work(pqpool_conn *c, void *arg)
{
	int rc;
	(void)arg;
	rc = pqpool_exec(c, "BEGIN READ ONLY", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "SELECT count(*) FROM pg_class", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "COMMIT", 0, NULL, NULL);
	return rc;
}

static void *runner(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int rc = pqpool_run(pool, "read-only work", read_only_work, NULL);
		if (rc == PQPOOL_OK)
			atomic_fetch_add(&n_ok, 1);
		else
			note_failure("pqpool_run", rc);
	}
	return NULL;
}

static void *checker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pqpool_health h;
		pqpool_check_health(pool, &h);
		if (h.status != PQPOOL_UNHEALTHY) {
			atomic_fetch_add(&n_ok, 1);
		} else {
			atomic_fetch_add(&n_failed, 1);
			pthread_mutex_lock(&err_mu);
			if (!first_error[0])
				snprintf(first_error, sizeof first_error, "health: %s",
				         h.error);
			pthread_mutex_unlock(&err_mu);
		}
		testenv_sleep_ms(5);
	}
	return NULL;
}

/* The fault: the server ends every session of the pool, every
 * KILL_EVERY_MS, over its own superuser connection. */
static void *killer(void *arg)
{
	PGconn *admin = arg;
	int64_t end = testenv_now_ms() + RUN_MS;
	while (testenv_now_ms() < end) {
		PGresult *r = PQexec(
		        admin,
		        "SELECT count(pg_terminate_backend(pid)) FROM "
		        "pg_stat_activity WHERE application_name = 'pqpool-fault-lib'");
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			atomic_fetch_add(&n_killed, atol(PQgetvalue(r, 0, 0)));
		PQclear(r);
		atomic_fetch_add(&n_rounds, 1);
		testenv_sleep_ms(KILL_EVERY_MS);
	}
	return NULL;
}

static void test_terminated_under_load(void **state)
{
	pqpool_config cfg;
	pqpool_stats st;
	pthread_t q[QUERY_THREADS], run, health, kill;
	char conninfo[1024];
	PGconn *admin;
	int64_t t0;
	(void)state;

	snprintf(conninfo, sizeof conninfo, "%s?application_name=pqpool-fault-lib",
	         testenv_url());
	testenv_config(&cfg);
	cfg.conninfo = conninfo;
	cfg.pool_min = 3;
	cfg.pool_max = 6;
	cfg.connection_timeout_ms = 2000;
	/* the defaults but a shorter first backoff, so that more queries run
	 * in the time; three attempts as by default */
	cfg.retry_base_delay_ms = 100;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &pool));
	admin = PQconnectdb(testenv_get("PQPOOL_TEST_ADMIN"));
	assert_int_equal(PQstatus(admin), CONNECTION_OK);

	t0 = testenv_now_ms();
	for (int i = 0; i < QUERY_THREADS; i++)
		assert_int_equal(pthread_create(&q[i], NULL, querier, NULL), 0);
	assert_int_equal(pthread_create(&run, NULL, runner, NULL), 0);
	assert_int_equal(pthread_create(&health, NULL, checker, NULL), 0);
	assert_int_equal(pthread_create(&kill, NULL, killer, admin), 0);
	pthread_join(kill, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < QUERY_THREADS; i++)
		pthread_join(q[i], NULL);
	pthread_join(run, NULL);
	pthread_join(health, NULL);
	PQfinish(admin);

	pqpool_stats_get(pool, &st);
	printf("FAULT terminate-library: sent=%ld ok=%ld failed=%ld outage_ms=0 "
	       "recovery_ms=0 "
	       "terminated=%ld rounds=%ld retries=%llu broken=%llu over_ms=%lld\n",
	       n_ok + n_failed, (long)n_ok, (long)n_failed, (long)n_killed,
	       (long)n_rounds, (unsigned long long)st.retries,
	       (unsigned long long)st.closed_by[PQPOOL_CLOSE_BROKEN],
	       (long long)(testenv_now_ms() - t0));
	if (getenv("PQPOOL_FAULTS_SUMMARY")) {
		FILE *f = fopen(getenv("PQPOOL_FAULTS_SUMMARY"), "a");
		if (f) {
			fprintf(f,
			        "FAULT terminate-library: sent=%ld ok=%ld failed=%ld "
			        "outage_ms=0 "
			        "recovery_ms=0 terminated=%ld rounds=%ld retries=%llu\n",
			        n_ok + n_failed, (long)n_ok, (long)n_failed,
			        (long)n_killed, (long)n_rounds,
			        (unsigned long long)st.retries);
			fclose(f);
		}
	}
	fflush(stdout);
	if (n_failed)
		fail_msg("%ld of %ld read-only calls failed; the first: %s",
		         (long)n_failed, n_ok + n_failed, first_error);
	/* the fault really happened, to work in flight too */
	assert_true(n_killed >= n_rounds / 2);
	assert_true(st.closed_by[PQPOOL_CLOSE_BROKEN] >= 10);
	assert_true(n_ok >= 200);
	/* and left nothing behind */
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_status(PQPOOL_OK, pqpool_close(pool, 2000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_terminated_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
