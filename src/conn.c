/* conn.c — one libpq connection: opened without blocking past the pool's own
 * deadline from parameters built once, checked for life without a round
 * trip. Knows nothing of pools: what to connect to and where to log come in
 * as arguments. */
#include "conn.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "fdwait.h"
#include "secret.h"

/* Server notices (and the FATAL a backend sends before it is terminated)
 * would go to stderr through libpq's default processor; route them to the
 * host's log instead. */
static void notice_receiver(void *arg, const PGresult *res)
{
	const pqpool__logger *lg = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char msg[PQPOOL__ERRLEN];
	pqpool_log_level lvl = PQPOOL_LOG_DEBUG;
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		lvl = PQPOOL_LOG_WARN;
	else if (sev && strcmp(sev, "WARNING") == 0)
		lvl = PQPOOL_LOG_INFO;
	pqpool__trim_msg(PQresultErrorMessage(res), msg, sizeof msg);
	pqpool__log(lg, lvl, "server: %s", msg);
}

/* A failed connect's message, with the fix when it is one we know: PgBouncer
 * (and some other proxies) refuse the "options" startup parameter that
 * carries DB_STATEMENT_TIMEOUT. */
static void connect_error(const char *msg, char *err, size_t errlen)
{
	char m[PQPOOL__ERRLEN];
	pqpool__trim_msg(msg, m, sizeof m);
	if (strstr(m, "unsupported startup parameter: options"))
		snprintf(err, errlen,
		         "%s (a connection pooler such as PgBouncer in between: set "
		         "DB_STATEMENT_TIMEOUT=0 and give the role its statement_timeout "
		         "on the server, ALTER ROLE ... SET statement_timeout = ...)",
		         m);
	else
		snprintf(err, errlen, "%s", m);
}

PGconn *pqpool__connect_start(const pqpool__params *params, char *err, size_t errlen)
{
	PGconn *pg = PQconnectStartParams(params->keywords, params->values, 0);
	if (pg && PQstatus(pg) != CONNECTION_BAD)
		return pg;
	if (err && errlen) {
		pqpool__trim_msg(pg ? PQerrorMessage(pg) : "out of memory", err, errlen);
		pqpool__scrub(err, params->secret);
	}
	PQfinish(pg);
	return NULL;
}

PostgresPollingStatusType pqpool__connect_step(PGconn *pg, const pqpool__params *params,
                                               const pqpool__logger *lg, char *err,
                                               size_t errlen)
{
	PostgresPollingStatusType st = PQconnectPoll(pg);
	if (st == PGRES_POLLING_OK && lg)
		PQsetNoticeReceiver(pg, notice_receiver, (void *)lg);
	if (st == PGRES_POLLING_FAILED && err && errlen) {
		connect_error(PQerrorMessage(pg), err, errlen);
		pqpool__scrub(err, params->secret);
	}
	return st;
}

/* libpq's connect_timeout is applied only by its blocking PQconnectdb; with
 * PQconnectStartParams/PQconnectPoll the deadline is ours to keep, which is
 * what lets one DB_CONNECTION_TIMEOUT bound the whole of an acquire. Several
 * connections are driven together so that warming a pool of N costs one
 * connection time, not N. */
