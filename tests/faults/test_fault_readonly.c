/* test_fault_readonly.c — the server the pool's writers use stops taking
 * writes for a while (default_transaction_read_only turned on with ALTER
 * SYSTEM and a reload, as a failover manager fences an old primary), then
 * takes them again, while writers insert numbered rows one-shot (blocking
 * threads and an event loop) and in transactions (pqpool_run). With
 * target_session_attrs=read-write the pool retires its connections at the
 * first sign (the server's report, or a 25006), waits for a server that takes
 * writes, and runs the refused statements again: callers see no error, every
 * acknowledged row is there exactly once. Prints the suite's one-line
 * summary. */
#include "ledger.h"
#include "testenv.h"
#include "writers.h"

#include <pqpool/epoll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITERS     8
#define RUNNERS     2
#define OUTSTANDING 32
#define ROWS_MAX    2000000
#define FENCE_MS    1000

static pqpool *pool;
static atomic_bool stop;
static _Atomic long n_ok, n_failed, n_25006;
static char first_error[512];
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_ok(int t, int n)
{
	ledger_ack(t, n);
	atomic_fetch_add(&n_ok, 1);
}

static void note_failure(const char *what, int rc)
{
	atomic_fetch_add(&n_failed, 1);
	if (strcmp(pqpool_errcode(), "25006") == 0)
		atomic_fetch_add(&n_25006, 1);
	pthread_mutex_lock(&err_mu);
	if (!first_error[0])
		snprintf(first_error, sizeof first_error, "%s: %s (%s): %s", what,
		         pqpool_status_text(rc), pqpool_errcode(), pqpool_errmsg());
	pthread_mutex_unlock(&err_mu);
}

struct txn {
	int t, n;
};

static int txn_work(pqpool_conn *c, void *arg)
{
	struct txn *x = arg;
	char a[16], b[16];
	const char *params[] = {a, b};
	int rc;
	snprintf(a, sizeof a, "%d", x->t);
	snprintf(b, sizeof b, "%d", x->n);
	rc = pqpool_exec(c, "BEGIN", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "INSERT INTO fence_rows VALUES ($1, $2)", 2, params,
		                 NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "COMMIT", 0, NULL, NULL);
	return rc;
}

static void *runner(void *arg)
{
	struct txn x = {(int)(intptr_t)arg, 0};
	for (; !atomic_load(&stop); x.n++) {
		int rc = pqpool_run(pool, "insert", txn_work, &x);
		if (rc == PQPOOL_OK)
			note_ok(x.t, x.n);
		else
			note_failure("pqpool_run", rc);
	}
	return NULL;
}

/* the event loop's writers: OUTSTANDING inserts kept in flight */
struct loopw {
	pqpool_loop *loop;
	int t, next;
};

struct call {
	struct loopw *w;
	int n;
};

static void loop_submit(struct loopw *w);

static void loop_done(void *arg, int status, const PGresult *res)
{
	struct call *c = arg;
	(void)res;
	if (status == PQPOOL_OK)
		note_ok(c->w->t, c->n);
	else
		note_failure("pqpool_submit", status);
	if (!atomic_load(&stop))
		loop_submit(c->w);
	free(c);
}

static void loop_submit(struct loopw *w)
{
	struct call *c = malloc(sizeof *c);
	char a[16], b[16];
	const char *params[] = {a, b};
	assert_non_null(c);
	*c = (struct call){w, w->next++};
	snprintf(a, sizeof a, "%d", w->t);
	snprintf(b, sizeof b, "%d", c->n);
	if (pqpool_submit(w->loop, "INSERT INTO fence_rows VALUES ($1, $2)", 2, params, 0,
	                  loop_done, c) != PQPOOL_OK) {
		note_failure("pqpool_submit", PQPOOL_EINVAL);
		free(c);
	}
}

static void *looper(void *arg)
{
	struct loopw w = {NULL, (int)(intptr_t)arg, 0};
	pqpool_epoll ep;
	if (pqpool_epoll_open(&ep, pool) != PQPOOL_OK) {
		note_failure("pqpool_epoll_open", PQPOOL_EINVAL);
		return NULL;
	}
	w.loop = ep.loop;
	for (int i = 0; i < OUTSTANDING; i++)
		loop_submit(&w);
	if (pqpool_epoll_run(&ep, 60000) != 0)
		note_failure("pqpool_epoll_run: still pending after 60 s",
		             PQPOOL_ETIMEDOUT);
	pqpool_epoll_close(&ep);
	return NULL;
}

static PGconn *admin;

