/* test_health_lost.c — a health check while the server is closing every
 * connection it had (terminated backends, which die one by one, some only
 * after the pool checked their connection): the database still answers, so
 * the check must not say unhealthy. Tries one and two land on connections that
 * are lost; the last goes on a connection opened after the losses, by the
 * blocking check (pqpool_check_health) and by the loop's
 * (pqpool_loop_check_health).
 *
 * The dying backends are a loopback proxy in front of the test cluster:
 * each connection it carried before doom() is closed, both ways, as soon as
 * its client sends anything; until then it looks alive (open, silent), as
 * a backend that has its SIGTERM but has not yet exited does. */
#include "testenv.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pqpool/epoll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

enum { MAXPAIRS = 16 };

typedef struct pair {
	int cfd, sfd; /* client side, server side; -1 when closed */
	int epoch;    /* doom()s before it was accepted */
} pair;

typedef struct proxy {
	int lfd, port;
	struct sockaddr_storage to;
	socklen_t tolen;
	pair pairs[MAXPAIRS];
	_Atomic int epoch;
	_Atomic bool stop;
	_Atomic int lost; /* statements that met a doomed connection */
	pthread_t th;
} proxy;

static void pair_close(pair *pr)
{
	if (pr->cfd >= 0)
		close(pr->cfd);
	if (pr->sfd >= 0)
		close(pr->sfd);
	pr->cfd = pr->sfd = -1;
}

static void accept_one(proxy *px)
{
	int cfd = accept(px->lfd, NULL, NULL), sfd;
	if (cfd < 0)
		return;
	sfd = socket(px->to.ss_family, SOCK_STREAM, 0);
	if (sfd < 0 || connect(sfd, (struct sockaddr *)&px->to, px->tolen) != 0) {
		close(cfd);
		if (sfd >= 0)
			close(sfd);
		return;
	}
	for (int i = 0; i < MAXPAIRS; i++) {
		if (px->pairs[i].cfd < 0) {
			px->pairs[i] = (pair){cfd, sfd, atomic_load(&px->epoch)};
			return;
		}
	}
	close(cfd);
	close(sfd);
}

/* Moves what from has to to; false when from is done (or to is gone). */
static bool pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);
	if (n <= 0)
		return false;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *proxy_main(void *arg)
{
	proxy *px = arg;
	while (!atomic_load(&px->stop)) {
		struct pollfd fds[1 + 2 * MAXPAIRS];
		int idx[1 + 2 * MAXPAIRS], n = 1;
		fds[0] = (struct pollfd){.fd = px->lfd, .events = POLLIN};
		for (int i = 0; i < MAXPAIRS; i++) {
			if (px->pairs[i].cfd < 0)
				continue;
			fds[n] =
			        (struct pollfd){.fd = px->pairs[i].cfd, .events = POLLIN};
			idx[n++] = i;
			fds[n] =
			        (struct pollfd){.fd = px->pairs[i].sfd, .events = POLLIN};
			idx[n++] = i;
		}
		if (poll(fds, (nfds_t)n, 20) <= 0)
			continue;
		if (fds[0].revents)
			accept_one(px);
		for (int k = 1; k < n; k++) {
			pair *pr = &px->pairs[idx[k]];
			if (!fds[k].revents || pr->cfd < 0)
				continue;
			if (fds[k].fd == pr->cfd) {
				if (pr->epoch < atomic_load(&px->epoch)) {
					/* a doomed backend: gone when spoken to (a
					 * statement; a Terminate, 'X', is a goodbye) */
					char b = 0;
					if (read(pr->cfd, &b, 1) == 1 && b != 'X')
						atomic_fetch_add(&px->lost, 1);
					pair_close(pr);
				} else if (!pump(pr->cfd, pr->sfd)) {
					pair_close(pr);
				}
			} else if (fds[k].fd == pr->sfd && !pump(pr->sfd, pr->cfd)) {
				pair_close(pr);
			}
		}
	}
	for (int i = 0; i < MAXPAIRS; i++)
		pair_close(&px->pairs[i]);
	close(px->lfd);
	return NULL;
}

/* A proxy to the fixture's server; conninfo (n bytes) reaches the server
 * through it, every other setting as the fixture's URL has it. */
