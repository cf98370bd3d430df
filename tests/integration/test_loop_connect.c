/* test_loop_connect.c — an event loop opens connections without blocking:
 * against a server that accepts and never answers, every turn of the loop
 * returns at once and the statements fail with PQPOOL_ECONNECT at
 * connection_timeout_ms; against a port nobody listens on they fail at
 * once, and the loop waits before it tries again; against the real server
 * the connections it opens carry the statements and go back to the pool.
 * And the health check on a loop (pqpool_loop_check_health), shared or
 * not, healthy or not; and an idle connection taken during the pause. */
#include "testenv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pqpool/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback port: listening (backlog taken by the kernel, nobody ever
 * accepts or answers) when listen_too, else closed again (refused). */
static int loopback_port(bool listen_too, int *fd_out)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	if (listen_too) {
		assert_int_equal(listen(fd, 64), 0);
		*fd_out = fd;
	} else {
		close(fd);
		*fd_out = -1;
	}
	return ntohs(a.sin_port);
}

static pqpool *open_at(const char *conninfo, int connection_timeout_ms)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.conninfo = conninfo;
	cfg.pool_max = 4;
	cfg.pool_min = 0;
	cfg.connection_timeout_ms = connection_timeout_ms;
	cfg.retry_attempts = 1; /* each failure seen as it is */
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

/* A pool of 4 at a loopback port where no database answers, and a loop on
 * it. */
static pqpool *open_dead(int port, int connection_timeout_ms, pqpool_epoll *ep)
{
	char conninfo[256];
	pqpool *p;
	snprintf(conninfo, sizeof conninfo,
	         "host=127.0.0.1 port=%d user=nobody dbname=nothing sslmode=disable",
	         port);
	p = open_at(conninfo, connection_timeout_ms); /* the pool copies it */
	assert_status(PQPOOL_OK, pqpool_epoll_open(ep, p));
	return p;
}

struct tally {
	int ok, connect, other, n;
	int64_t last_ms;
	char why[300];
};

static void tally_done(void *arg, int status, const PGresult *res)
{
	struct tally *t = arg;
	t->n++;
	t->last_ms = testenv_now_ms();
	if (status == PQPOOL_OK && res && atoi(PQgetvalue(res, 0, 0)) == 1) {
		t->ok++;
		return;
	}
	if (status == PQPOOL_ECONNECT)
		t->connect++;
	else
		t->other++;
	snprintf(t->why, sizeof t->why, "%s: %s", pqpool_status_text(status),
	         pqpool_errmsg());
}

/* Runs ep until nothing is pending or max_ms passed; the longest single
 * turn, in ms, in *longest. */
static void run_timed(pqpool_epoll *ep, int max_ms, int64_t *longest)
{
	int64_t end = testenv_now_ms() + max_ms;
	*longest = 0;
	while (pqpool_loop_pending(ep->loop) > 0 && testenv_now_ms() < end) {
		int64_t t0 = testenv_now_ms(), took;
		pqpool_epoll_run_once(ep, 20);
		took = testenv_now_ms() - t0;
		if (took > *longest)
			*longest = took;
	}
}

static void test_silent_server(void **state)
{
	(void)state;
	int lfd, port = loopback_port(true, &lfd);
	pqpool *p;
	pqpool_epoll ep;
	pqpool_stats st;
	struct tally t = {0};
	int64_t t0, longest;

	p = open_dead(port, 600, &ep);
	t0 = testenv_now_ms();
	for (int i = 0; i < 5; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0,
		                                       tally_done, &t));
	/* submitting took no connect's time */
	assert_true(testenv_now_ms() - t0 < 300);
	run_timed(&ep, 5000, &longest);
	printf("silent server: %d ECONNECT after %lld ms, longest turn %lld ms: %s\n",
	       t.connect, (long long)(t.last_ms - t0), (long long)longest, t.why);
	assert_int_equal(t.connect, 5);
	assert_int_equal(t.ok + t.other, 0);
	assert_non_null(strstr(t.why, "within DB_CONNECTION_TIMEOUT"));
	/* they waited for the connect's deadline, each turn of the loop did not:
	 * a blocking connect would have held one turn 600 ms */
	assert_true(t.last_ms - t0 >= 550);
	assert_true(longest < 300);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.total, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	close(lfd);
}

