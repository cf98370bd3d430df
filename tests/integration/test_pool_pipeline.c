/* test_pool_pipeline.c — automatic pipelining against a real server: each
 * caller gets its own result or its own error, a failure in a group never
 * loses or doubles another caller's statement, a slow statement times out
 * alone, and leases and transactions never share their connection. */
#include "testenv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pqpool *open_pool(int max, bool prepare, bool pipeline)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.pool_max = max;
	cfg.pool_min = max;
	cfg.prepare = prepare && !testenv_bouncer(); /* DB_PREPARED_STATEMENTS=off */
	cfg.pipeline = pipeline;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

/* ---- every 7th fails: each caller its own answer ---- */

#define MIX_THREADS 64
#define MIX_EACH    313 /* 64 x 313 = 20 032 queries */

struct mix {
	pthread_t th;
	pqpool *p;
	int id;
	int ok, failed_right, wrong;
	char why[160];
};

/* Returns its own parameter times the thread's number, or divides by zero
 * (22012) when n is a multiple of 7. */
static void *mix_work(void *arg)
{
	struct mix *m = arg;
	for (int n = 1; n <= MIX_EACH; n++) {
		char v[32], d[8];
		const char *params[] = {v, d};
		PGresult *r = NULL;
		bool fail = n % 7 == 0;
		long want = (long)(m->id * 1000 + n);
		snprintf(v, sizeof v, "%ld", want);
		snprintf(d, sizeof d, "%d", fail ? 0 : 1);
		int st = pqpool_query(m->p, "SELECT $1::bigint / $2::int", 2, params, 0,
		                      &r);
		if (fail) {
			if (st == PQPOOL_EQUERY && strcmp(pqpool_errcode(), "22012") == 0)
				m->failed_right++;
			else if (m->wrong++ == 0)
				snprintf(m->why, sizeof m->why, "n=%d: %s (%s)", n,
				         pqpool_status_text(st), pqpool_errmsg());
		} else if (st != PQPOOL_OK) {
			if (m->wrong++ == 0)
				snprintf(m->why, sizeof m->why, "n=%d: %s (%s)", n,
				         pqpool_status_text(st), pqpool_errmsg());
		} else if (atol(PQgetvalue(r, 0, 0)) != want) {
			if (m->wrong++ == 0)
				snprintf(m->why, sizeof m->why, "n=%d: got %s, want %ld",
				         n, PQgetvalue(r, 0, 0), want);
		} else {
			m->ok++;
		}
		PQclear(r);
	}
	return NULL;
}

static void run_mix(bool prepare)
{
	pqpool *p = open_pool(8, prepare, true);
	struct mix *m = calloc(MIX_THREADS, sizeof *m);
	pqpool_stats st;
	int fails = MIX_EACH / 7;
	for (int i = 0; i < MIX_THREADS; i++) {
		m[i].p = p;
		m[i].id = i;
		pthread_create(&m[i].th, NULL, mix_work, &m[i]);
	}
	for (int i = 0; i < MIX_THREADS; i++) {
		pthread_join(m[i].th, NULL);
		if (m[i].wrong)
			fail_msg("thread %d: %d wrong answers, first: %s", i, m[i].wrong,
			         m[i].why);
		assert_int_equal(m[i].ok, MIX_EACH - fails);
		assert_int_equal(m[i].failed_right, fails);
	}
	pqpool_stats_get(p, &st);
	/* each failure counted once, on its own statement */
	assert_int_equal(st.query_errors, (uint64_t)MIX_THREADS * fails);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	free(m);
}

static void test_mixed_failures_prepared(void **state)
{
	(void)state;
	run_mix(true);
}

static void test_mixed_failures_unnamed(void **state)
{
	(void)state;
	run_mix(false);
}

/* ---- inserts: none lost to a group's rollback, none doubled ---- */

#define INS_THREADS 32
#define INS_EACH    150

struct ins {
	pthread_t th;
	pqpool *p;
	int id;
	char *ok; /* per n: 1 when its insert reported success */
	int unexpected;
	char why[160];
};

static void *ins_work(void *arg)
{
	struct ins *w = arg;
	for (int n = 0; n < INS_EACH; n++) {
		char th[16], num[16], v[16];
		const char *params[] = {th, num, v};
		snprintf(th, sizeof th, "%d", w->id);
		snprintf(num, sizeof num, "%d", n);
		/* every 7th breaks the CHECK constraint (23514) */
		snprintf(v, sizeof v, "%d", n % 7 == 3 ? -1 : n);
		int st = pqpool_query(
		        w->p, "INSERT INTO pipe_rows (th, n, v) VALUES ($1, $2, $3)", 3,
		        params, 0, NULL);
		if (st == PQPOOL_OK) {
			w->ok[n] = 1;
		} else if (!(n % 7 == 3 && st == PQPOOL_EQUERY &&
		             strcmp(pqpool_errcode(), "23514") == 0)) {
			if (w->unexpected++ == 0)
				snprintf(w->why, sizeof w->why, "n=%d: %s (%s)", n,
				         pqpool_status_text(st), pqpool_errmsg());
		}
	}
	return NULL;
}