static void proxy_start(proxy *px, char *conninfo, size_t n)
{
	char *perr = NULL, port[16];
	const char *host = "127.0.0.1", *sport = "5432";
	PQconninfoOption *o = PQconninfoParse(testenv_url(), &perr);
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	socklen_t len = sizeof a;
	size_t used = 0;

	if (!o)
		fail_msg("fixture URL: %s", perr ? perr : "?");
	memset(px, 0, sizeof *px);
	for (int i = 0; i < MAXPAIRS; i++)
		px->pairs[i].cfd = px->pairs[i].sfd = -1;
	conninfo[0] = '\0';
	for (PQconninfoOption *e = o; e->keyword; e++) {
		if (!e->val)
			continue;
		if (strcmp(e->keyword, "host") == 0 ||
		    strcmp(e->keyword, "hostaddr") == 0) {
			host = e->val;
			continue;
		}
		if (strcmp(e->keyword, "port") == 0) {
			sport = e->val;
			continue;
		}
		used += (size_t)snprintf(conninfo + used, n - used, "%s='%s' ",
		                         e->keyword,
		                         e->val); /* the fixture's values hold no quote */
		assert_true(used < n);
	}
	if (host[0] == '/')
		host = "127.0.0.1"; /* the fixture listens on loopback too */
	assert_int_equal(getaddrinfo(host, sport, &hints, &ai), 0);
	memcpy(&px->to, ai->ai_addr, ai->ai_addrlen);
	px->tolen = ai->ai_addrlen;
	freeaddrinfo(ai);
	PQconninfoFree(o);

	px->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(px->lfd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(px->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(px->lfd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(listen(px->lfd, 16), 0);
	px->port = ntohs(a.sin_port);
	snprintf(port, sizeof port, "%d", px->port);
	used += (size_t)snprintf(conninfo + used, n - used, "host=127.0.0.1 port=%s",
	                         port);
	assert_true(used < n);
	assert_int_equal(pthread_create(&px->th, NULL, proxy_main, px), 0);
}

/* Every connection carried until now dies when next spoken to. */
static void proxy_doom(proxy *px)
{
	atomic_fetch_add(&px->epoch, 1);
}

static void proxy_stop(proxy *px)
{
	atomic_store(&px->stop, true);
	pthread_join(px->th, NULL);
}

/* A pool of 4 through the proxy with 3 idle connections; without
 * pipeline, each statement on a connection of its own. */
static pqpool *open_three(const char *conninfo, bool pipeline)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_conn *c[3];
	testenv_config(&cfg);
	cfg.conninfo = conninfo;
	cfg.pool_max = 4;
	cfg.pool_min = 0;
	cfg.health_share = false;
	cfg.pipeline = pipeline;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	for (int i = 0; i < 3; i++)
		assert_status(PQPOOL_OK, pqpool_acquire(p, 5000, &c[i]));
	for (int i = 0; i < 3; i++)
		pqpool_release(c[i]);
	return p;
}

static void test_blocking_check(void **state)
{
	(void)state;
	char conninfo[1024];
	proxy px;
	pqpool *p;
	pqpool_health h;
	pqpool_stats st;

	proxy_start(&px, conninfo, sizeof conninfo);
	p = open_three(conninfo, true);
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_int_equal(h.status, PQPOOL_HEALTHY);
	proxy_doom(&px);
	assert_status(PQPOOL_OK, pqpool_check_health(p, &h));
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	printf("blocking: %s in %.1f ms (%s); lost %d, broken %llu, discarded %llu\n",
	       pqpool_health_text(h.status), h.response_ms, h.error,
	       atomic_load(&px.lost),
	       (unsigned long long)st.closed_by[PQPOOL_CLOSE_BROKEN],
	       (unsigned long long)st.closed_by[PQPOOL_CLOSE_DISCARDED]);
	/* answered (degraded, most likely: two of the few queries of the
	 * window failed), not unhealthy */
	assert_true(h.status != PQPOOL_UNHEALTHY);
	/* two tries lost, the third on a connection opened for it: the last
	 * idle one was opened with the others, so it was replaced unasked */
	assert_int_equal(atomic_load(&px.lost), 2);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_BROKEN], 2);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_DISCARDED], 1);
	assert_int_equal(st.active, 0);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	proxy_stop(&px);
}

static void loop_check(bool pipeline)
{
	char conninfo[1024];
	proxy px;
	pqpool *p;
	pqpool_epoll ep;
	pqpool_stats st;
	testenv_verdict v = {0};
	int64_t end;

	proxy_start(&px, conninfo, sizeof conninfo);
	p = open_three(conninfo, pipeline);
	assert_status(PQPOOL_OK, pqpool_epoll_open(&ep, p));
	proxy_doom(&px);
	assert_status(PQPOOL_OK,
	              pqpool_loop_check_health(ep.loop, 0, testenv_health_done, &v));
	end = testenv_now_ms() + 5000;
	while (v.n < 1 && testenv_now_ms() < end)
		pqpool_epoll_run_once(&ep, 20);
	assert_status(PQPOOL_OK, pqpool_stats_get(p, &st));
	printf("loop%s: %s in %.1f ms (%s); lost %d, opened %llu\n",
	       pipeline ? "" : " (no pipeline)", pqpool_health_text(v.h.status),
	       v.h.response_ms, v.h.error, atomic_load(&px.lost),
	       (unsigned long long)st.opened);
	assert_int_equal(v.n, 1);
	assert_true(v.h.status != PQPOOL_UNHEALTHY); /* as above */
	/* two tries lost on idle connections; the third on one the loop opened
	 * for it (room was left by the two lost), the last idle one unused */
	assert_int_equal(atomic_load(&px.lost), 2);
	assert_int_equal(st.opened, 4);
	pqpool_epoll_close(&ep);
	assert_status(PQPOOL_OK, pqpool_close(p, 5000));
	proxy_stop(&px);
}

static void test_loop_check(void **state)
{
	(void)state;
	loop_check(true);
}

/* the health query then runs alone: its last try too */
static void test_loop_check_alone(void **state)
{
	(void)state;
	loop_check(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_blocking_check),
	        cmocka_unit_test(test_loop_check),
	        cmocka_unit_test(test_loop_check_alone),
	};
	testenv_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
