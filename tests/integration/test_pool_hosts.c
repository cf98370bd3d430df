/* test_pool_hosts.c — a pool of two hosts against the test cluster, the
 * first of them a port where nothing listens: the pool opens on the other
 * and every API goes on working there (writers, reads falling back to the
 * primary, leases, transactions, the event loop); the dead host is banned,
 * reported in the hosts list, the health (degraded) and /metrics; with
 * DB_READ_TARGET=standby a read fails, naming the setting. The failover
 * suite (tests/faults/test_failover.c) runs a real standby. */
#include "testenv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pqpool/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char url[1024];
static int dead_port;

/* A loopback port that refuses connections: bound, then closed. */
static int refused_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t n = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static pqpool *open_hosts(int read_target)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	dead_port = refused_port();
	snprintf(url, sizeof url,
	         "postgresql://hyperpage:%s@127.0.0.1:%d,127.0.0.1:%s/hyperpage",
	         testenv_get("PQPOOL_TEST_PASSWORD"), dead_port,
	         testenv_get("PQPOOL_TEST_PORT"));
	testenv_config(&cfg);
	cfg.conninfo = url;
	cfg.pool_max = 4;
	cfg.pool_min = 1;
	cfg.read_target = read_target;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

static int run_txn(pqpool_conn *c, void *arg)
{
	(void)arg;
	int rc = pqpool_exec(c, "BEGIN", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "SELECT txid_current()", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(c, "COMMIT", 0, NULL, NULL);
	return rc;
}

static void count_done(void *arg, int status, const PGresult *res)
{
	int *n = arg;
	if (status == PQPOOL_OK && res && strcmp(PQgetvalue(res, 0, 0), "1") == 0)
		(*n)++;
}

static void test_one_host_down(void **state)
{
	(void)state;
	pqpool *p = open_hosts(PQPOOL_READ_PREFER_STANDBY);
	pqpool_host hosts[PQPOOL_MAX_HOSTS];
	pqpool_stats st;
	pqpool_health h;
	pqpool_conn *c;
	pqpool_epoll ep;
	PGresult *res = NULL;
	char dead[64], *text;
	int ok = 0;

	snprintf(dead, sizeof dead, "127.0.0.1:%d", dead_port);
	assert_int_equal(pqpool_hosts_get(p, hosts, PQPOOL_MAX_HOSTS), 2);
	assert_string_equal(hosts[0].address, dead);
	assert_int_equal(hosts[0].state, PQPOOL_HOST_BANNED);
	assert_true(hosts[0].failures >= 1);
	assert_int_equal(hosts[0].connections, 0);
	assert_int_equal(hosts[1].role, PQPOOL_ROLE_PRIMARY);
	assert_int_equal(hosts[1].state, PQPOOL_HOST_UP);
	assert_true(hosts[1].connections >= 1);
	/* a pool of one host has no list */
	assert_int_equal(pqpool_hosts_get(NULL, hosts, 2), 0);

	/* writers, reads (no standby: the primary), leases, transactions */
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT inet_server_port()", 0, NULL,
	                                      PQPOOL_READ, &res));
	assert_string_equal(PQgetvalue(res, 0, 0), testenv_get("PQPOOL_TEST_PORT"));
	PQclear(res);
	assert_status(PQPOOL_OK, pqpool_acquire_read(p, -1, &c));
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_run(p, "txn", run_txn, NULL));

	/* the event loop, writes and reads */
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	for (int i = 0; i < 200; i++)
		assert_status(PQPOOL_OK,
		              pqpool_submit(ep.loop, "SELECT 1", 0, NULL,
		                            i % 2 ? PQPOOL_READ : 0, count_done, &ok));
	assert_int_equal(pqpool_epoll_run(&ep, 10000), 0);
	pqpool_epoll_close(&ep);
	assert_int_equal(ok, 200);

	/* reported: degraded, the dead host named; the metrics by host */
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_DEGRADED);
	assert_non_null(strstr(h.error, dead));
	assert_int_equal(h.nhosts, 2);
	text = pqpool_render_health_json(&h);
	assert_non_null(strstr(text, "\"hosts\":[{\"address\":\"127.0.0.1:"));
	assert_null(strstr(text, testenv_get("PQPOOL_TEST_PASSWORD")));
	free(text);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	assert_int_equal(st.nhosts, 2);
	assert_int_equal(st.total, st.hosts[0].connections + st.hosts[1].connections);
	assert_int_equal(st.max, 8); /* 4 per host */
	assert_true(st.queries >= 200);
	text = pqpool_render_prometheus(&st);
	assert_non_null(strstr(text, "db_client_host_up{host=\"127.0.0.1:"));
	free(text);
	assert_int_equal(st.active, 0);
	assert_status(PQPOOL_OK, pqpool_maintain(p));
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

static void test_read_target_standby(void **state)
{
	(void)state;
	pqpool *p = open_hosts(PQPOOL_READ_STANDBY);
	pqpool_conn *c;
	/* no standby answers: a read fails, a write does not */
	assert_status(PQPOOL_ECONNECT,
	              pqpool_query(p, "SELECT 1", 0, NULL, PQPOOL_READ, NULL));
	assert_non_null(strstr(pqpool_errmsg(), "DB_READ_TARGET=standby"));
	assert_status(PQPOOL_ECONNECT, pqpool_acquire_read(p, 500, &c));
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
}

/* Both hosts refuse: open (not fail-fast) succeeds empty, a call fails
 * within its timeout with both hosts named. */
static void test_no_host_answers(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool *p = NULL;
	int64_t t0;
	snprintf(url, sizeof url, "postgresql://hyperpage:x@127.0.0.1:%d,127.0.0.1:%d/h",
	         refused_port(), refused_port());
	testenv_config(&cfg);
	cfg.conninfo = url;
	cfg.pool_min = 0;
	cfg.connection_timeout_ms = 600;
	cfg.retry_attempts = 1;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	t0 = testenv_now_ms();
	assert_status(PQPOOL_ECONNECT, pqpool_query(p, "SELECT 1", 0, NULL, 0, NULL));
	assert_true(testenv_now_ms() - t0 < 3000);
	assert_non_null(strstr(pqpool_errmsg(), "none of the 2 hosts"));
	assert_status(PQPOOL_OK, pqpool_close(p, 2000));
	cfg.fail_fast = true;
	assert_status(PQPOOL_ECONNECT, pqpool_open(&cfg, &p));
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_one_host_down),
	        cmocka_unit_test(test_read_target_standby),
	        cmocka_unit_test(test_no_host_answers),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
