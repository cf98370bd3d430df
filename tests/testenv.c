/* testenv.c — access to the fixture's throwaway cluster for the tests. */
#include "testenv.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXKEYS 32
static char keys[MAXKEYS][700];
static char vals[MAXKEYS][700];
static int nkeys = -1;

static void load(void)
{
	const char *path = getenv("PQPOOL_TEST_ENV");
	char line[700];
	FILE *f;
	if (nkeys >= 0)
		return;
	nkeys = 0;
	if (!path || !(f = fopen(path, "r"))) {
		fail_msg("PQPOOL_TEST_ENV (%s) unreadable: run through ctest, which "
		         "starts the cluster fixture",
		         path ? path : "unset");
		return;
	}
	while (fgets(line, sizeof line, f) && nkeys < MAXKEYS) {
		char *eq = strchr(line, '=');
		size_t n = strcspn(line, "\n");
		line[n] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		snprintf(keys[nkeys], sizeof keys[0], "%s", line);
		snprintf(vals[nkeys], sizeof vals[0], "%s", eq + 1);
		nkeys++;
	}
	fclose(f);
}

const char *testenv_get(const char *key)
{
	load();
	for (int i = 0; i < nkeys; i++)
		if (strcmp(keys[i], key) == 0)
			return vals[i];
	return NULL;
}

const char *testenv_url(void)
{
	const char *u = testenv_get("DATABASE_URL");
	if (!u)
		fail_msg("fixture env has no DATABASE_URL");
	return u;
}

const char *testenv_admin(const char *fmt, ...)
{
	static char out[1024];
	char sql[4096];
	va_list ap;
	PGconn *c;
	PGresult *r;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	c = PQconnectdb(testenv_get("PQPOOL_TEST_ADMIN"));
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("admin connect: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("admin SQL failed: %s: %s", sql, PQerrorMessage(c));
	out[0] = '\0';
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return out;
}

int testenv_pgctl(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' ctl '%s' %s >/dev/null 2>&1",
	         testenv_get("PQPOOL_TEST_CLUSTER"), testenv_get("PQPOOL_TEST_PGDATA"),
	         args);
	return system(cmd);
}

void testenv_config(pqpool_config *cfg)
{
	pqpool_config_init(cfg);
	cfg->conninfo = testenv_url();
	cfg->log_fn = testenv_log;
	if (testenv_bouncer()) {
		cfg->statement_timeout_ms = 0;
		cfg->pipeline_one_sync = true;
	}
}

pqpool *testenv_open_app(const char *app, int max, char *conninfo, size_t n)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	snprintf(conninfo, n, "%s?application_name=%s", testenv_url(), app);
	testenv_config(&cfg);
	cfg.conninfo = conninfo;
	cfg.pool_max = max;
	cfg.retry_base_delay_ms = 20;
	/* Each wave of testenv_terminate_waves can cost a statement two
	 * attempts: the one in flight when its backend went, and a retry that,
	 * within its short backoff, lands on a connection whose backend the same
	 * wave is still terminating on a loaded machine (seen under ctest -j:
	 * "attempt 2 failed" after the first wave). Two waves, five attempts. */
	cfg.retry_attempts = 5;
	cfg.prepare = !testenv_bouncer();
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

void testenv_terminate_waves(const char *app, int waves, int every_ms, int *killed,
                             _Atomic int64_t *last_ms)
{
	for (int k = 0; k < waves; k++) {
		testenv_sleep_ms(every_ms);
		killed[k] = atoi(
		        testenv_admin("SELECT count(pg_terminate_backend(pid)) FROM "
		                      "pg_stat_activity WHERE application_name = '%s'",
		                      app));
		atomic_store(last_ms, testenv_now_ms());
	}
}

bool testenv_bouncer(void)
{
	const char *b = testenv_get("PQPOOL_TEST_BOUNCER");
	return b && strcmp(b, "1") == 0;
}

void testenv_filter(void)
{
	const char *f = getenv("PQPOOL_TEST_FILTER");
	if (f && *f)
		cmocka_set_test_filter(f);
}

#define MAXLOG 256
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *logbuf[MAXLOG];
static int nlog;

void testenv_log(void *arg, pqpool_log_level level, const char *msg)
{
	const char *pw = testenv_get("PQPOOL_TEST_PASSWORD");
	(void)arg;
	if (getenv("PQPOOL_TEST_VERBOSE"))
		fprintf(stderr, "log[%d]: %s\n", (int)level, msg);
	if (pw && *pw && strstr(msg, pw))
		fail_msg("the password appeared in a log message: %s", msg);
	pthread_mutex_lock(&log_mu);
	if (nlog == MAXLOG) {
		free(logbuf[0]);
		memmove(logbuf, logbuf + 1, sizeof logbuf[0] * (MAXLOG - 1));
		nlog--;
	}
	logbuf[nlog++] = strdup(msg);
	pthread_mutex_unlock(&log_mu);
}

int testenv_log_count(const char *needle)
{
	int n = 0;
	pthread_mutex_lock(&log_mu);
	for (int i = 0; i < nlog; i++)
		if (logbuf[i] && strstr(logbuf[i], needle))
			n++;
	pthread_mutex_unlock(&log_mu);
	return n;
}

int testenv_log_has(const char *needle)
{
	return testenv_log_count(needle) > 0;
}

void testenv_log_reset(void)
{
	pthread_mutex_lock(&log_mu);
	for (int i = 0; i < nlog; i++)
		free(logbuf[i]);
	nlog = 0;
	pthread_mutex_unlock(&log_mu);
}

int64_t testenv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void testenv_health_done(void *arg, const pqpool_health *h)
{
	testenv_verdict *v = arg;
	v->n++;
	v->h = *h;
}

void testenv_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int testenv_blackhole(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		fail_msg("blackhole: cannot listen on loopback");
	*port = ntohs(sa.sin_port);
	return fd;
}

int testenv_backends_settled(int want)
{
	int n = atoi(testenv_admin(
	        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'hyperpage'"));
	for (int i = 0; i < 150 && n != want; i++) {
		testenv_sleep_ms(20);
		n = atoi(testenv_admin("SELECT count(*) FROM pg_stat_activity WHERE "
		                       "usename = 'hyperpage'"));
	}
	return n;
}

void testenv_fault_line(const char *line)
{
	const char *path = getenv("PQPOOL_FAULTS_SUMMARY");
	FILE *f;
	fputs(line, stdout);
	fflush(stdout);
	if (path && (f = fopen(path, "a"))) {
		fputs(line, f);
		fclose(f);
	}
}
