/* test_failover.c — a primary and a streaming standby (scripts/replica.sh),
 * one pool on both (DATABASE_URL names both hosts: writers need a primary),
 * 16 threads inserting numbered rows one-shot, and the primary lost:
 *   - crashed (pg_ctl stop -m immediate), the standby promoted a second
 *     later, with synchronous replication: no acknowledged row lost;
 *   - the same with asynchronous replication: the rows lost are printed;
 *   - a switchover without a crash: the old primary fenced (read-only), the
 *     standby promoted, the old primary re-made as a standby of the new one.
 * Each case: the first write succeeds within 2 s of the promotion, no lease
 * is left, one summary line. Run by with_replicas.sh. */
#include "ledger.h"
#include "testenv.h"
#include "writers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITERS 16
#define LOST_NOTICE_MS 900 /* short of the promotion, 1000 ms after */

/* runs scripts/replica.sh with the rig's folder and args; its status */
static int rig(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int rig(const char *fmt, ...)
{
	char args[512], cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "'%s' %s", testenv_get("PQPOOL_TEST_RIG_SCRIPT"), args);
	return system(cmd);
}

/* the superuser on node ("a" or "b"), over its socket */
static PGconn *node(const char *name)
{
	char ci[700];
	PGconn *pg;
	snprintf(ci, sizeof ci, "host=%s/%s port=%s user=postgres dbname=hyperpage",
	         testenv_get("PQPOOL_TEST_RIG"), name,
	         testenv_get(strcmp(name, "a") == 0 ? "PQPOOL_TEST_PORT_A"
	                                            : "PQPOOL_TEST_PORT_B"));
	pg = PQconnectdb(ci);
	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("node %s: %s", name, PQerrorMessage(pg));
	return pg;
}

static void sql_ok(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
}

static void rig_up(const char *mode)
{
	PGconn *a;
	if (rig("start '%s' %s %s '%s' %s", testenv_get("PQPOOL_TEST_RIG"),
	        testenv_get("PQPOOL_TEST_PORT_A"), testenv_get("PQPOOL_TEST_PORT_B"),
	        testenv_get("PQPOOL_TEST_PASSWORD"), mode) != 0)
		fail_msg("replica.sh start failed");
	a = node("a");
	sql_ok(a, "CREATE TABLE fo_rows (t int, n int)");
	sql_ok(a, "GRANT ALL ON fo_rows TO hyperpage");
	PQfinish(a);
}

static pqpool *pool; /* the case's, closed by teardown if it failed */

static pqpool *open_pool(void)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.pool_max = 8;
	/* long enough to wait out the outage (about 1 s here) */
	cfg.connection_timeout_ms = 8000;
	cfg.retry_base_delay_ms = 100;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return pool = p;
}

/* n reads (PQPOOL_READ) from one thread: how many each node answered. */
static void reads_on(pqpool *p, int n, int *on_a, int *on_b)
{
	for (int i = 0; i < n; i++) {
		PGresult *res = NULL;
		int rc = pqpool_query(p, "SELECT inet_server_port()", 0, NULL,
		                      PQPOOL_READ | PQPOOL_IDEMPOTENT, &res);
		assert_status(PQPOOL_OK, rc);
		if (strcmp(PQgetvalue(res, 0, 0), testenv_get("PQPOOL_TEST_PORT_A")) == 0)
			++*on_a;
		else
			++*on_b;
		PQclear(res);
	}
}

static void readers_stop_all(long *a, long *b, long *errors);

/* What a failed case left: its writers, its pool, its rig. */
static int teardown(void **state)
{
	long a, b, e;
	(void)state;
	writers_stop();
	readers_stop_all(&a, &b, &e);
	if (pool)
		pqpool_close(pool, 2000);
	pool = NULL;
	ledger_free();
	rig("stop '%s' >/dev/null 2>&1", testenv_get("PQPOOL_TEST_RIG"));
	return 0;
}

static void summary(const char *name, const writers_result *r, const ledger_check *lc,
                    int64_t fault_ms, int64_t promoted_ms, const pqpool_stats *st)
{
	char line[600];
	snprintf(
	        line, sizeof line,
	        "FAULT %s: sent=%ld ok=%ld failed=%ld outage_ms=%lld recovery_ms=%lld "
	        "lost_in_flight=%ld refused_25006=%ld acked_rows_lost=%ld duplicates=%ld "
	        "retired=%llu broken=%llu retries=%llu\n",
	        name, r->ok + r->failed, r->ok, r->failed,
	        (long long)(promoted_ms - fault_ms),
	        r->first_ok_after_ms ? (long long)(r->first_ok_after_ms - promoted_ms)
	                             : -1LL,
	        r->lost, r->refused, lc->missing, lc->duplicates,
	        (unsigned long long)st->closed_by[PQPOOL_CLOSE_READ_ONLY],
	        (unsigned long long)st->closed_by[PQPOOL_CLOSE_BROKEN],
	        (unsigned long long)st->retries);
	testenv_fault_line(line);
}