static void admin_ok(const char *sql)
{
	PGresult *res = PQexec(admin, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
}

/* ALTER SYSTEM runs alone, outside a transaction block; the admin session
 * keeps writing whatever the server's default */
static void fence(bool on)
{
	admin_ok(on ? "ALTER SYSTEM SET default_transaction_read_only = on"
	            : "ALTER SYSTEM RESET default_transaction_read_only");
	admin_ok("SELECT pg_reload_conf()");
}

static void test_fenced_then_writable(void **state)
{
	pqpool_config cfg;
	pqpool_stats st;
	pthread_t r[RUNNERS], lp;
	writers_result wr;
	char conninfo[1024];
	int64_t fenced_at;
	ledger_check lc;
	(void)state;

	ledger_init(ROWS_MAX);
	admin = PQconnectdb(testenv_get("PQPOOL_TEST_ADMIN"));
	assert_int_equal(PQstatus(admin), CONNECTION_OK);
	admin_ok("SET default_transaction_read_only = off");
	admin_ok("CREATE TABLE IF NOT EXISTS fence_rows (t int, n int)");
	admin_ok("GRANT ALL ON fence_rows TO hyperpage");
	snprintf(conninfo, sizeof conninfo,
	         "%s?application_name=pqpool-fault-ro&target_session_attrs=read-write",
	         testenv_url());
	testenv_config(&cfg);
	cfg.conninfo = conninfo;
	/* more connections than blocking callers (10): the event loop takes a
	 * connection only when nobody queues for one (it never waits in the
	 * pool's queue), so with fewer it could starve once the fence has made
	 * every connection go */
	cfg.pool_max = 12;
	cfg.connection_timeout_ms = 4000;
	cfg.retry_base_delay_ms = 100;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &pool));

	writers_start(pool, "fence_rows", WRITERS, 0);
	for (int i = 0; i < RUNNERS; i++)
		assert_int_equal(
		        pthread_create(&r[i], NULL, runner, (void *)(intptr_t)(100 + i)),
		        0);
	assert_int_equal(pthread_create(&lp, NULL, looper, (void *)(intptr_t)200), 0);

	testenv_sleep_ms(1000);
	fenced_at = testenv_now_ms();
	fence(true);
	testenv_sleep_ms(FENCE_MS);
	fence(false);
	writers_mark();
	testenv_sleep_ms(2000);
	atomic_store(&stop, true);
	wr = writers_stop();
	for (int i = 0; i < RUNNERS; i++)
		pthread_join(r[i], NULL);
	pthread_join(lp, NULL);

	lc = ledger_compare(admin, "fence_rows");
	pqpool_stats_get(pool, &st);
	{
		char line[512];
		long ok = n_ok + wr.ok, failed = n_failed + wr.failed;
		int64_t first = wr.first_ok_after_ms, unfenced = writers_marked_ms();
		snprintf(
		        line, sizeof line,
		        "FAULT readonly-fence: sent=%ld ok=%ld failed=%ld outage_ms=%lld "
		        "recovery_ms=%lld retired=%llu retries=%llu callers_25006=%ld "
		        "rows=%ld duplicates=%ld missing=%ld\n",
		        ok + failed, ok, failed, (long long)(unfenced - fenced_at),
		        first ? (long long)(first - unfenced) : -1LL,
		        (unsigned long long)st.closed_by[PQPOOL_CLOSE_READ_ONLY],
		        (unsigned long long)st.retries, (long)n_25006 + wr.refused,
		        lc.rows, lc.duplicates, lc.missing);
		testenv_fault_line(line);
	}
	admin_ok("DROP TABLE fence_rows");
	PQfinish(admin);
	if (n_failed)
		fail_msg("%ld transactions or loop inserts failed; the first: %s",
		         (long)n_failed, first_error);
	if (wr.failed)
		fail_msg("%ld one-shot inserts failed; the first: %s", wr.failed,
		         wr.first_other[0] ? wr.first_other : "connection lost");
	/* every acknowledged row once, nothing else */
	assert_int_equal(lc.missing, 0);
	assert_int_equal(lc.duplicates, 0);
	assert_int_equal(lc.rows, lc.acked);
	/* the fence was seen: connections retired, refused statements retried */
	assert_true(st.closed_by[PQPOOL_CLOSE_READ_ONLY] >= 1);
	assert_true(st.retries >= 1);
	assert_true(testenv_log_has("no longer takes writes"));
	/* writes came back within 2 s of the server taking them again */
	assert_true(wr.first_ok_after_ms > 0);
	assert_true(wr.first_ok_after_ms - writers_marked_ms() <= 2000);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_status(PQPOOL_OK, pqpool_close(pool, 2000));
	ledger_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fenced_then_writable),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
