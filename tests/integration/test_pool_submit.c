/* test_pool_submit.c — the asynchronous API against a real server, driven
 * by the epoll adapter: each callback gets its own result or its own error,
 * a failure in a group never loses or doubles another statement, groups
 * really form (and never for statements that must run alone), a slow
 * statement times out alone, and what a loop holds goes back to the pool. */
#include "testenv.h"

#include <pqpool/epoll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pqpool *open_pool(int max, bool prepare, bool pipeline, int query_timeout_ms)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.pool_max = max;
	cfg.pool_min = 0;
	cfg.prepare = prepare && !testenv_bouncer(); /* DB_PREPARED_STATEMENTS=off */
	cfg.pipeline = pipeline;
	if (query_timeout_ms)
		cfg.query_timeout_ms = query_timeout_ms;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

static void assert_pool_idle(pqpool *p)
{
	pqpool_stats st;
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.active, 0);
	assert_int_equal(st.waiting, 0);
	assert_true(st.total <= st.max);
}

/* ---- every 7th fails: each callback its own answer ---- */

#define MIX_LOOPS       4
#define MIX_EACH        5000 /* 4 x 5000 = 20 000 statements */
#define MIX_OUTSTANDING 64

struct mixer {
	pthread_t th;
	pqpool *p;
	int id;
	const char *sql;
	pqpool_loop *loop;
	int next, done;
	int ok, failed_right, wrong;
	char why[200];
	char params[MIX_OUTSTANDING][2][24];
};

struct mix_call {
	struct mixer *m;
	int n;
};

static void mix_submit(struct mixer *m);

static void mix_done(void *arg, int status, const PGresult *res)
{
	struct mix_call *c = arg;
	struct mixer *m = c->m;
	long want = (long)m->id * 100000 + c->n;
	bool fail = c->n % 7 == 0;

	m->done++;
	if (fail) {
		const char *code = c->n % 14 == 0 ? "22012" : "23505";
		if (status == PQPOOL_EQUERY && strcmp(pqpool_errcode(), code) == 0)
			m->failed_right++;
		else if (m->wrong++ == 0)
			snprintf(m->why, sizeof m->why, "n=%d: %s (%s %s)", c->n,
			         pqpool_status_text(status), pqpool_errcode(), pqpool_errmsg());
	} else if (status != PQPOOL_OK) {
		if (m->wrong++ == 0)
			snprintf(m->why, sizeof m->why, "n=%d: %s (%s)", c->n,
			         pqpool_status_text(status), pqpool_errmsg());
	} else if (!res || atol(PQgetvalue(res, 0, 0)) != want) {
		if (m->wrong++ == 0)
			snprintf(m->why, sizeof m->why, "n=%d: got %s, want %ld", c->n,
			         res ? PQgetvalue(res, 0, 0) : "(none)", want);
	} else {
		m->ok++;
	}
	free(c);
	mix_submit(m); /* keep MIX_OUTSTANDING in flight */
}

static void mix_submit(struct mixer *m)
{
	struct mix_call *c;
	char v[24], d[24];
	const char *params[] = {v, d};
	int n;

	if (m->next >= MIX_EACH)
		return;
	n = ++m->next;
	c = malloc(sizeof *c);
	assert_non_null(c);
	*c = (struct mix_call){m, n};
	snprintf(v, sizeof v, "%ld", (long)m->id * 100000 + n);
	/* 0 divides by zero (22012); -1 raises a unique violation (23505) */
	snprintf(d, sizeof d, "%d", n % 14 == 0 ? 0 : n % 7 == 0 ? -1 : 1);
	assert_status(PQPOOL_OK, pqpool_submit(m->loop, m->sql, 2, params, 0, mix_done, c));
}

static void *mix_work(void *arg)
{
	struct mixer *m = arg;
	pqpool_epoll ep;
	if (pqpool_epoll_open(&ep, m->p) != PQPOOL_OK) {
		snprintf(m->why, sizeof m->why, "epoll_open: %s", pqpool_errmsg());
		m->wrong++;
		return NULL;
	}
	m->loop = ep.loop;
	for (int i = 0; i < MIX_OUTSTANDING; i++)
		mix_submit(m);
	if (pqpool_epoll_run(&ep, 120000) != 0 && m->wrong++ == 0)
		snprintf(m->why, sizeof m->why, "still pending after 120 s");
	pqpool_epoll_close(&ep);
	return NULL;
}