static void test_refused(void **state)
{
	(void)state;
	int nofd, port = loopback_port(false, &nofd);
	pqpool *p;
	pqpool_epoll ep;
	struct tally t = {0};
	int64_t t0, longest, first;

	p = open_dead(port, 5000, &ep);
	t0 = testenv_now_ms();
	for (int i = 0; i < 3; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0,
		                                       tally_done, &t));
	run_timed(&ep, 5000, &longest);
	first = t.last_ms - t0;
	printf("refused: %d ECONNECT after %lld ms: %s\n", t.connect, (long long)first,
	       t.why);
	assert_int_equal(t.connect, 3);
	assert_non_null(strstr(t.why, "refused"));
	assert_true(first < 2500); /* told, not left to time out */
	/* the next one waits out the loop's pause before it connects again,
	 * and fails the same way */
	t = (struct tally){0};
	assert_status(PQPOOL_OK,
	              pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0, tally_done, &t));
	run_timed(&ep, 5000, &longest);
	assert_int_equal(t.connect, 1);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

static void run_until(pqpool_epoll *ep, const int *n, int want, int max_ms)
{
	int64_t end = testenv_now_ms() + max_ms;
	while (*n < want && testenv_now_ms() < end)
		pqpool_epoll_run_once(ep, 20);
}

static void test_opens_and_checks(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_epoll ep;
	pqpool_stats st;
	struct tally t = {0};
	testenv_verdict v[10];

	testenv_config(&cfg);
	cfg.pool_max = 4;
	cfg.pool_min = 0;
	cfg.health_share = true;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	/* the first check opens the loop's first connection, without blocking */
	memset(v, 0, sizeof v);
	assert_status(PQPOOL_OK,
	              pqpool_loop_check_health(ep.loop, 0, testenv_health_done, &v[0]));
	run_until(&ep, &v[0].n, 1, 5000);
	assert_int_equal(v[0].n, 1);
	assert_int_equal(v[0].h.status, PQPOOL_HEALTHY);
	assert_true(v[0].h.connection_count >= 1);
	/* checks while one is in flight share it: each told once */
	for (int i = 1; i < 10; i++)
		assert_status(PQPOOL_OK, pqpool_loop_check_health(
		                                 ep.loop, 0, testenv_health_done, &v[i]));
	assert_int_equal(pqpool_epoll_run(&ep, 5000), 0);
	for (int i = 1; i < 10; i++) {
		assert_int_equal(v[i].n, 1);
		assert_int_equal(v[i].h.status, PQPOOL_HEALTHY);
	}
	/* statements on connections the loop opened */
	for (int i = 0; i < 200; i++)
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0,
		                                       tally_done, &t));
	assert_int_equal(pqpool_epoll_run(&ep, 10000), 0);
	if (t.ok != 200)
		fail_msg("%d of 200 ok: %s", t.ok, t.why);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.active, 0);
	assert_true(st.total >= 1 && st.idle == st.total);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

static void test_health_down(void **state)
{
	(void)state;
	int lfd, sport = loopback_port(true, &lfd), nofd,
	         rport = loopback_port(false, &nofd);
	pqpool *p;
	pqpool_epoll ep;
	testenv_verdict v = {0}, w = {0};
	int64_t t0;

	/* refused: unhealthy with the connect's reason */
	p = open_dead(rport, 3000, &ep);
	assert_status(PQPOOL_OK,
	              pqpool_loop_check_health(ep.loop, 0, testenv_health_done, &v));
	run_until(&ep, &v.n, 1, 5000);
	printf("refused: %s in %.1f ms: %s\n", pqpool_health_text(v.h.status),
	       v.h.response_ms, v.h.error);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.h.status, PQPOOL_UNHEALTHY);
	assert_non_null(strstr(v.h.error, "could not connect"));
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));

	/* silent: unhealthy at the caller's bound, though a check with a
	 * longer one is in flight (sharing it would answer at 1500 ms) */
	p = open_dead(sport, 1500, &ep);
	v = (testenv_verdict){0};
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK,
	              pqpool_loop_check_health(ep.loop, 0, testenv_health_done, &w));
	assert_status(PQPOOL_OK,
	              pqpool_loop_check_health(ep.loop, 400, testenv_health_done, &v));
	run_until(&ep, &v.n, 1, 5000);
	printf("silent: %s in %.1f ms: %s\n", pqpool_health_text(v.h.status),
	       v.h.response_ms, v.h.error);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.h.status, PQPOOL_UNHEALTHY);
	assert_true(v.h.response_ms >= 350);
	assert_true(testenv_now_ms() - t0 < 1200);
	assert_int_equal(w.n, 0); /* still in flight */
	run_until(&ep, &w.n, 1, 5000);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.h.status, PQPOOL_UNHEALTHY);
	assert_true(w.h.response_ms >= 1400);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	close(lfd);
}