/* What every case asks: writes resumed within 2 s of the promotion, the
 * only failures are statements in flight when the primary went (their
 * outcome unknown: not retried, they may have committed), nothing left. */
static void common_checks(const writers_result *r, int64_t promoted_ms, pqpool *p)
{
	pqpool_stats st;
	if (r->other)
		fail_msg("%ld inserts failed other than by losing their connection; the "
		         "first: %s",
		         r->other, r->first_other);
	assert_true(r->first_ok_after_ms > 0);
	assert_true(r->first_ok_after_ms - promoted_ms <= 2000);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
}

/* ---- read routing ---- */

#define READERS 64

static _Atomic long reads_a, reads_b, read_errors;
static atomic_bool readers_stop;

static void *read_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&readers_stop)) {
		PGresult *res = NULL;
		int rc = pqpool_query(pool, "SELECT inet_server_port()", 0, NULL,
		                      PQPOOL_READ | PQPOOL_IDEMPOTENT, &res);
		if (rc != PQPOOL_OK)
			atomic_fetch_add(&read_errors, 1);
		else if (strcmp(PQgetvalue(res, 0, 0),
		                testenv_get("PQPOOL_TEST_PORT_A")) == 0)
			atomic_fetch_add(&reads_a, 1);
		else
			atomic_fetch_add(&reads_b, 1);
		PQclear(res);
	}
	return NULL;
}

static pthread_t reader_th[READERS];
static int nreaders;

static void readers_start(int n)
{
	atomic_store(&reads_a, 0);
	atomic_store(&reads_b, 0);
	atomic_store(&read_errors, 0);
	atomic_store(&readers_stop, false);
	for (nreaders = 0; nreaders < n; nreaders++)
		assert_int_equal(
		        pthread_create(&reader_th[nreaders], NULL, read_loop, NULL), 0);
}

/* Stops them (none: nothing to do); how many reads each node answered. */
static void readers_stop_all(long *a, long *b, long *errors)
{
	atomic_store(&readers_stop, true);
	for (int i = 0; i < nreaders; i++)
		pthread_join(reader_th[i], NULL);
	nreaders = 0;
	*a = atomic_load(&reads_a);
	*b = atomic_load(&reads_b);
	*errors = atomic_load(&read_errors);
}

static void read_phase(int ms, long *a, long *b, long *errors)
{
	readers_start(READERS);
	testenv_sleep_ms(ms);
	readers_stop_all(a, b, errors);
}

/* Promotes b; from then on the writers' successes count as after it. */
static int64_t promote_b(void)
{
	assert_int_equal(rig("promote '%s' b", testenv_get("PQPOOL_TEST_RIG")), 0);
	writers_mark();
	return writers_marked_ms();
}

/* Stops the writers, compares with what b holds, prints the summary and
 * makes the checks every case makes. */
static void finish(const char *name, pqpool *p, int64_t fault_ms, writers_result *r,
                   ledger_check *lc, pqpool_stats *st)
{
	PGconn *b;
	*r = writers_stop();
	b = node("b");
	*lc = ledger_compare(b, "fo_rows");
	PQfinish(b);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, st));
	summary(name, r, lc, fault_ms, writers_marked_ms(), st);
	common_checks(r, writers_marked_ms(), p);
	assert_int_equal(lc->duplicates, 0);
}