/* $2 = 1: the value; 0: division by zero; -1: a unique violation. */
#define MIX_SQL                                                                          \
	"SELECT CASE WHEN $2::int < 0 THEN (SELECT pipe_fail_unique()) ELSE "            \
	"$1::bigint / $2::int END"

static void run_mix(bool prepare)
{
	pqpool *p = open_pool(8, prepare, true, 0);
	struct mixer *m = calloc(MIX_LOOPS, sizeof *m);
	int ok = 0, failed = 0;

	testenv_admin("CREATE TABLE IF NOT EXISTS pipe_unique (k int PRIMARY KEY)");
	testenv_admin("INSERT INTO pipe_unique VALUES (1) ON CONFLICT DO NOTHING");
	testenv_admin("CREATE OR REPLACE FUNCTION pipe_fail_unique() RETURNS bigint "
	              "LANGUAGE sql AS 'INSERT INTO pipe_unique VALUES (1) RETURNING 0::bigint'");
	testenv_admin("GRANT ALL ON pipe_unique TO hyperpage");
	for (int i = 0; i < MIX_LOOPS; i++) {
		m[i] = (struct mixer){.p = p, .id = i + 1, .sql = MIX_SQL};
		pthread_create(&m[i].th, NULL, mix_work, &m[i]);
	}
	for (int i = 0; i < MIX_LOOPS; i++) {
		pthread_join(m[i].th, NULL);
		if (m[i].wrong)
			fail_msg("loop %d: %d wrong outcomes, first: %s", i, m[i].wrong,
			         m[i].why);
		assert_int_equal(m[i].done, MIX_EACH);
		ok += m[i].ok;
		failed += m[i].failed_right;
	}
	assert_int_equal(failed, MIX_LOOPS * (MIX_EACH / 7));
	assert_int_equal(ok + failed, MIX_LOOPS * MIX_EACH);
	assert_pool_idle(p);
	free(m);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	testenv_admin("DROP FUNCTION pipe_fail_unique()");
	testenv_admin("DROP TABLE pipe_unique");
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

#define INS_LOOPS 4
#define INS_EACH  2000

struct inserter {
	pthread_t th;
	pqpool *p;
	int id;
	pqpool_loop *loop;
	int next;
	char *ok;
	int unexpected;
	char why[200];
};

struct ins_call {
	struct inserter *w;
	int n;
};

static void ins_submit(struct inserter *w);

static void ins_done(void *arg, int status, const PGresult *res)
{
	struct ins_call *c = arg;
	struct inserter *w = c->w;
	(void)res;
	if (status == PQPOOL_OK) {
		w->ok[c->n] = 1;
	} else if (!(c->n % 7 == 3 && status == PQPOOL_EQUERY &&
	             strcmp(pqpool_errcode(), "23514") == 0)) {
		if (w->unexpected++ == 0)
			snprintf(w->why, sizeof w->why, "n=%d: %s (%s)", c->n,
			         pqpool_status_text(status), pqpool_errmsg());
	}
	free(c);
	ins_submit(w);
}

static void ins_submit(struct inserter *w)
{
	char th[16], num[16], v[16];
	const char *params[] = {th, num, v};
	struct ins_call *c;
	if (w->next >= INS_EACH)
		return;
	c = malloc(sizeof *c);
	assert_non_null(c);
	*c = (struct ins_call){w, w->next++};
	snprintf(th, sizeof th, "%d", w->id);
	snprintf(num, sizeof num, "%d", c->n);
	/* every 7th breaks the CHECK constraint (23514) */
	snprintf(v, sizeof v, "%d", c->n % 7 == 3 ? -1 : c->n);
	assert_status(PQPOOL_OK,
	              pqpool_submit(w->loop,
	                            "INSERT INTO pipe_rows (th, n, v) VALUES ($1, $2, $3)", 3,
	                            params, 0, ins_done, c));
}

static void *ins_work(void *arg)
{
	struct inserter *w = arg;
	pqpool_epoll ep;
	if (pqpool_epoll_open(&ep, w->p) != PQPOOL_OK) {
		w->unexpected++;
		return NULL;
	}
	w->loop = ep.loop;
	for (int i = 0; i < 32; i++)
		ins_submit(w);
	if (pqpool_epoll_run(&ep, 120000) != 0 && w->unexpected++ == 0)
		snprintf(w->why, sizeof w->why, "still pending after 120 s");
	pqpool_epoll_close(&ep);
	return NULL;
}

static void test_inserts_exactly_once(void **state)
{
	(void)state;
	pqpool *p = open_pool(6, true, true, 0);
	struct inserter w[INS_LOOPS];
	int succeeded = 0, rows, distinct;

	testenv_admin("DROP TABLE IF EXISTS pipe_rows");
	/* no unique key: a statement sent twice would show as two rows */
	testenv_admin("CREATE TABLE pipe_rows (th int, n int, v int CHECK (v >= 0))");
	testenv_admin("GRANT ALL ON pipe_rows TO hyperpage");
	for (int i = 0; i < INS_LOOPS; i++) {
		w[i] = (struct inserter){.p = p, .id = i, .ok = calloc(INS_EACH, 1)};
		pthread_create(&w[i].th, NULL, ins_work, &w[i]);
	}
	for (int i = 0; i < INS_LOOPS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].unexpected)
			fail_msg("loop %d: %d unexpected outcomes, first: %s", i,
			         w[i].unexpected, w[i].why);
	}
	rows = atoi(testenv_admin("SELECT count(*) FROM pipe_rows"));
	distinct = atoi(testenv_admin("SELECT count(DISTINCT (th, n)) FROM pipe_rows"));
	for (int i = 0; i < INS_LOOPS; i++)
		for (int n = 0; n < INS_EACH; n++)
			succeeded += w[i].ok[n];
	assert_int_equal(rows, distinct);
	assert_int_equal(rows, succeeded);
	assert_int_equal(INS_LOOPS * (INS_EACH - (INS_EACH + 3) / 7), succeeded);
	for (int i = 0; i < INS_LOOPS; i++) {
		long cnt = 0, sum = 0;
		char want[64];
		for (int n = 0; n < INS_EACH; n++)
			if (w[i].ok[n]) {
				cnt++;
				sum += n;
			}
		snprintf(want, sizeof want, "%ld %ld", cnt, sum);
		assert_string_equal(testenv_admin("SELECT count(*) || ' ' || coalesce(sum(n), "
		                                  "0) FROM pipe_rows WHERE th = %d",
		                                  i),
		                    want);
		free(w[i].ok);
	}
	testenv_admin("DROP TABLE pipe_rows");
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- groups form, and never for what must run alone ---- */

