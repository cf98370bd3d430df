/* cmd_serve.c — `pqpool serve`: one pool, the HTTP server, upkeep, shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "settings.h"
#include "setup.h"

/* Descriptors besides the HTTP connections and the pool's: stdio, the
 * listening socket, epoll sets and inter-thread pipes of the workers. */
#define SPARE_FDS 64

static int64_t now_ms(void)
{
	return pqc_now_ns() / 1000000;
}

/* Every connection is a descriptor: raise the soft limit (commonly 1024)
 * towards the hard one rather than refuse connections below
 * HTTP_MAX_CONNECTIONS. */
static void raise_fd_limit(const serve_settings *ss, int pool_max)
{
	rlim_t need = (rlim_t)ss->max_connections + (rlim_t)pool_max + SPARE_FDS;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur =
	        rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
		return;
	log_msg(PQPOOL_LOG_WARN,
	        "HTTP_MAX_CONNECTIONS=%d needs about %llu file descriptors, the limit "
	        "is %llu: connections past it will be refused",
	        ss->max_connections, (unsigned long long)need,
	        (unsigned long long)rl.rlim_cur);
}

/* The host's duty (the library has no timers): reap idle connections and
 * refill to DB_POOL_MIN. A failure is logged when it starts and when it
 * ends, not every second. */
static void maintain(pqpool *pool, bool *failing)
{
	int rc = pqpool_maintain(pool);

	if (rc != PQPOOL_OK && !*failing)
		log_msg(PQPOOL_LOG_WARN, "pool upkeep: %s (retrying every second)",
		        *pqpool_errmsg() ? pqpool_errmsg() : pqpool_status_text(rc));
	else if (rc == PQPOOL_OK && *failing)
		log_msg(PQPOOL_LOG_INFO, "pool upkeep: the database answers again");
	*failing = rc != PQPOOL_OK;
}

/*
 * Waits for SIGTERM or SIGINT, driving upkeep once a second meanwhile and,
 * when the service manager keeps a watchdog, sending WATCHDOG=1 every half
 * of its period. The pings come from this loop, between upkeep calls, not
 * from a thread of their own: they stop when the loop or the pool's lock is
 * stuck, which is what the watchdog is there to notice.
 */
static int wait_for_signal(const sigset_t *sigs, pqpool *pool, notify_target *nt)
{
	const int64_t upkeep_ns = 1000000000;
	int64_t ping_ns = nt->watchdog_usec * 500; /* half, in ns; 0 = none */
	int64_t now = pqc_now_ns(), next_upkeep = now + upkeep_ns;
	int64_t next_ping = ping_ns ? now : INT64_MAX; /* the first at once */
	bool failing = false;

	for (;;) {
		int64_t wake = next_upkeep < next_ping ? next_upkeep : next_ping;
		int64_t wait = wake > now ? wake - now : 0;
		struct timespec ts = {(time_t)(wait / 1000000000),
		                      (long)(wait % 1000000000)};
		int sig = sigtimedwait(sigs, NULL, &ts); /* a zero wait polls */

		if (sig > 0)
			return sig;
		now = pqc_now_ns();
		if (now >= next_ping) {
			notify_send(nt, "WATCHDOG=1");
			next_ping = now + ping_ns;
		}
		if (now >= next_upkeep) {
			maintain(pool, &failing);
			now = pqc_now_ns();
			next_upkeep = now + upkeep_ns;
		}
	}
}

/* Pool upkeep blocks this loop for up to DB_CONNECTION_TIMEOUT while the
 * database hangs, on top of the half period between pings. */
static void warn_watchdog(const notify_target *nt, int connection_timeout_ms)
{
	if (nt->watchdog_usec &&
	    nt->watchdog_usec / 1000 <= 2 * (int64_t)connection_timeout_ms)
		log_msg(PQPOOL_LOG_WARN,
		        "WATCHDOG_USEC=%lld is not above twice DB_CONNECTION_TIMEOUT="
		        "%d ms: pool upkeep waiting on a database that hangs may miss "
		        "the watchdog (WatchdogSec= should exceed %d ms)",
		        (long long)nt->watchdog_usec, connection_timeout_ms,
		        2 * connection_timeout_ms);
}

/* Lets requests in flight finish, up to the deadline. Returns how many are
 * left. A second signal ends the process at once. */