static void test_inserts_exactly_once(void **state)
{
	(void)state;
	pqpool *p = open_pool(6, true, true);
	struct ins w[INS_THREADS];
	testenv_admin("DROP TABLE IF EXISTS pipe_rows");
	/* no unique key: a statement sent twice would show as two rows */
	testenv_admin("CREATE TABLE pipe_rows (th int, n int, v int CHECK (v >= 0))");
	testenv_admin("GRANT ALL ON pipe_rows TO hyperpage");
	for (int i = 0; i < INS_THREADS; i++) {
		w[i] = (struct ins){.p = p, .id = i, .ok = calloc(INS_EACH, 1)};
		pthread_create(&w[i].th, NULL, ins_work, &w[i]);
	}
	for (int i = 0; i < INS_THREADS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].unexpected)
			fail_msg("thread %d: %d unexpected outcomes, first: %s", i,
			         w[i].unexpected, w[i].why);
	}
	/* every row that reported success is there exactly once, no other */
	int rows = atoi(testenv_admin("SELECT count(*) FROM pipe_rows"));
	int distinct =
	        atoi(testenv_admin("SELECT count(DISTINCT (th, n)) FROM pipe_rows"));
	int succeeded = 0;
	for (int i = 0; i < INS_THREADS; i++)
		for (int n = 0; n < INS_EACH; n++)
			succeeded += w[i].ok[n];
	assert_int_equal(rows, distinct);
	assert_int_equal(rows, succeeded);
	assert_int_equal(
	        atoi(testenv_admin("SELECT count(*) FROM pipe_rows WHERE n %% 7 = 3")),
	        0);
	for (int i = 0; i < INS_THREADS; i++) {
		long cnt = 0, sum = 0, sq = 0;
		for (int n = 0; n < INS_EACH; n++) {
			if (w[i].ok[n]) {
				cnt++;
				sum += n;
				sq += (long)n * n;
			}
		}
		const char *got =
		        testenv_admin("SELECT count(*) || ' ' || coalesce(sum(n), 0) || "
		                      "' ' || coalesce(sum(n * n), 0) FROM pipe_rows "
		                      "WHERE th = %d",
		                      i);
		char want[64];
		snprintf(want, sizeof want, "%ld %ld %ld", cnt, sum, sq);
		if (strcmp(got, want) != 0)
			fail_msg("thread %d: rows (count sum sumsq) %s, successes %s", i,
			         got, want);
		free(w[i].ok);
	}
	testenv_admin("DROP TABLE pipe_rows");
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- groups really form: statements of different callers share one
 * implicit transaction ---- */

struct txw {
	pthread_t th;
	pqpool *p;
	long xids[200];
	int n;
};

static void *tx_work(void *arg)
{
	struct txw *w = arg;
	for (int i = 0; i < 200; i++) {
		PGresult *r = NULL;
		if (pqpool_query(w->p, "SELECT txid_current()", 0, NULL, 0, &r) ==
		    PQPOOL_OK)
			w->xids[w->n++] = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	return NULL;
}

static int count_shared(struct txw *w, int nw)
{
	int shared = 0;
	for (int a = 0; a < nw; a++)
		for (int i = 0; i < w[a].n; i++)
			for (int b = a + 1; b < nw; b++)
				for (int j = 0; j < w[b].n; j++)
					shared += w[a].xids[i] == w[b].xids[j];
	return shared;
}

static int run_tx(bool pipeline)
{
	pqpool *p = open_pool(2, true, pipeline);
	struct txw w[16];
	memset(w, 0, sizeof w);
	for (int i = 0; i < 16; i++) {
		w[i].p = p;
		pthread_create(&w[i].th, NULL, tx_work, &w[i]);
	}
	pqpool_stats st;
	for (int i = 0; i < 16; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].n, 200);
	}
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	if (pipeline) {
		/* the depth histogram saw groups of several, none past the bound */
		assert_true(st.pipeline_depth.count > 0);
		assert_true(st.pipeline_depth.sum > st.pipeline_depth.count);
		for (int b = 0; b < PQPOOL_DEPTH_BUCKETS; b++)
			if (pqpool_depth_bounds()[b] > 16) /* DB_PIPELINE_DEPTH's default */
				assert_int_equal(st.pipeline_depth.buckets[b], 0);
	} else {
		assert_int_equal(st.pipeline_depth.count, 0);
		assert_int_equal(st.pipeline_wait.count, 0);
	}
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	return count_shared(w, 16);
}