#define XIDS 48

struct xids {
	long xid[XIDS];
	int n, bad;
};

static void xid_done(void *arg, int status, const PGresult *res)
{
	struct xids *x = arg;
	if (status != PQPOOL_OK || !res || PQntuples(res) != 1) {
		x->bad++;
		return;
	}
	x->xid[x->n++] = atol(PQgetvalue(res, 0, 0));
}

/* Statements submitted together; how many pairs ran in one transaction. */
static int shared_xids(pqpool *p, unsigned flags)
{
	pqpool_epoll ep;
	struct xids x = {.n = 0};
	int shared = 0;
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	for (int i = 0; i < XIDS; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT txid_current()", 0, NULL,
		                                       flags, xid_done, &x));
	assert_int_equal(pqpool_epoll_run(&ep, 30000), 0);
	pqpool_epoll_close(&ep);
	assert_int_equal(x.bad, 0);
	assert_int_equal(x.n, XIDS);
	for (int i = 0; i < XIDS; i++)
		for (int j = i + 1; j < XIDS; j++)
			shared += x.xid[i] == x.xid[j];
	return shared;
}

static void test_groups_form(void **state)
{
	(void)state;
	pqpool *p = open_pool(4, true, true, 0);
	pqpool_stats st;
	assert_true(shared_xids(p, 0) > 0);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_true(st.pipeline_depth.count > 0);
	assert_true(st.pipeline_depth.sum > st.pipeline_depth.count); /* groups of several */
	assert_int_equal(st.pipeline_wait.count, (uint64_t)XIDS);     /* each statement once */
	/* alone on request: each in a transaction of its own */
	assert_int_equal(shared_xids(p, PQPOOL_NO_PIPELINE), 0);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));

	p = open_pool(4, true, false, 0); /* DB_PIPELINE=off */
	assert_int_equal(shared_xids(p, 0), 0);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.pipeline_depth.count, 0);
	assert_int_equal(st.pipeline_wait.count, 0);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* BEGIN is never pipelined: what runs after it on its connection is not in
 * its transaction (the release rolled it back). */