static int drain(http_server *srv, const sigset_t *sigs, int64_t deadline)
{
	int n;

	while ((n = http_in_flight(srv)) > 0) {
		int64_t left = deadline - now_ms();
		struct timespec wait = {0, 20 * 1000000};

		if (left <= 0)
			break;
		if (left < 20)
			wait.tv_nsec = (long)left * 1000000;
		if (sigtimedwait(sigs, NULL, &wait) > 0) {
			log_msg(PQPOOL_LOG_WARN,
			        "second signal during the drain: exiting now, "
			        "%d request(s) cut off",
			        n);
			_exit(CLI_EXIT_FAIL); /* no cleanup: the threads are still busy */
		}
	}
	return n;
}

static int shut_down(http_server *srv, pqpool *pool, notify_target *nt,
                     const sigset_t *sigs, int sig, int timeout_ms)
{
	int64_t t0 = now_ms(), deadline = t0 + timeout_ms, left;
	uint64_t done0 = http_completed(srv);
	int n, rc;
	char status[128];

	snprintf(status, sizeof(status),
	         "STOPPING=1\nSTATUS=draining %d request(s) in flight",
	         http_in_flight(srv));
	notify_send(nt, status);
	log_msg(PQPOOL_LOG_INFO,
	        "received %s: no new connections, draining %d request(s) in flight "
	        "(SHUTDOWN_TIMEOUT=%d ms)",
	        sig == SIGTERM ? "SIGTERM" : "SIGINT", http_in_flight(srv), timeout_ms);
	http_quiesce(srv);
	n = drain(srv, sigs, deadline);
	if (n == 0)
		log_msg(PQPOOL_LOG_INFO, "drained %llu request(s) in %lld ms",
		        (unsigned long long)(http_completed(srv) - done0),
		        (long long)(now_ms() - t0));
	else
		log_msg(PQPOOL_LOG_WARN,
		        "drain timeout: %d request(s) still in flight after %lld ms; "
		        "stopping anyway",
		        n, (long long)(now_ms() - t0));
	/* waits for a health probe still running: DB_CONNECTION_TIMEOUT bounds
	 * it; afterwards no thread calls the pool */
	http_stop(srv);
	left = deadline - now_ms();
	rc = pqpool_close(pool, left > 0 ? (int)left : 0);
	if (rc == PQPOOL_OK)
		log_msg(PQPOOL_LOG_INFO, "pool closed; exiting");
	else
		log_msg(PQPOOL_LOG_WARN,
		        "pool closed with leases still out (%s); exiting",
		        pqpool_status_text(rc));
	return CLI_EXIT_OK;
}

/* The startup line, then READY=1 for the service manager: the pool is open
 * and the port bound and listening, so a client may connect from now on. */
static void log_listening(const setup_ctx *s, const serve_settings *ss, http_server *srv,
                          notify_target *nt)
{
	char url[96], *db = setup_masked_url(s->cfg.conninfo);
	char msg[512];
	json_t *fields;

	serve_format_url((const struct sockaddr *)&ss->addr, http_port(srv), url,
	                 sizeof(url));
	snprintf(msg, sizeof(msg), "pqpool %s serving %s; listening on %s",
	         PQPOOL_VERSION, db ? db : "?", url);
	fields = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:s}", "database",
	                   db ? db : "?", "listen", url, "threads", http_threads(srv),
	                   "db_threads", http_db_threads(srv), "max_connections",
	                   ss->max_connections, "pool_max", s->cfg.pool_max,
	                   "metrics_auth", ss->metrics_token[0] ? "bearer" : "none");
	log_event(PQPOOL_LOG_INFO, msg, fields);
	json_decref(fields);
	free(db);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening on %s", url);
	notify_send(nt, msg);
}