int pqpool__connect_many(const pqpool__params *params, const pqpool__logger *lg, int n,
                         PGconn **out, int64_t deadline_ns, char *err, size_t errlen)
{
	struct pollfd stackfds[8];
	PostgresPollingStatusType stackst[8];
	struct pollfd *fds = stackfds;
	PostgresPollingStatusType *st = stackst;
	int pending = 0, opened = 0;
	bool timed_out = false;
	int64_t t0 = pqc_now_ns();

	if (err && errlen)
		err[0] = '\0';
	if (n > 8) {
		fds = calloc((size_t)n, sizeof *fds);
		st = calloc((size_t)n, sizeof *st);
		if (!fds || !st) {
			free(fds);
			free(st);
			for (int i = 0; i < n; i++)
				out[i] = NULL;
			if (err)
				snprintf(err, errlen, "out of memory");
			return 0;
		}
	}
	for (int i = 0; i < n; i++) {
		out[i] = pqpool__connect_start(params, err && !err[0] ? err : NULL,
		                               errlen);
		/* the documented first state: wait until writable */
		st[i] = out[i] ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
		if (out[i])
			pending++;
	}

	while (pending > 0) {
		int nfd = 0, timeout = pqc_ms_until(deadline_ns), r;
		if (timeout == 0) {
			timed_out = true;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!out[i] || st[i] == PGRES_POLLING_OK ||
			    st[i] == PGRES_POLLING_FAILED)
				continue;
			fds[nfd].fd = PQsocket(out[i]);
			fds[nfd].events =
			        st[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			fds[nfd].revents = 0;
			nfd++;
		}
		r = poll(fds, (nfds_t)nfd, timeout);
		if (r < 0 && errno != EINTR) {
			if (err && !err[0])
				snprintf(err, errlen, "poll: %s", strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		nfd = 0;
		for (int i = 0; i < n; i++) {
			if (!out[i] || st[i] == PGRES_POLLING_OK ||
			    st[i] == PGRES_POLLING_FAILED)
				continue;
			if (fds[nfd++].revents == 0)
				continue;
			st[i] = pqpool__connect_step(out[i], params, lg,
			                             err && !err[0] ? err : NULL, errlen);
			if (st[i] == PGRES_POLLING_OK) {
				pending--;
				opened++;
			} else if (st[i] == PGRES_POLLING_FAILED) {
				PQfinish(out[i]);
				out[i] = NULL;
				pending--;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		if (out[i] && st[i] != PGRES_POLLING_OK) {
			PQfinish(out[i]);
			out[i] = NULL;
		}
	}
	if (timed_out && err && !err[0])
		snprintf(err, errlen, "timed out after %lld ms",
		         (long long)((pqc_now_ns() - t0) / 1000000));
	if (err)
		pqpool__scrub(err, params->secret);
	if (fds != stackfds) {
		free(fds);
		free(st);
	}
	return opened;
}

/* A server that closed the connection (restart, pg_terminate_backend, idle
 * timeout) leaves the socket readable: the FATAL message and EOF are already
 * there. An idle connection that is not readable is as alive as a round trip
 * could tell, short of the network having vanished, which the query deadline
 * and TCP keepalives cover. */
bool pqpool__conn_alive(PGconn *pg)
{
	struct pollfd pfd;
	if (PQstatus(pg) != CONNECTION_OK || PQsocket(pg) < 0)
		return false;
	pfd.fd = PQsocket(pg);
	pfd.events = POLLIN;
	for (int i = 0; i < 4; i++) {
		int r;
		pfd.revents = 0;
		r = poll(&pfd, 1, 0);
		if (r == 0)
			return true;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (pfd.revents & (POLLERR | POLLNVAL))
			return false;
		/* Something arrived while idle: a notice, a notification, or the
		 * server's goodbye followed by EOF. Let libpq read it; EOF makes
		 * PQconsumeInput fail. */
		if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK)
			return false;
	}
	return PQstatus(pg) == CONNECTION_OK;
}

/* OpenSSL's SSL_pending, looked up in the process (libpq loaded libssl)
 * rather than linked: the library needs no OpenSSL headers to build. */
typedef int (*ssl_pending_fn)(const void *ssl);

bool pqpool__conn_tls_pending(PGconn *pg)
{
	static _Atomic(ssl_pending_fn) pending;
	static _Atomic bool looked;
	ssl_pending_fn fn;
	void *ssl = PQsslInUse(pg) ? PQsslStruct(pg, "OpenSSL") : NULL;

	if (!ssl)
		return false;
	if (!atomic_load_explicit(&looked, memory_order_acquire)) {
		void *sym = dlsym(RTLD_DEFAULT, "SSL_pending");
		ssl_pending_fn found;
		memcpy(&found, &sym, sizeof found); /* object to function pointer */
		atomic_store_explicit(&pending, found, memory_order_relaxed);
		atomic_store_explicit(&looked, true, memory_order_release);
	}
	fn = atomic_load_explicit(&pending, memory_order_relaxed);
	/* (always found where libpq uses OpenSSL; without it, no answer) */
	return fn && fn(ssl) > 0;
}

int pqpool_connect(const pqpool_config *cfg, int timeout_ms, PGconn **out)
{
	pqpool_config defaults;
	pqpool__params params;
	char err[PQPOOL__ERRLEN];
	int st;
	if (!out)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_connect: out is NULL");
	*out = NULL;
	if (!cfg) {
		pqpool_config_init(&defaults);
		cfg = &defaults;
	}
	if (pqpool_config_validate(cfg, err, sizeof err) != PQPOOL_OK)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_connect: %s", err);
	if ((st = pqpool__params_build(cfg, &params, err, sizeof err)) != PQPOOL_OK)
		return pqpool__fail(st, "pqpool_connect: %s", err);
	if (timeout_ms < 0)
		timeout_ms = cfg->connection_timeout_ms;
	/* no log sink: the connection outlives anything we could point it at */
	if (pqpool__connect_many(&params, NULL, 1, out,
	                         pqc_now_ns() + (int64_t)timeout_ms * 1000000, err,
	                         sizeof err) != 1)
		st = pqpool__fail(PQPOOL_ECONNECT,
		                  "pqpool_connect: could not connect to %s: %s",
		                  params.masked, err);
	else
		pqpool__ok();
	pqpool__params_free(&params);
	return st;
}