static void test_begin_alone(void **state)
{
	(void)state;
	pqpool *p = open_pool(1, true, true, 0);
	pqpool_epoll ep;
	struct xids x = {.n = 0};
	int begun = 0;
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	for (int i = 0; i < 8; i++) {
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "BEGIN", 0, NULL, 0, xid_done,
		                                       &x));
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT txid_current()", 0,
		                                       NULL, 0, xid_done, &x));
	}
	assert_int_equal(pqpool_epoll_run(&ep, 30000), 0);
	pqpool_epoll_close(&ep);
	/* a BEGIN's result has no row: its callback counted it as bad */
	begun = x.bad;
	assert_int_equal(begun, 8);
	assert_int_equal(x.n, 8);
	for (int i = 0; i < x.n; i++)
		for (int j = i + 1; j < x.n; j++)
			assert_true(x.xid[i] != x.xid[j]);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- a slow statement times out alone ---- */

struct slow {
	int ok, timed_out, other;
	int64_t slow_ms;
	int64_t t0;
};

static void fast_done(void *arg, int status, const PGresult *res)
{
	struct slow *s = arg;
	(void)res;
	if (status == PQPOOL_OK) {
		s->ok++;
	} else {
		s->other++;
		print_message("unexpected: %s: %s\n", pqpool_status_text(status),
		              pqpool_errmsg());
	}
}

static void slow_done(void *arg, int status, const PGresult *res)
{
	struct slow *s = arg;
	(void)res;
	s->slow_ms = testenv_now_ms() - s->t0;
	if (status == PQPOOL_ETIMEDOUT) {
		s->timed_out++;
	} else {
		s->other++;
		print_message("unexpected for the slow one: %s: %s\n",
		              pqpool_status_text(status), pqpool_errmsg());
	}
}

static void test_slow_times_out_alone(void **state)
{
	(void)state;
	pqpool *p = open_pool(2, true, true, 400);
	pqpool_epoll ep;
	struct slow s = {0};
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	s.t0 = testenv_now_ms();
	for (int i = 0; i < 10; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0,
		                                       fast_done, &s));
	assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT pg_sleep(10)", 0, NULL, 0,
	                                       slow_done, &s));
	for (int i = 0; i < 10; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 2", 0, NULL, 0,
		                                       fast_done, &s));
	assert_int_equal(pqpool_epoll_run(&ep, 30000), 0);
	assert_int_equal(s.timed_out, 1);
	assert_int_equal(s.other, 0);
	assert_int_equal(s.ok, 20);
	/* told at its deadline, not when the server gave up on it */
	assert_true(s.slow_ms >= 390 && s.slow_ms < 3000);
	/* the loop and its connections still work */
	s = (struct slow){0};
	for (int i = 0; i < 20; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 3", 0, NULL, 0,
		                                       fast_done, &s));
	assert_int_equal(pqpool_epoll_run(&ep, 30000), 0);
	assert_int_equal(s.ok, 20);
	pqpool_epoll_close(&ep);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- freeing a busy loop; a pool with nothing to give ---- */

struct count {
	int ok, closed, timed_out, other;
};

static void count_done(void *arg, int status, const PGresult *res)
{
	struct count *c = arg;
	(void)res;
	if (status == PQPOOL_OK)
		c->ok++;
	else if (status == PQPOOL_ECLOSED)
		c->closed++;
	else if (status == PQPOOL_ETIMEDOUT)
		c->timed_out++;
	else
		c->other++;
}

static void test_free_with_outstanding(void **state)
{
	(void)state;
	pqpool *p = open_pool(2, true, true, 0);
	pqpool_epoll ep;
	struct count c = {0};
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	for (int i = 0; i < 100; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT pg_sleep(0.01)", 0, NULL,
		                                       0, count_done, &c));
	pqpool_epoll_run_once(&ep, 50); /* some sent, some not */
	pqpool_epoll_close(&ep);
	assert_int_equal(c.ok + c.closed, 100);
	assert_true(c.closed > 0);
	assert_int_equal(c.other + c.timed_out, 0);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