/* A statement past its deadline is cancelled from the loop's own watch: the
 * server stops it (pg_stat_activity), and no turn of the loop waited for
 * the request to go out. */
static void test_cancel_from_the_loop(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_epoll ep;
	PGresult *res = NULL;
	struct tally t = {0};
	int64_t t0, longest;
	const char *sleeper = "SELECT 1 FROM pg_sleep(5) /* loop-cancel */";

	testenv_config(&cfg);
	cfg.pool_max = 2;
	cfg.pool_min = 0;
	cfg.query_timeout_ms = 300;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK,
	              pqpool_submit(ep.loop, sleeper, 0, NULL, 0, tally_done, &t));
	run_timed(&ep, 3000, &longest);
	printf("cancelled after %lld ms, longest turn %lld ms: %s\n",
	       (long long)(t.last_ms - t0), (long long)longest, t.why);
	assert_int_equal(t.n, 1);
	assert_non_null(strstr(t.why, "timed out"));
	assert_true(t.last_ms - t0 < 1500);
	assert_true(longest < 300);
	/* the loop goes on turning until the request is done */
	for (int i = 0; i < 20; i++)
		pqpool_epoll_run_once(&ep, 10);
	assert_status(PQPOOL_OK,
	              pqpool_query(p,
	                           "SELECT count(*) FROM pg_stat_activity WHERE state = "
	                           "'active' AND query LIKE '%loop-cancel */'",
	                           0, NULL, 0, &res));
	/* the sleeper was stopped (this query's own text does not match) */
	assert_int_equal(atoi(PQgetvalue(res, 0, 0)), 0);
	PQclear(res);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

/* While the loop pauses its opens after failed ones, a statement still
 * takes an idle connection at once: the pause is for the server, not for
 * the connections the pool already has. */
static void test_idle_during_pause(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_conn *lease;
	pqpool_epoll ep;
	struct tally t = {0};
	int64_t t0, longest;

	if (testenv_bouncer())
		skip(); /* the role's limit is the server's, behind PgBouncer's own */
	testenv_config(&cfg);
	cfg.pool_max = 4;
	cfg.pool_min = 0;
	cfg.retry_attempts = 1; /* each failed open seen as it is */
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	assert_status(PQPOOL_OK, pqpool_acquire(p, 5000, &lease));
	assert_int_equal(testenv_backends_settled(1), 1);
	testenv_admin("ALTER ROLE hyperpage CONNECTION LIMIT 1");
	/* five opens refused in a row: the pause is now 400 to 800 ms */
	for (int i = 0; i < 5; i++) {
		assert_status(PQPOOL_OK, pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0,
		                                       tally_done, &t));
		run_timed(&ep, 5000, &longest);
	}
	printf("refused: %d ECONNECT: %s\n", t.connect, t.why);
	assert_int_equal(t.connect, 5);
	assert_non_null(strstr(t.why, "too many connections"));
	/* an idle connection now: taken without waiting out the pause */
	pqpool_release(lease);
	t = (struct tally){0};
	t0 = testenv_now_ms();
	assert_status(PQPOOL_OK,
	              pqpool_submit(ep.loop, "SELECT 1", 0, NULL, 0, tally_done, &t));
	run_timed(&ep, 5000, &longest);
	printf("idle during the pause: %d ok after %lld ms: %s\n", t.ok,
	       (long long)(t.last_ms - t0), t.why);
	assert_int_equal(t.ok, 1);
	assert_true(t.last_ms - t0 < 300);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
}

static int reset_role_limit(void **state)
{
	(void)state;
	if (!testenv_bouncer())
		testenv_admin("ALTER ROLE hyperpage CONNECTION LIMIT -1");
	return 0;
}

static void test_bad_input(void **state)
{
	(void)state;
	testenv_verdict v = {0};
	assert_status(PQPOOL_EINVAL,
	              pqpool_loop_check_health(NULL, 0, testenv_health_done, &v));
	assert_int_equal(v.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_silent_server),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_opens_and_checks),
	        cmocka_unit_test(test_health_down),
	        cmocka_unit_test(test_cancel_from_the_loop),
	        cmocka_unit_test_teardown(test_idle_during_pause, reset_role_limit),
	        cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