static int run_serve(const cli_args *args)
{
	setup_ctx s;
	serve_settings ss;
	pqpool *pool = NULL;
	http_server *srv = NULL;
	http_options ho;
	notify_target nt;
	sigset_t sigs;
	char err[512];
	int rc, sig;

	(void)args;
	rc = setup_load(&s);
	if (rc == 0 && serve_settings_load(&ss, dotenv_lookup, s.env, err,
	                                   sizeof(err)) != 0) {
		setup_report_error(s.env, err);
		rc = CLI_EXIT_USAGE;
	}
	if (rc != 0) {
		setup_free(&s);
		return rc;
	}
	raise_fd_limit(&ss, s.cfg.pool_max);
	setup_warn_tls(&s);
	notify_open(&nt);
	warn_watchdog(&nt, s.cfg.connection_timeout_ms);

	/* Not fail-fast unless DB_FAIL_FAST says so: the service starts with the
	 * database down, reports it unhealthy, and recovers when it answers. */
	rc = pqpool_open(&s.cfg, &pool);
	if (rc != PQPOOL_OK) {
		log_msg(PQPOOL_LOG_ERROR, "%s",
		        *pqpool_errmsg() ? pqpool_errmsg() : pqpool_status_text(rc));
		notify_close(&nt);
		setup_free(&s);
		return CLI_EXIT_FAIL;
	}

	/* Blocked before the workers start, so that they inherit the mask and
	 * the signals reach only sigtimedwait() below. A client that hangs up
	 * must not kill the process with SIGPIPE. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	ho = (http_options){
	        .addr = (const struct sockaddr *)&ss.addr,
	        .addrlen = ss.addrlen,
	        .threads = ss.threads,
	        .db_threads = ss.db_threads,
	        .wait_limit_ms = s.cfg.connection_timeout_ms,
	        .max_connections = ss.max_connections,
	        .idle_timeout_s = ss.idle_timeout_s,
	        .max_header_bytes = ss.max_header_bytes,
	        .metrics_token = ss.metrics_token[0] ? ss.metrics_token : NULL,
	};
	if (http_start(&ho, pool, &srv, err, sizeof(err)) != 0) {
		char url[96];

		serve_format_url((const struct sockaddr *)&ss.addr, ss.port, url,
		                 sizeof(url));
		log_msg(PQPOOL_LOG_ERROR, "%s: %s", url, err);
		pqpool_close(pool, 0);
		notify_close(&nt);
		setup_free(&s);
		return CLI_EXIT_FAIL;
	}
	log_listening(&s, &ss, srv, &nt);

	sig = wait_for_signal(&sigs, pool, &nt);
	rc = shut_down(srv, pool, &nt, &sigs, sig, ss.shutdown_timeout_ms);
	notify_close(&nt);
	setup_free(&s);
	return rc;
}

const cli_command serve_command = {
        .name = "serve",
        .summary = "run the HTTP service: database health, pool metrics, probes",
        .details =
                "Serves, from one pool for the whole process:\n"
                "  GET /api/health/database   health JSON; 200 healthy or degraded, 503 "
                "unhealthy\n"
                "  GET /api/metrics/database  the pool's metrics as JSON\n"
                "  GET /metrics               Prometheus text format (pool and service)\n"
                "  GET /livez                 200 while the process runs (no database "
                "call)\n"
                "  GET /readyz                200 when the database answers, else 503\n"
                "\n"
                "Settings (the environment, then ./.env.local), besides the database's\n"
                "(see `pqpool config`):\n"
                "  HOST=127.0.0.1              address to listen on (a name must "
                "resolve)\n"
                "  PORT=3000                   0 = any free port (the startup line shows "
                "it)\n"
                "  HTTP_THREADS=<CPUs>        event threads, 1 to 256 (at least 2 by "
                "default)\n"
                "  HTTP_DB_THREADS=1           threads whose event loops check the "
                "database\n"
                "                              (health, readiness), 0 to 256; 0 = the "
                "checks block\n"
                "                              on the event threads\n"
                "  HTTP_MAX_CONNECTIONS=1024   open connections at most; half per client "
                "IP\n"
                "  HTTP_IDLE_TIMEOUT=30        seconds a connection may stay silent; 0 = "
                "never\n"
                "  HTTP_MAX_HEADER_BYTES=16384 memory per connection, bounding request "
                "headers\n"
                "  SHUTDOWN_TIMEOUT=10000      ms a shutdown waits for requests in "
                "flight\n"
                "  METRICS_TOKEN=<unset>       when set (16 to 1024 characters), "
                "/metrics and\n"
                "                              /api/metrics/* need \"Authorization: "
                "Bearer <token>\"\n"
                "  LOG_LEVEL=info, LOG_FORMAT=text\n"
                "                              info logs one line per request; json: "
                "JSON lines\n"
                "\n"
                "SIGTERM or SIGINT: stop accepting, let requests in flight finish (up "
                "to\n"
                "SHUTDOWN_TIMEOUT), close the pool, exit 0; a second signal exits at "
                "once\n"
                "with status 1. Exits 1 when it cannot start (the port is taken; the\n"
                "database is down and DB_FAIL_FAST=true), 2 for a bad option or "
                "setting.\n"
                "\n"
                "Under systemd (Type=notify; NOTIFY_SOCKET, WATCHDOG_USEC set by it):\n"
                "READY=1 once listening, STOPPING=1 when the drain starts, WATCHDOG=1\n"
                "every half of WATCHDOG_USEC. No reload: SIGHUP is not handled.",
        .run = run_serve,
};