struct giver {
	pthread_t th;
	pqpool_conn *lease;
};

static void *give_back_later(void *arg)
{
	struct giver *g = arg;
	testenv_sleep_ms(300);
	pqpool_release(g->lease);
	return NULL;
}

static void test_waits_for_a_connection(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_conn *lease = NULL;
	pqpool_epoll ep;
	struct count c = {0};
	struct giver g;
	int64_t t0;

	testenv_config(&cfg);
	cfg.pool_max = 1;
	cfg.pool_min = 0;
	cfg.connection_timeout_ms = 2000;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_acquire(p, 1000, &lease));
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	/* all the pool has is leased: the statements wait, then run */
	g.lease = lease;
	pthread_create(&g.th, NULL, give_back_later, &g);
	t0 = testenv_now_ms();
	for (int i = 0; i < 10; i++)
		assert_status(PQPOOL_OK,
		              pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0, count_done, &c));
	assert_int_equal(pqpool_epoll_run(&ep, 10000), 0);
	pthread_join(g.th, NULL);
	assert_int_equal(c.ok, 10);
	assert_true(testenv_now_ms() - t0 >= 250);

	/* and when none comes back in time: ETIMEDOUT at connection_timeout */
	assert_status(PQPOOL_OK, pqpool_acquire(p, 1000, &lease));
	c = (struct count){0};
	t0 = testenv_now_ms();
	for (int i = 0; i < 5; i++)
		assert_status(PQPOOL_OK,
		              pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0, count_done, &c));
	assert_int_equal(pqpool_epoll_run(&ep, 10000), 0);
	assert_int_equal(c.timed_out, 5);
	assert_true(testenv_now_ms() - t0 >= 1900);
	pqpool_release(lease);
	pqpool_epoll_close(&ep);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

static void test_bad_input(void **state)
{
	(void)state;
	pqpool *p = open_pool(1, true, true, 0);
	pqpool_epoll ep;
	pqpool_adapter none = {0};
	pqpool_loop *l = NULL;
	struct count c = {0};
	assert_status(PQPOOL_EINVAL, pqpool_loop_new(p, &none, &l));
	assert_null(l);
	assert_status(PQPOOL_EINVAL, pqpool_loop_new(NULL, &none, &l));
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	assert_status(PQPOOL_EINVAL, pqpool_submit(ep.loop, NULL, 0, NULL, 0, count_done, &c));
	assert_status(PQPOOL_EINVAL, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0, NULL, &c));
	assert_status(PQPOOL_EINVAL, pqpool_submit(ep.loop, "SELECT $1", 1, NULL, 0,
	                                           count_done, &c));
	assert_status(PQPOOL_EINVAL, pqpool_submit(NULL, "SELECT 1", 0, NULL, 0, count_done,
	                                           &c));
	/* a NULL parameter is SQL NULL */
	{
		const char *params[] = {NULL};
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT $1::int IS NULL", 1,
		                                       params, 0, count_done, &c));
	}
	assert_int_equal(pqpool_epoll_run(&ep, 10000), 0);
	assert_int_equal(c.ok, 1);
	pqpool_epoll_close(&ep);
	pqpool_loop_free(NULL);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* ---- every backend terminated, twice, under pipelined load ---- */

#define TERM_LOOPS       2
#define TERM_OUTSTANDING 100

static _Atomic int64_t term_kill_ms; /* when the last wave went out */

struct term {
	pthread_t th;
	pqpool *p;
	pqpool_loop *loop;
	_Atomic int *stop;
	long next;
	int ok, lost, wrong;
	int64_t first_ok_after; /* the first success after the last wave */
	char why[200];
};

struct term_call {
	struct term *t;
	long n;
};

static void term_submit(struct term *t);

/* Even n are PQPOOL_IDEMPOTENT: retried after a lost connection, so they
 * always succeed; odd n may have run when their connection was lost, so
 * they may fail with PQPOOL_ECONNLOST and nothing else. */