static void crash_case(const char *mode, const char *name, bool sync)
{
	pqpool *p;
	pqpool_stats st;
	writers_result r;
	ledger_check lc;
	int64_t crashed, gone;
	long ra, rb, rerr;
	char line[300];

	rig_up(mode);
	ledger_init(400000);
	p = open_pool();
	writers_start(p, "fo_rows", WRITERS, 0);
	readers_start(16);
	testenv_sleep_ms(1500);
	crashed = testenv_now_ms();
	assert_int_equal(rig("crash '%s' a", testenv_get("PQPOOL_TEST_RIG")), 0);
	gone = testenv_now_ms(); /* pg_ctl is back: every backend of a exited */
	testenv_sleep_ms(1000); /* no primary: writers wait */
	promote_b();
	testenv_sleep_ms(2500);
	readers_stop_all(&ra, &rb, &rerr);
	finish(name, p, crashed, &r, &lc, &st);
	snprintf(line, sizeof line,
	         "FAULT %s-reads: sent=%ld ok=%ld failed=%ld outage_ms=0 recovery_ms=0 "
	         "on_a=%ld on_b=%ld\n",
	         name, ra + rb + rerr, ra + rb, rerr, ra, rb);
	testenv_fault_line(line);
	/* reads went on on the standby, with at most a handful of errors */
	assert_true(rb > 1000);
	assert_true(rerr <= 5);
	/* The only writes lost are those sent to a backend of a before it
	 * exited: none before the crash, none once a was gone (a writer
	 * learns of its loss a moment after; LOST_NOTICE_MS is that moment,
	 * short of the promotion). Not a count: a writer whose statement died
	 * with one backend may send the next to another that has not exited
	 * yet and lose that one too (lost_again). */
	snprintf(line, sizeof line,
	         "FAULT %s-crash: pg_ctl_ms=%lld lost=%ld lost_again=%ld "
	         "first_lost_ms=%lld last_lost_ms=%lld\n",
	         name, (long long)(gone - crashed), r.lost, r.lost_again,
	         r.lost ? (long long)(r.first_lost_ms - crashed) : -1LL,
	         r.lost ? (long long)(r.last_lost_ms - crashed) : -1LL);
	testenv_fault_line(line);
	if (r.lost && (r.first_lost_ms < crashed ||
	               r.last_lost_ms > gone + LOST_NOTICE_MS))
		fail_msg("writes lost outside the crash: %lld..%lld ms after it began, "
		         "a was gone after %lld ms",
		         (long long)(r.first_lost_ms - crashed),
		         (long long)(r.last_lost_ms - crashed),
		         (long long)(gone - crashed));
	if (sync)
		assert_int_equal(lc.missing, 0); /* no acknowledged write lost */
	assert_true(r.ok > 1000);
	pool = NULL;
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

static void test_crash_sync(void **state)
{
	(void)state;
	crash_case("sync", "failover-sync", true);
}

static void test_crash_async(void **state)
{
	(void)state;
	crash_case("async", "failover-async", false);
}

/* The old primary made read-only (as a failover manager fences it), the
 * standby promoted, the old primary re-made as a standby of the new one:
 * no write fails, none is lost, and the pool never writes to the old
 * primary again. */
static void test_switchover(void **state)
{
	pqpool *p;
	PGconn *a;
	pqpool_stats st;
	writers_result r;
	ledger_check lc;
	int64_t fenced;
	(void)state;

	rig_up("sync");
	ledger_init(400000);
	p = open_pool();
	writers_start(p, "fo_rows", WRITERS, 0);
	testenv_sleep_ms(1500);
	a = node("a");
	fenced = testenv_now_ms();
	sql_ok(a, "ALTER SYSTEM SET default_transaction_read_only = on");
	sql_ok(a, "SELECT pg_reload_conf()");
	PQfinish(a);
	testenv_sleep_ms(300);
	promote_b();
	testenv_sleep_ms(1500);
	/* the old primary comes back as a standby of the new one */
	assert_int_equal(rig("rebuild '%s' a b", testenv_get("PQPOOL_TEST_RIG")), 0);
	testenv_sleep_ms(1500);
	finish("switchover", p, fenced, &r, &lc, &st);
	/* a fence loses no connection, so no write at all fails */
	assert_int_equal(r.failed, 0);
	assert_int_equal(lc.missing, 0);
	/* the old primary was seen to stop taking writes */
	assert_true(testenv_log_has("is now a standby"));
	/* back as a standby, it gets reads, and never a write */
	{
		int on_a = 0, on_b = 0, writes_on_a = 0;
		reads_on(p, 200, &on_a, &on_b);
		for (int i = 0; i < 50; i++) {
			PGresult *res = NULL;
			assert_status(PQPOOL_OK,
			              pqpool_query(p,
			                           "INSERT INTO fo_rows VALUES (-1, 0) "
			                           "RETURNING inet_server_port()",
			                           0, NULL, 0, &res));
			writes_on_a += strcmp(PQgetvalue(res, 0, 0),
			                      testenv_get("PQPOOL_TEST_PORT_A")) == 0;
			PQclear(res);
		}
		printf("after the switchover: reads %d on a (the old primary), %d on b; "
		       "writes on a %d of 50\n",
		       on_a, on_b, writes_on_a);
		assert_int_equal(writes_on_a, 0);
		assert_true(on_a >= 180); /* 90 % */
	}
	pool = NULL;
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

/* 64 threads reading with PQPOOL_READ: at least 90 % answered by the
 * standby; with the standby stopped, every read answered by the primary. */
static void test_read_routing(void **state)
{
	pqpool *p;
	pqpool_stats st;
	long a, b, errors, a2, b2, errors2;
	char line[300];
	(void)state;

	rig_up("async");
	ledger_init(1);
	p = open_pool();
	read_phase(2000, &a, &b, &errors);
	assert_int_equal(rig("crash '%s' b", testenv_get("PQPOOL_TEST_RIG")), 0);
	read_phase(2000, &a2, &b2, &errors2);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	snprintf(line, sizeof line,
	         "FAULT read-routing: sent=%ld ok=%ld failed=%ld outage_ms=0 "
	         "recovery_ms=0 "
	         "on_standby=%ld on_primary=%ld standby_share=%.1f%% "
	         "standby_stopped_on_primary=%ld standby_stopped_failed=%ld\n",
	         a + b + errors + a2 + b2 + errors2, a + b + a2 + b2, errors + errors2, b,
	         a, a + b ? 100.0 * (double)b / (double)(a + b) : 0.0, a2, errors2);
	testenv_fault_line(line);
	assert_int_equal(errors, 0);
	assert_true(a + b > 1000);
	assert_true(b * 10 >= (a + b) * 9);
	/* the standby gone: reads go to the primary, none fails */
	assert_int_equal(errors2, 0);
	assert_true(a2 > 1000);
	pool = NULL;
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

/* ---- a host down at start ---- */

static const pqpool_host *host_of(const pqpool_stats *st, const char *port)
{
	for (int i = 0; i < st->nhosts; i++) {
		const char *colon = strrchr(st->hosts[i].address, ':');
		if (colon && strcmp(colon + 1, port) == 0)
			return &st->hosts[i];
	}
	fail_msg("no host with port %s among %d", port, st->nhosts);
	return NULL;
}

/* a down (the standby promoted in its place) when the pool opens: the pool
 * opens on b and serves; a is banned and the health degraded; a re-made as
 * a standby joins: reads reach it, the health is healthy again. */
static void test_host_down_at_start(void **state)
{
	const char *rigdir = testenv_get("PQPOOL_TEST_RIG");
	const char *pa = testenv_get("PQPOOL_TEST_PORT_A");
	pqpool *p;
	pqpool_stats st;
	pqpool_health h;
	char line[400];
	int on_a = 0, on_b = 0, joined_ms = -1, waited;
	int64_t t0;
	PGresult *res = NULL;
	(void)state;

	rig_up("async");
	ledger_init(1);
	assert_int_equal(rig("crash '%s' a", rigdir), 0);
	assert_int_equal(rig("promote '%s' b", rigdir), 0);
	p = open_pool();
	assert_status(PQPOOL_OK, pqpool_query(p, "INSERT INTO fo_rows VALUES (0, 0)", 0,
	                                      NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.nhosts, 2);
	assert_int_not_equal(host_of(&st, pa)->state, PQPOOL_HOST_UP);
	assert_true(host_of(&st, pa)->failures >= 1);
	assert_int_equal(host_of(&st, testenv_get("PQPOOL_TEST_PORT_B"))->role,
	                 PQPOOL_ROLE_PRIMARY);
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_DEGRADED);
	assert_non_null(strstr(h.error, pa));
	assert_int_equal(h.nhosts, 2);

	/* a back, as a standby of b: reads find it once its ban is over */
	assert_int_equal(rig("rebuild '%s' a b", rigdir), 0);
	t0 = testenv_now_ms();
	for (waited = 0; waited < 10000 && on_a == 0;
	     waited = (int)(testenv_now_ms() - t0)) {
		reads_on(p, 20, &on_a, &on_b);
		testenv_sleep_ms(50);
	}
	if (on_a)
		joined_ms = waited;
	on_a = on_b = 0;
	reads_on(p, 200, &on_a, &on_b);
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	snprintf(line, sizeof line,
	         "FAULT host-down-at-start: sent=%d ok=%d failed=0 outage_ms=0 "
	         "recovery_ms=%d reads_on_rejoined=%d of 200 health_after=%s a=%s/%s\n",
	         200, 200, joined_ms, on_a, pqpool_health_text(h.status),
	         pqpool_role_text(host_of(&st, pa)->role),
	         pqpool_host_state_text(host_of(&st, pa)->state));
	testenv_fault_line(line);
	assert_true(joined_ms >= 0);
	assert_true(on_a >= 180);
	assert_int_equal(h.status, PQPOOL_HEALTHY);
	assert_int_equal(host_of(&st, pa)->role, PQPOOL_ROLE_STANDBY);
	assert_int_equal(host_of(&st, pa)->state, PQPOOL_HOST_UP);
	PQclear(res);
	pool = NULL;
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_crash_sync, teardown),
	        cmocka_unit_test_teardown(test_crash_async, teardown),
	        cmocka_unit_test_teardown(test_switchover, teardown),
	        cmocka_unit_test_teardown(test_read_routing, teardown),
	        cmocka_unit_test_teardown(test_host_down_at_start, teardown),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