static void test_groups_form(void **state)
{
	(void)state;
	/* 16 callers on 2 connections: pipelined, some of them commit together */
	assert_true(run_tx(true) > 0);
	/* DB_PIPELINE=off: every statement its own transaction */
	assert_int_equal(run_tx(false), 0);
}

/* ---- a slow statement times out alone ---- */

struct fast {
	pthread_t th;
	pqpool *p;
	_Atomic int *stop;
	int ok, bad;
	char why[200];
};

static void *fast_work(void *arg)
{
	struct fast *f = arg;
	while (!atomic_load(f->stop)) {
		PGresult *r = NULL;
		int st = pqpool_query(f->p, "SELECT 41 + 1", 0, NULL, 0, &r);
		if (st == PQPOOL_OK && strcmp(PQgetvalue(r, 0, 0), "42") == 0)
			f->ok++;
		else if (f->bad++ == 0)
			snprintf(f->why, sizeof f->why, "%s: %s", pqpool_status_text(st),
			         pqpool_errmsg());
		PQclear(r);
	}
	return NULL;
}

static void test_slow_times_out_alone(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_stats st;
	_Atomic int stop = 0;
	struct fast f[12];
	testenv_config(&cfg);
	cfg.pool_max = 3;
	cfg.pool_min = 3;
	cfg.query_timeout_ms = 400;
	cfg.retry_attempts = 1;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int i = 0; i < 12; i++) {
		f[i] = (struct fast){.p = p, .stop = &stop};
		pthread_create(&f[i].th, NULL, fast_work, &f[i]);
	}
	testenv_sleep_ms(100);
	for (int k = 0; k < 3; k++) {
		int64_t t0 = testenv_now_ms();
		int rc = pqpool_query(p, "SELECT pg_sleep(3)", 0, NULL, 0, NULL);
		int64_t ms = testenv_now_ms() - t0;
		assert_status(PQPOOL_ETIMEDOUT, rc);
		/* its own bound, plus at most the cancel's grace */
		assert_true(ms >= 380);
		assert_true(ms < 3000);
	}
	testenv_sleep_ms(200);
	atomic_store(&stop, 1);
	for (int i = 0; i < 12; i++) {
		pthread_join(f[i].th, NULL);
		if (f[i].bad)
			fail_msg("thread %d: %d failed, first: %s", i, f[i].bad,
			         f[i].why);
		assert_true(f[i].ok > 0);
	}
	/* nothing left running on the server, the counts right */
	pqpool_stats_get(p, &st);
	/* nothing waited behind the 3 s sleeps for as long as they ran: a
	 * group is split after PQPOOL__PIPE_SPLIT_MS, a deadline is 400 ms */
	assert_true(st.pipeline_wait.count > 0);
	for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++)
		if (b > 0 && pqpool_hist_bounds_ms()[b - 1] >= 1000)
			if (st.pipeline_wait.buckets[b])
				fail_msg("%llu statements waited over %g ms behind others",
				         (unsigned long long)st.pipeline_wait.buckets[b],
				         pqpool_hist_bounds_ms()[b - 1]);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	assert_int_equal(
	        atoi(testenv_admin("SELECT count(*) FROM pg_stat_activity WHERE "
	                           "query = 'SELECT pg_sleep(3)' AND state = 'active'")),
	        0);
}

/* ---- leases and transactions keep their connection to themselves ---- */

struct pidw {
	pthread_t th;
	pqpool *p;
	const char *forbidden; /* the leased backend's pid */
	int seen, ok;
};

static void *pid_work(void *arg)
{
	struct pidw *w = arg;
	for (int i = 0; i < 300; i++) {
		PGresult *r = NULL;
		if (pqpool_query(w->p, "SELECT pg_backend_pid()", 0, NULL, 0, &r) ==
		    PQPOOL_OK) {
			w->ok++;
			if (strcmp(PQgetvalue(r, 0, 0), w->forbidden) == 0)
				w->seen++;
		}
		PQclear(r);
	}
	return NULL;
}