static void term_done(void *arg, int status, const PGresult *res)
{
	struct term_call *c = arg;
	struct term *t = c->t;
	if (status == PQPOOL_OK && res && atol(PQgetvalue(res, 0, 0)) == c->n + 1) {
		int64_t now = testenv_now_ms(), kill = atomic_load(&term_kill_ms);
		t->ok++;
		if (kill && !t->first_ok_after && now >= kill)
			t->first_ok_after = now;
	} else if (status == PQPOOL_ECONNLOST && c->n % 2) {
		t->lost++;
	} else if (t->wrong++ == 0) {
		snprintf(t->why, sizeof t->why, "n=%ld: %s (%s %s)", c->n,
		         pqpool_status_text(status), pqpool_errcode(), pqpool_errmsg());
	}
	free(c);
	if (!atomic_load(t->stop))
		term_submit(t);
}

static void term_submit(struct term *t)
{
	struct term_call *c = malloc(sizeof *c);
	char v[24];
	const char *params[] = {v};
	assert_non_null(c);
	*c = (struct term_call){t, t->next++};
	snprintf(v, sizeof v, "%ld", c->n);
	assert_status(PQPOOL_OK, pqpool_submit(t->loop, "SELECT $1::bigint + 1", 1, params,
	                                       c->n % 2 ? 0 : PQPOOL_IDEMPOTENT, term_done, c));
}

static void *term_work(void *arg)
{
	struct term *t = arg;
	pqpool_epoll ep;
	if (pqpool_epoll_open(&ep, t->p) != PQPOOL_OK) {
		snprintf(t->why, sizeof t->why, "epoll_open: %s", pqpool_errmsg());
		t->wrong++;
		return NULL;
	}
	t->loop = ep.loop;
	for (int i = 0; i < TERM_OUTSTANDING; i++)
		term_submit(t);
	if (pqpool_epoll_run(&ep, 60000) != 0 && t->wrong++ == 0)
		snprintf(t->why, sizeof t->why, "still pending after 60 s");
	pqpool_epoll_close(&ep);
	return NULL;
}

static void test_terminated_twice(void **state)
{
	(void)state;
	pqpool *p = NULL;
	pqpool_stats st;
	char conninfo[1024];
	_Atomic int stop = 0;
	struct term t[TERM_LOOPS];
	int killed[2], ok = 0, lost = 0;

	p = testenv_open_app("pqpool-term-async", 8, conninfo, sizeof conninfo);
	atomic_store(&term_kill_ms, 0);
	for (int i = 0; i < TERM_LOOPS; i++) {
		t[i] = (struct term){.p = p, .stop = &stop, .next = (long)i * 10000000};
		pthread_create(&t[i].th, NULL, term_work, &t[i]);
	}
	testenv_terminate_waves("pqpool-term-async", 2, 600, killed, &term_kill_ms);
	testenv_sleep_ms(1000);
	atomic_store(&stop, 1);
	for (int i = 0; i < TERM_LOOPS; i++) {
		pthread_join(t[i].th, NULL);
		if (t[i].wrong)
			fail_msg("loop %d: %d wrong outcomes, first: %s", i, t[i].wrong, t[i].why);
		/* the next statements succeeded within 1 s of the last wave */
		assert_true(t[i].first_ok_after > 0);
		assert_true(t[i].first_ok_after - atomic_load(&term_kill_ms) < 1000);
		ok += t[i].ok;
		lost += t[i].lost;
	}
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	printf("terminated %d then %d backends: %d ok, %d lost in flight (not idempotent), "
	       "%llu retries\n",
	       killed[0], killed[1], ok, lost, (unsigned long long)st.retries);
	/* the fault happened to work in flight, and retries absorbed it */
	assert_true(killed[0] > 0 && killed[1] > 0);
	assert_true(st.retries > 0);
	assert_true(ok > 1000);
	assert_pool_idle(p);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mixed_failures_prepared),
	        cmocka_unit_test(test_mixed_failures_unnamed),
	        cmocka_unit_test(test_inserts_exactly_once),
	        cmocka_unit_test(test_groups_form),
	        cmocka_unit_test(test_begin_alone),
	        cmocka_unit_test(test_slow_times_out_alone),
	        cmocka_unit_test(test_free_with_outstanding),
	        cmocka_unit_test(test_waits_for_a_connection),
	        cmocka_unit_test(test_bad_input),
	        cmocka_unit_test(test_terminated_twice),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