static void test_leases_never_shared(void **state)
{
	(void)state;
	pqpool *p = open_pool(3, true, true);
	pqpool_conn *c = NULL;
	PGresult *r = NULL;
	char pid[32], xid[32];
	struct pidw w[16];

	/* a leased transaction */
	assert_status(PQPOOL_OK, pqpool_acquire(p, 3000, &c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "BEGIN", 0, NULL, NULL));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT pg_backend_pid(), txid_current()",
	                                     0, NULL, &r));
	snprintf(pid, sizeof pid, "%s", PQgetvalue(r, 0, 0));
	snprintf(xid, sizeof xid, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	for (int i = 0; i < 16; i++) {
		w[i] = (struct pidw){.p = p, .forbidden = pid};
		pthread_create(&w[i].th, NULL, pid_work, &w[i]);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].ok, 300);
		assert_int_equal(w[i].seen, 0);
	}
	/* still our transaction, untouched */
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT txid_current()", 0, NULL, &r));
	assert_string_equal(PQgetvalue(r, 0, 0), xid);
	PQclear(r);
	assert_status(PQPOOL_OK, pqpool_exec(c, "ROLLBACK", 0, NULL, NULL));
	pqpool_release(c);

	/* BEGIN one-shot is never pipelined: it runs alone and is rolled back
	 * on release, so the next statement on any connection is outside it */
	for (int i = 0; i < 20; i++) {
		assert_status(PQPOOL_OK, pqpool_query(p, "BEGIN", 0, NULL, 0, NULL));
		assert_status(PQPOOL_OK,
		              pqpool_query(p, "SELECT txid_current_if_assigned() IS NULL",
		                           0, NULL, 0, &r));
		assert_string_equal(PQgetvalue(r, 0, 0), "t");
		PQclear(r);
	}
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- every backend terminated, twice, under pipelined load ---- */

#define TERM_THREADS 64

static _Atomic int64_t term_kill_ms; /* when the last wave went out */

struct term {
	pthread_t th;
	pqpool *p;
	_Atomic int *stop;
	long n;
	int ok, lost, wrong;
	int64_t first_ok_after;
	char why[200];
};

/* Even n are PQPOOL_IDEMPOTENT: retried, so they always succeed; odd n may
 * have run when their connection was lost: PQPOOL_ECONNLOST or success. */
static void *term_work(void *arg)
{
	struct term *t = arg;
	while (!atomic_load(t->stop)) {
		char v[24];
		const char *params[] = {v};
		PGresult *r = NULL;
		long n = t->n++;
		int st;
		snprintf(v, sizeof v, "%ld", n);
		st = pqpool_query(t->p, "SELECT $1::bigint + 1", 1, params,
		                  n % 2 ? 0 : PQPOOL_IDEMPOTENT, &r);
		if (st == PQPOOL_OK && atol(PQgetvalue(r, 0, 0)) == n + 1) {
			int64_t now = testenv_now_ms(), kill = atomic_load(&term_kill_ms);
			t->ok++;
			if (kill && !t->first_ok_after && now >= kill)
				t->first_ok_after = now;
		} else if (st == PQPOOL_ECONNLOST && n % 2) {
			t->lost++;
		} else if (t->wrong++ == 0) {
			snprintf(t->why, sizeof t->why, "n=%ld: %s (%s %s)", n,
			         pqpool_status_text(st), pqpool_errcode(), pqpool_errmsg());
		}
		PQclear(r);
	}
	return NULL;
}

static void test_terminated_twice(void **state)
{
	(void)state;
	pqpool *p = NULL;
	pqpool_stats st;
	char conninfo[1024];
	_Atomic int stop = 0;
	struct term *t = calloc(TERM_THREADS, sizeof *t);
	int killed[2], ok = 0, lost = 0;

	p = testenv_open_app("pqpool-term-pipe", 8, conninfo, sizeof conninfo);
	atomic_store(&term_kill_ms, 0);
	for (int i = 0; i < TERM_THREADS; i++) {
		t[i] = (struct term){.p = p, .stop = &stop, .n = (long)i * 10000000};
		pthread_create(&t[i].th, NULL, term_work, &t[i]);
	}
	testenv_terminate_waves("pqpool-term-pipe", 2, 600, killed, &term_kill_ms);
	testenv_sleep_ms(1000);
	atomic_store(&stop, 1);
	for (int i = 0; i < TERM_THREADS; i++) {
		pthread_join(t[i].th, NULL);
		if (t[i].wrong)
			fail_msg("thread %d: %d wrong outcomes, first: %s", i, t[i].wrong,
			         t[i].why);
		ok += t[i].ok;
		lost += t[i].lost;
	}
	/* the first statements after the last wave succeeded within 1 s */
	for (int i = 0; i < TERM_THREADS; i++) {
		assert_true(t[i].first_ok_after > 0);
		assert_true(t[i].first_ok_after - atomic_load(&term_kill_ms) < 1000);
	}
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	printf("terminated %d then %d backends: %d ok, %d lost in flight (not idempotent), "
	       "%llu retries\n",
	       killed[0], killed[1], ok, lost, (unsigned long long)st.retries);
	assert_true(killed[0] > 0 && killed[1] > 0);
	assert_true(st.retries > 0);
	assert_true(ok > 1000);
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mixed_failures_prepared),
	        cmocka_unit_test(test_mixed_failures_unnamed),
	        cmocka_unit_test(test_inserts_exactly_once),
	        cmocka_unit_test(test_groups_form),
	        cmocka_unit_test(test_slow_times_out_alone),
	        cmocka_unit_test(test_leases_never_shared),
	        cmocka_unit_test(test_terminated_twice),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
